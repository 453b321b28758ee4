//! JSON report and the per-query record log.

use std::io::Write;
use std::path::Path;

use super::Report;
use crate::workload::Record;

/// Writes `report.json` and `queries.jsonl`.
pub fn write(dir: &Path, report: &Report, records: &[Record]) -> std::io::Result<()> {
    let json = serde_json::to_string_pretty(report).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("report.json"), json)?;
    let mut f = std::io::BufWriter::new(std::fs::File::create(dir.join("queries.jsonl"))?);
    for r in records {
        let line = serde_json::to_string(r).map_err(std::io::Error::other)?;
        writeln!(f, "{line}")?;
    }
    f.flush()
}
