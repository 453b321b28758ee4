//! The one way to compile a regular expression that came from outside the
//! process (PromQL matchers, `match[]`, `label_replace`, StoreAPI matchers):
//! fully anchored as PromQL regexes are, with an explicit limit on the
//! compiled program's size, on the lazy DFA's cache and on nesting, so a
//! hostile pattern (`a{1000}{1000}`, a megabyte of alternatives) costs a
//! bounded amount of memory and CPU and gets a clear error.
//!
//! The size limit is process-wide (set once at start-up from
//! `--max-regex-size`); callers that carry their own limits use
//! [`anchored_with`].

use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use regex::{Regex, RegexBuilder};

/// Default limit on a compiled regex program (bytes of the NFA). Admits an
/// alternation of a few thousand names (what Grafana's "All" sends) and
/// compiles in about 0.1 s on one core.
pub const DEFAULT_SIZE_LIMIT: usize = 4 << 20;

/// How deep groups and repetitions may nest in a pattern.
pub const NEST_LIMIT: u32 = 128;

/// The lazy DFA's cache per regex (the regex crate's own default, made
/// explicit).
pub const DFA_SIZE_LIMIT: usize = 2 << 20;

static SIZE_LIMIT: AtomicUsize = AtomicUsize::new(DEFAULT_SIZE_LIMIT);

/// Sets the process-wide size limit (from `--max-regex-size`).
pub fn set_size_limit(bytes: usize) {
    SIZE_LIMIT.store(bytes.max(1), Ordering::Relaxed);
}

/// The process-wide size limit.
pub fn size_limit() -> usize {
    SIZE_LIMIT.load(Ordering::Relaxed)
}

type ReasonLabel = Vec<(&'static str, &'static str)>;

static REJECTED: LazyLock<Family<ReasonLabel, Counter>> = LazyLock::new(Family::default);

/// Registers `skein_regex_rejected_total{reason}`: regexes refused by any
/// component of this process (querier, store, sidecar).
pub fn register_metrics(registry: &mut Registry) {
    registry.register(
        "skein_regex_rejected",
        "Regular expressions from requests refused, by reason (too_large, too_deep, invalid)",
        REJECTED.clone(),
    );
}

/// How many regexes were refused for `reason` (for tests).
pub fn rejected_count(reason: &'static str) -> u64 {
    REJECTED.get_or_create(&vec![("reason", reason)]).get()
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RegexError {
    #[error(
        "regex too large: its compiled program exceeds the limit of {limit} bytes (--max-regex-size)"
    )]
    TooLarge { limit: usize },
    #[error("regex nested too deeply: more than {limit} levels of groups or repetitions")]
    TooDeep { limit: u32 },
    #[error("error parsing regexp: {0}")]
    Invalid(String),
}

impl RegexError {
    /// The `reason` label of the rejection metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            RegexError::TooLarge { .. } => "too_large",
            RegexError::TooDeep { .. } => "too_deep",
            RegexError::Invalid(_) => "invalid",
        }
    }
}

/// Compiles `pattern` anchored at both ends (`^(?s:pattern)$`, as
/// Prometheus does) under the process-wide size limit.
pub fn anchored(pattern: &str) -> Result<Regex, RegexError> {
    anchored_with(pattern, size_limit())
}

/// Like [`anchored`], with an explicit size limit.
pub fn anchored_with(pattern: &str, size_limit: usize) -> Result<Regex, RegexError> {
    let res = match build(&format!("^(?s:{pattern})$"), size_limit) {
        // Go reads a `{` that starts no repetition as a literal; so does
        // PromQL. Retry with such braces escaped.
        Err(RegexError::Invalid(first)) => match escape_literal_braces(pattern) {
            Some(escaped) => match build(&format!("^(?s:{escaped})$"), size_limit) {
                Err(RegexError::Invalid(_)) => Err(RegexError::Invalid(first)),
                other => other,
            },
            None => Err(RegexError::Invalid(first)),
        },
        other => other,
    };
    if let Err(e) = &res {
        REJECTED.get_or_create(&vec![("reason", e.reason())]).inc();
    }
    res
}

fn build(full: &str, size_limit: usize) -> Result<Regex, RegexError> {
    RegexBuilder::new(full)
        .size_limit(size_limit)
        .dfa_size_limit(DFA_SIZE_LIMIT)
        .nest_limit(NEST_LIMIT)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(_) => RegexError::TooLarge { limit: size_limit },
            regex::Error::Syntax(s) if s.contains("nested parentheses") => {
                RegexError::TooDeep { limit: NEST_LIMIT }
            }
            regex::Error::Syntax(s) => RegexError::Invalid(short_syntax_error(&s)),
            other => RegexError::Invalid(other.to_string()),
        })
}

/// The one-line reason of the regex crate's multi-line syntax error.
fn short_syntax_error(s: &str) -> String {
    s.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .unwrap_or(s.lines().next().unwrap_or(s))
        .to_string()
}

/// `pattern` with every `{` that does not open a counted repetition
/// (`{n}`, `{n,}`, `{n,m}`) escaped, or `None` when there is none.
fn escape_literal_braces(pattern: &str) -> Option<String> {
    let b = pattern.as_bytes();
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut changed = false;
    let mut i = 0;
    let mut last = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'{' if !opens_repetition(&b[i + 1..]) => {
                out.push_str(&pattern[last..i]);
                out.push_str("\\{");
                i += 1;
                last = i;
                changed = true;
            }
            _ => i += 1,
        }
    }
    if !changed {
        return None;
    }
    out.push_str(pattern.get(last..).unwrap_or(""));
    Some(out)
}

/// Does `rest` (what follows a `{`) read `n}`, `n,}` or `n,m}`?
fn opens_repetition(rest: &[u8]) -> bool {
    let digits = |s: &[u8]| s.iter().take_while(|c| c.is_ascii_digit()).count();
    let n = digits(rest);
    if n == 0 {
        return false;
    }
    match rest.get(n) {
        Some(b'}') => true,
        Some(b',') => {
            let m = digits(&rest[n + 1..]);
            rest.get(n + 1 + m) == Some(&b'}')
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchored_and_dot_matches_newline() {
        let r = anchored("a.c").unwrap();
        assert!(r.is_match("a\nc"));
        assert!(!r.is_match("xa\ncx"));
        // Go's literal brace.
        let r = anchored("a{b}").unwrap();
        assert!(r.is_match("a{b}"));
        assert!(anchored("a{2}").unwrap().is_match("aa"));
    }

    #[test]
    fn size_limit_at_its_boundary() {
        // Find the exact compiled size of a pattern, then: that size
        // compiles, one byte less is refused as too large.
        let p = "(foo|bar|baz){20}";
        let (mut lo, mut hi) = (1usize, 1 << 24);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if anchored_with(p, mid).is_ok() {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        assert!(anchored_with(p, lo).is_ok());
        assert_eq!(
            anchored_with(p, lo - 1).unwrap_err(),
            RegexError::TooLarge { limit: lo - 1 }
        );
    }

    #[test]
    fn hostile_patterns_are_refused_quickly_with_a_reason() {
        let before = rejected_count("too_large");
        let e = anchored_with("a{1000}{1000}", DEFAULT_SIZE_LIMIT).unwrap_err();
        assert_eq!(e.reason(), "too_large");
        assert!(rejected_count("too_large") > before);
        let alternation: Vec<String> = (0..40_000).map(|i| format!("svc_{i:020}")).collect();
        let e = anchored_with(&alternation.join("|"), DEFAULT_SIZE_LIMIT).unwrap_err();
        assert_eq!(e.reason(), "too_large");
        let deep = format!("{}a{}", "(".repeat(200), ")".repeat(200));
        assert_eq!(
            anchored(&deep).unwrap_err(),
            RegexError::TooDeep { limit: NEST_LIMIT }
        );
        let e = anchored("(((a").unwrap_err();
        assert_eq!(e.to_string(), "error parsing regexp: unclosed group");
    }

    /// Every regex compiled from input goes through this module: no other
    /// library source compiles one, except the listed files, whose
    /// patterns are constants or come from the repository's test files.
    #[test]
    fn regexes_are_compiled_only_here() {
        const ALLOWED: &[&str] = &[
            "promql/src/re.rs",
            // A constant pattern.
            "promql/src/extended.rs",
            // Patterns from Prometheus's test files in the repository.
            "promql/src/promqltest/",
            // tsdb's `Matcher::new`, for tests and tools; servers build
            // tsdb matchers with `Matcher::with_regex` from this module.
            "tsdb/src/index/matcher.rs",
        ];
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut offenders = Vec::new();
        let mut dirs = vec![root.clone()];
        while let Some(d) = dirs.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd.flatten() {
                let p = e.path();
                let name = e.file_name().to_string_lossy().to_string();
                let rel = p
                    .strip_prefix(&root)
                    .unwrap_or(&p)
                    .to_string_lossy()
                    .to_string();
                if p.is_dir() {
                    // Test crates and test directories are not services.
                    let skip = name.starts_with('.')
                        || name == "target"
                        || name == "tests"
                        || name == "benches"
                        || rel == "chaos";
                    if !skip {
                        dirs.push(p);
                    }
                    continue;
                }
                if !name.ends_with(".rs") || ALLOWED.iter().any(|a| rel.starts_with(a)) {
                    continue;
                }
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                // Unit tests sit at the end of a file.
                let code = text.split("#[cfg(test)]").next().unwrap_or("");
                for (n, line) in code.lines().enumerate() {
                    let line = line.split("//").next().unwrap_or("");
                    if line.contains("Regex::new(") || line.contains("RegexBuilder::new(") {
                        offenders.push(format!("{rel}:{}: {line}", n + 1));
                    }
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "compile regexes from input with skein_promql::re:\n{}",
            offenders.join("\n")
        );
    }
}
