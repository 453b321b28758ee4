//! PromQL evaluation over promql-parser's AST, against a [`SeriesSource`].
//!
//! The engine asks its source for the series each selector needs (one
//! `select` call per selector, with the time range already widened for
//! offset, `@`, range and lookback), then evaluates in memory. It knows
//! nothing of networks or storage formats.

pub mod labels;
pub mod source;

pub use labels::{Label, Labels};
pub use source::{
    LabelMatcher, MatchOp, Sample, SelectHints, SelectResult, Series, SeriesSource, SourceError,
};
