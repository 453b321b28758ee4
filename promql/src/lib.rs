//! PromQL evaluation over promql-parser's AST, against a [`SeriesSource`].
//!
//! The engine asks its source for the series each selector needs (one
//! `select` call per selector, with the time range already widened for
//! offset, `@`, range and lookback), then evaluates in memory. It knows
//! nothing of networks or storage formats.

pub mod duration;
pub mod engine;
pub mod error;
pub(crate) mod eval;
pub mod labels;
pub mod memsource;
pub mod plan;
pub mod promqltest;
pub mod source;
pub mod value;

pub use duration::{DurationError, parse_duration};
pub use engine::{Engine, EngineOptions, QueryOptions, parse_query};
pub use error::QueryError;
pub use eval::{STALE_NAN_BITS, is_stale_nan};
pub use labels::{Label, Labels};
pub use memsource::MemSource;
pub use source::{
    LabelMatcher, MatchOp, Sample, SelectHints, SelectResult, Series, SeriesSource, SourceError,
};
pub use value::{InstantSample, QueryOutput, Value};
