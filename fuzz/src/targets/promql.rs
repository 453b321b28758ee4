//! PromQL and the HTTP API's query parameters as the querier parses them: the guarded
//! parse entry (length, nesting, operators, non-ASCII, regex limits) with the error
//! position search, `match[]` selectors and durations (`step`, `lookback_delta`, ...).

use super::mode;
use skein_promql::ParseLimits;
use skein_promql::durexpr::DurationContext;
use skein_promql::parse::{parse_expr_positioned, parse_promql};

/// Text of the input: UTF-8 as sent, else lossily (U+FFFD is non-ASCII, refused too).
fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Mode (low 2 bits): 0 a query (`query=`), 1 `match[]` values (NUL-separated), 2 a
/// duration or step; bit 2 uses small limits so every refusal is reachable.
pub fn promql(data: &[u8]) {
    let (m, rest) = mode(data);
    let limits = if m & 4 == 4 {
        ParseLimits {
            max_bytes: 512,
            max_depth: 8,
            max_operators: 8,
            max_regex_bytes: 1024,
        }
    } else {
        ParseLimits::default()
    };
    match m & 3 {
        0 => {
            let q = text(rest);
            let parsed = parse_promql(&q, DurationContext::default(), &limits);
            if let Err(e) = &parsed {
                assert!(!e.to_string().is_empty());
            }
            let _ = parse_expr_positioned(&q, &limits);
        }
        1 => {
            let values: Vec<String> = rest.split(|&c| c == 0).take(64).map(text).collect();
            if let Ok(sets) = skein_actors::query::parse_match_params(&values, &limits) {
                assert_eq!(sets.len(), values.len());
            }
        }
        _ => {
            let _ = skein_promql::parse_duration(&text(rest));
        }
    }
}

/// Queries from Prometheus' own test files in ../shared/promql-testdata, when present (run
/// time only: the files are not copied into the repository).
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/promql-testdata");
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return out;
    };
    let mut files: Vec<_> = rd.filter_map(Result::ok).map(|e| e.path()).collect();
    files.sort();
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        for (i, line) in text.lines().enumerate() {
            let Some(rest) = line.trim().strip_prefix("eval ") else {
                continue;
            };
            // `eval instant at 5m <query>` / `eval range from 0 to 1m step 10s <query>`.
            let words: Vec<&str> = rest.split_whitespace().collect();
            let skip = match words.first() {
                Some(&"instant") => 3,
                Some(&"range") => 7,
                _ => continue,
            };
            let q = words.get(skip..).unwrap_or_default().join(" ");
            if q.is_empty() {
                continue;
            }
            let name = f
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mut v = vec![0u8];
            v.extend_from_slice(q.as_bytes());
            out.push((format!("testdata-{name}-{i}"), v));
        }
    }
    out.push((
        "gen-match".into(),
        b"\x01up{job=~\"a.*\"}\x00{__name__=\"x\",i!=\"1\"}".to_vec(),
    ));
    out.push(("gen-duration".into(), b"\x021h30m".to_vec()));
    out
}
