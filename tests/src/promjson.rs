//! Parsing the `data` of Prometheus `/api/v1/query` and `/api/v1/query_range`
//! answers into label-keyed maps (series order in the JSON does not matter).

use std::collections::BTreeMap;

use anyhow::{Context, anyhow, bail};
use serde_json::Value;

use crate::labels::LabelSet;
use crate::timefmt::json_secs_to_ms;

/// One (timestamp ms, value) point.
pub type Point = (i64, f64);

/// A query result, keyed by label set.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryData {
    Vector(BTreeMap<LabelSet, Point>),
    Matrix(BTreeMap<LabelSet, Vec<Point>>),
    Scalar(Point),
    String(i64, String),
}

impl QueryData {
    /// `vector`, `matrix`, `scalar` or `string`.
    pub fn kind(&self) -> &'static str {
        match self {
            QueryData::Vector(_) => "vector",
            QueryData::Matrix(_) => "matrix",
            QueryData::Scalar(_) => "scalar",
            QueryData::String(..) => "string",
        }
    }

    /// Number of series (1 for scalars and strings).
    pub fn series_count(&self) -> usize {
        match self {
            QueryData::Vector(m) => m.len(),
            QueryData::Matrix(m) => m.len(),
            _ => 1,
        }
    }

    /// Total number of points.
    pub fn point_count(&self) -> usize {
        match self {
            QueryData::Vector(m) => m.len(),
            QueryData::Matrix(m) => m.values().map(Vec::len).sum(),
            _ => 1,
        }
    }

    /// The label sets of all series.
    pub fn label_sets(&self) -> Vec<LabelSet> {
        match self {
            QueryData::Vector(m) => m.keys().cloned().collect(),
            QueryData::Matrix(m) => m.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }

    /// The vector sample for `ls`, if this is a vector holding it.
    pub fn vector_point(&self, ls: &LabelSet) -> Option<Point> {
        match self {
            QueryData::Vector(m) => m.get(ls).copied(),
            _ => None,
        }
    }
}

/// Parse a sample value string: Go float text, `+Inf`, `-Inf`, `NaN`.
pub fn parse_value(s: &str) -> anyhow::Result<f64> {
    match s {
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s
            .parse::<f64>()
            .map_err(|e| anyhow!("bad sample value {s:?}: {e}")),
    }
}

fn parse_point(v: &Value) -> anyhow::Result<Point> {
    let arr = v
        .as_array()
        .ok_or_else(|| anyhow!("point is not an array: {v}"))?;
    if arr.len() != 2 {
        bail!("point does not have 2 elements: {v}");
    }
    let ts = json_secs_to_ms(&arr[0])?;
    let s = arr[1]
        .as_str()
        .ok_or_else(|| anyhow!("point value is not a string: {v}"))?;
    Ok((ts, parse_value(s)?))
}

fn parse_metric(v: &Value) -> anyhow::Result<LabelSet> {
    let obj = v
        .get("metric")
        .and_then(Value::as_object)
        .ok_or_else(|| anyhow!("series without a metric object: {v}"))?;
    obj.iter()
        .map(|(k, v)| {
            v.as_str()
                .map(|s| (k.clone(), s.to_string()))
                .ok_or_else(|| anyhow!("label {k} is not a string"))
        })
        .collect()
}

/// Parse the `data` object of a successful query answer.
pub fn parse_query_data(data: &Value) -> anyhow::Result<QueryData> {
    let rt = data
        .get("resultType")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("data without resultType: {data}"))?;
    let result = data
        .get("result")
        .ok_or_else(|| anyhow!("data without result: {data}"))?;
    match rt {
        "vector" => {
            let mut out = BTreeMap::new();
            for s in result.as_array().context("vector result is not an array")? {
                let ls = parse_metric(s)?;
                let p = parse_point(s.get("value").context("vector sample without value")?)?;
                if out.insert(ls.clone(), p).is_some() {
                    bail!("duplicate series in vector: {ls:?}");
                }
            }
            Ok(QueryData::Vector(out))
        }
        "matrix" => {
            let mut out = BTreeMap::new();
            for s in result.as_array().context("matrix result is not an array")? {
                let ls = parse_metric(s)?;
                let pts = s
                    .get("values")
                    .and_then(Value::as_array)
                    .context("matrix series without values")?
                    .iter()
                    .map(parse_point)
                    .collect::<anyhow::Result<Vec<_>>>()?;
                if s.get("histograms").is_some() {
                    bail!("native histograms are not compared by this harness");
                }
                if out.insert(ls.clone(), pts).is_some() {
                    bail!("duplicate series in matrix: {ls:?}");
                }
            }
            Ok(QueryData::Matrix(out))
        }
        "scalar" => Ok(QueryData::Scalar(parse_point(result)?)),
        "string" => {
            let arr = result.as_array().context("string result is not an array")?;
            if arr.len() != 2 {
                bail!("string result does not have 2 elements");
            }
            let ts = json_secs_to_ms(&arr[0])?;
            let s = arr[1].as_str().context("string value is not a string")?;
            Ok(QueryData::String(ts, s.to_string()))
        }
        other => bail!("unknown resultType {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vector_matrix_and_special_values() {
        let v: Value = serde_json::from_str(
            r#"{"resultType":"vector","result":[
                {"metric":{"__name__":"a","x":"1"},"value":[1700000000.5,"+Inf"]},
                {"metric":{},"value":[1700000000.5,"NaN"]}]}"#,
        )
        .unwrap();
        let QueryData::Vector(m) = parse_query_data(&v).unwrap() else {
            panic!("not a vector")
        };
        assert_eq!(m.len(), 2);
        let p = m[&crate::labels::label_set(&[("__name__", "a"), ("x", "1")])];
        assert_eq!(p.0, 1_700_000_000_500);
        assert!(p.1.is_infinite());
        let m: Value = serde_json::from_str(
            r#"{"resultType":"matrix","result":[
                {"metric":{"a":"b"},"values":[[1,"1.5"],[16,"-2e-3"]]}]}"#,
        )
        .unwrap();
        let QueryData::Matrix(m) = parse_query_data(&m).unwrap() else {
            panic!("not a matrix")
        };
        assert_eq!(
            m.values().next().unwrap(),
            &vec![(1000, 1.5), (16000, -0.002)]
        );
    }

    #[test]
    fn rejects_duplicates_and_garbage() {
        let v: Value = serde_json::from_str(
            r#"{"resultType":"vector","result":[
                {"metric":{"a":"b"},"value":[1,"1"]},{"metric":{"a":"b"},"value":[1,"2"]}]}"#,
        )
        .unwrap();
        assert!(parse_query_data(&v).is_err());
        assert!(parse_value("abc").is_err());
    }
}
