//! PromQL evaluation over promql-parser's AST, against a [`SeriesSource`].
//!
//! The engine asks its source for the series each selector needs (one
//! `select` call per distinct selector, all concurrently, with the time
//! range already widened for offset, `@`, range and lookback), then
//! evaluates in memory on a blocking thread, checking its deadline and a
//! cancel flag (set when the query future is dropped) as it goes. It knows
//! nothing of networks or storage formats.
//!
//! Semantics follow Prometheus 3: range selectors and the lookback window
//! are left-open (`(t - range, t]`), stale markers end a series, and the
//! metric name is dropped where Prometheus drops it (without the
//! experimental delayed name removal). Native histograms are not supported:
//! sources carry float samples only.
//!
//! - [`Engine`] with [`EngineOptions`] and per-request [`QueryOptions`] runs
//!   instant and range queries into a [`QueryOutput`] ([`Value`] plus
//!   warnings and infos) or a [`QueryError`] (with the Prometheus API error
//!   type and HTTP status).
//! - [`MemSource`] is an in-memory source; [`promqltest`] reads Prometheus's
//!   test files and runs them against the engine.

pub mod duration;
pub mod durexpr;
pub mod engine;
pub mod error;
pub(crate) mod eval;
pub mod extended;
pub mod labels;
pub mod memsource;
pub mod parse;
pub mod parse_position;
pub mod plan;
pub mod promqltest;
pub mod re;
pub mod source;
pub mod value;

pub use duration::{DurationError, parse_duration};
pub use engine::{Engine, EngineOptions, QueryOptions, parse_query};
pub use error::QueryError;
pub use eval::{STALE_NAN_BITS, is_stale_nan};
pub use labels::{Label, Labels};
pub use memsource::MemSource;
pub use parse::{ParseError, ParseLimits};
pub use source::{
    LabelMatcher, MatchOp, Sample, SelectHints, SelectResult, Series, SeriesSource, SourceError,
};
pub use value::{InstantSample, QueryOutput, Value};
