//! Prometheus's promqltest file format (`load`, `eval instant at`, `eval
//! range from .. to .. step`, `expect ...`, `clear`), the series notation
//! loader and a runner over [`crate::MemSource`]. Public so other test
//! harnesses can load series the same way.

pub mod run;
pub mod script;
pub mod series;

pub use run::{CaseResult, Outcome, Runner};
pub use script::{Command, Eval, EvalKind, Expected, parse_script};
pub use series::{SeqValue, SeriesDesc, parse_series_desc};
