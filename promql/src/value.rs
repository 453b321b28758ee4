//! Query results.

use crate::labels::Labels;
use crate::source::Series;

/// One sample of an instant vector.
#[derive(Clone, Debug, PartialEq)]
pub struct InstantSample {
    pub labels: Labels,
    pub t: i64,
    pub v: f64,
}

/// The value of a query: what Prometheus calls its result type.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Scalar { t: i64, v: f64 },
    String { t: i64, v: String },
    Vector(Vec<InstantSample>),
    Matrix(Vec<Series>),
}

impl Value {
    /// The `resultType` name of the Prometheus HTTP API.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Scalar { .. } => "scalar",
            Value::String { .. } => "string",
            Value::Vector(_) => "vector",
            Value::Matrix(_) => "matrix",
        }
    }
}

/// A query's result and the annotations gathered on the way: warnings
/// (from sources and functions, such as a histogram_quantile on bad
/// buckets) and infos (the Prometheus API's `infos`, such as a rate over a
/// metric whose name does not look like a counter).
#[derive(Clone, Debug, PartialEq)]
pub struct QueryOutput {
    pub value: Value,
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
}
