//! Conversions between wire labels/matchers (StoreAPI, prompb) and the
//! engine's types, and matching of label sets, with regexes fully anchored
//! as in Prometheus and compiled under the process's regex limits
//! ([`skein_promql::re`]).

use regex::Regex;
use skein_promql::{Label, LabelMatcher, Labels, MatchOp};
use skein_proto::thanos;

#[derive(Debug, thiserror::Error)]
pub enum MatcherError {
    #[error("invalid regular expression {value:?} for label {name:?}: {reason}")]
    BadRegex {
        name: String,
        value: String,
        reason: String,
    },
    #[error("unknown matcher type {0}")]
    UnknownType(i32),
}

/// A matcher ready to test values: the regex compiled once, anchored.
#[derive(Clone, Debug)]
pub struct CompiledMatcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    regex: Option<Regex>,
}

impl CompiledMatcher {
    pub fn new(m: &LabelMatcher) -> Result<Self, MatcherError> {
        let regex = match m.op {
            MatchOp::Regex | MatchOp::NotRegex => Some(
                skein_promql::re::anchored(&m.value).map_err(|e| MatcherError::BadRegex {
                    name: m.name.clone(),
                    value: short(&m.value),
                    reason: e.to_string(),
                })?,
            ),
            MatchOp::Equal | MatchOp::NotEqual => None,
        };
        Ok(CompiledMatcher {
            name: m.name.clone(),
            op: m.op,
            value: m.value.clone(),
            regex,
        })
    }

    /// Tests a label value; a missing label has the empty value.
    pub fn matches(&self, value: &str) -> bool {
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => value == self.value,
            (MatchOp::NotEqual, _) => value != self.value,
            (MatchOp::Regex, Some(r)) => r.is_match(value),
            (MatchOp::NotRegex, Some(r)) => !r.is_match(value),
            // Unreachable by construction; a matcher without its regex
            // matches nothing rather than everything.
            (MatchOp::Regex | MatchOp::NotRegex, None) => false,
        }
    }

    pub fn matches_labels(&self, labels: &Labels) -> bool {
        self.matches(labels.get(&self.name).unwrap_or(""))
    }
}

pub fn compile_all(ms: &[LabelMatcher]) -> Result<Vec<CompiledMatcher>, MatcherError> {
    ms.iter().map(CompiledMatcher::new).collect()
}

/// [`compile_all`] on a blocking thread: compiling a large regex is CPU
/// work that must not hold up an async worker (the HTTP workers await
/// this).
pub async fn compile_all_blocking(
    ms: &[LabelMatcher],
) -> Result<Vec<CompiledMatcher>, MatcherError> {
    if !ms
        .iter()
        .any(|m| matches!(m.op, MatchOp::Regex | MatchOp::NotRegex))
    {
        return compile_all(ms);
    }
    let owned = ms.to_vec();
    match tokio::task::spawn_blocking(move || compile_all(&owned)).await {
        Ok(r) => r,
        // The task cannot be cancelled; a panic in it would be a bug.
        Err(e) => Err(MatcherError::BadRegex {
            name: String::new(),
            value: String::new(),
            reason: format!("compiling matchers failed: {e}"),
        }),
    }
}

/// A pattern shortened for an error message (a megabyte-long regex is not
/// echoed back whole).
fn short(v: &str) -> String {
    const MAX: usize = 200;
    if v.len() <= MAX {
        return v.to_string();
    }
    let mut end = MAX;
    while !v.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &v[..end])
}

/// True when every matcher accepts the label set.
pub fn all_match(ms: &[CompiledMatcher], labels: &Labels) -> bool {
    ms.iter().all(|m| m.matches_labels(labels))
}

pub fn from_wire_matcher(m: &thanos::LabelMatcher) -> Result<LabelMatcher, MatcherError> {
    let op = match thanos::label_matcher::Type::try_from(m.r#type) {
        Ok(thanos::label_matcher::Type::Eq) => MatchOp::Equal,
        Ok(thanos::label_matcher::Type::Neq) => MatchOp::NotEqual,
        Ok(thanos::label_matcher::Type::Re) => MatchOp::Regex,
        Ok(thanos::label_matcher::Type::Nre) => MatchOp::NotRegex,
        Err(_) => return Err(MatcherError::UnknownType(m.r#type)),
    };
    Ok(LabelMatcher::new(m.name.clone(), op, m.value.clone()))
}

pub fn from_wire_matchers(ms: &[thanos::LabelMatcher]) -> Result<Vec<LabelMatcher>, MatcherError> {
    ms.iter().map(from_wire_matcher).collect()
}

pub fn to_wire_matcher(m: &LabelMatcher) -> thanos::LabelMatcher {
    let t = match m.op {
        MatchOp::Equal => thanos::label_matcher::Type::Eq,
        MatchOp::NotEqual => thanos::label_matcher::Type::Neq,
        MatchOp::Regex => thanos::label_matcher::Type::Re,
        MatchOp::NotRegex => thanos::label_matcher::Type::Nre,
    };
    thanos::LabelMatcher {
        r#type: t as i32,
        name: m.name.clone(),
        value: m.value.clone(),
    }
}

pub fn labels_from_wire(ls: &[thanos::Label]) -> Labels {
    Labels::new(
        ls.iter()
            .map(|l| Label::new(l.name.clone(), l.value.clone()))
            .collect(),
    )
}

pub fn labels_to_wire(ls: &Labels) -> Vec<thanos::Label> {
    ls.iter()
        .map(|l| thanos::Label {
            name: l.name.clone(),
            value: l.value.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, op: MatchOp, v: &str) -> CompiledMatcher {
        CompiledMatcher::new(&LabelMatcher::new(name, op, v)).unwrap()
    }

    #[test]
    fn regexes_are_anchored_and_missing_labels_are_empty() {
        let ls = Labels::from_pairs([("job", "prometheus")]);
        assert!(m("job", MatchOp::Regex, "prom.*").matches_labels(&ls));
        assert!(!m("job", MatchOp::Regex, "prom").matches_labels(&ls));
        assert!(m("job", MatchOp::NotRegex, "prom").matches_labels(&ls));
        assert!(m("missing", MatchOp::Equal, "").matches_labels(&ls));
        assert!(m("missing", MatchOp::Regex, ".*").matches_labels(&ls));
        assert!(!m("missing", MatchOp::NotEqual, "").matches_labels(&ls));
    }

    #[test]
    fn regexes_compile_under_the_size_limit() {
        let e = CompiledMatcher::new(&LabelMatcher::new("a", MatchOp::Regex, "a{1000}{1000}"))
            .unwrap_err();
        assert!(e.to_string().contains("regex too large"), "{e}");
        let huge = "x|".repeat(600_000);
        let e = CompiledMatcher::new(&LabelMatcher::new("a", MatchOp::Regex, huge)).unwrap_err();
        assert!(
            e.to_string().len() < 600,
            "the error echoes the whole pattern"
        );
    }

    #[test]
    fn bad_regex_is_an_error_naming_the_label() {
        let e = CompiledMatcher::new(&LabelMatcher::new("a", MatchOp::Regex, "(")).unwrap_err();
        assert!(e.to_string().contains("\"a\""), "{e}");
    }

    #[test]
    fn wire_round_trip() {
        for op in [
            MatchOp::Equal,
            MatchOp::NotEqual,
            MatchOp::Regex,
            MatchOp::NotRegex,
        ] {
            let lm = LabelMatcher::new("a", op, "b");
            assert_eq!(from_wire_matcher(&to_wire_matcher(&lm)).unwrap(), lm);
        }
        let bad = thanos::LabelMatcher {
            r#type: 9,
            name: "a".into(),
            value: "b".into(),
        };
        assert!(from_wire_matcher(&bad).is_err());
    }
}
