//! External labels in requests and answers: matchers on external labels are
//! decided by the sidecar (and stripped before asking Prometheus), and every
//! answer carries the external labels.

use skein_promql::{Label, LabelMatcher, Labels, MatchOp};

use crate::matchers::CompiledMatcher;

/// What to ask Prometheus, once the matchers on external labels are decided.
#[derive(Debug, PartialEq)]
pub enum Plan {
    /// A matcher on an external label rejects this sidecar: answer nothing.
    Empty,
    /// Ask Prometheus with these matchers (external-label ones removed).
    Ask(Vec<LabelMatcher>),
}

/// Splits request matchers into those the external labels decide and those
/// Prometheus must apply.
pub fn plan(matchers: &[CompiledMatcher], external: &Labels) -> Plan {
    let mut rest = Vec::with_capacity(matchers.len());
    for m in matchers {
        match external.get(&m.name) {
            Some(v) if m.matches(v) => {}
            Some(_) => return Plan::Empty,
            None => rest.push(LabelMatcher::new(m.name.clone(), m.op, m.value.clone())),
        }
    }
    Plan::Ask(rest)
}

/// The external labels a response carries: all but those named in
/// `without_replica_labels`.
pub fn effective_external(external: &Labels, without_replica_labels: &[String]) -> Labels {
    external
        .iter()
        .filter(|l| !without_replica_labels.contains(&l.name))
        .cloned()
        .collect()
}

/// A series' final labels: its own, the external ones replacing any of the
/// same name, minus the dropped replica labels.
pub fn complete(series: Labels, external: &Labels, dropped: &[String]) -> Labels {
    let mut out = series;
    for l in external.iter() {
        out.set(&l.name, l.value.clone());
    }
    for name in dropped {
        if external.get(name).is_some() {
            out.remove(name);
        }
    }
    out
}

/// True for names Prometheus 2.x accepts in selectors: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A PromQL series selector for Prometheus's HTTP API. `__name__=~".+"` is
/// added so that a selector whose matchers all match the empty string is
/// still accepted (every Prometheus series has a name).
pub fn selector(matchers: &[LabelMatcher]) -> Result<String, String> {
    let mut parts = Vec::with_capacity(matchers.len() + 1);
    for m in matchers {
        if !is_valid_label_name(&m.name) {
            return Err(format!("invalid label name {:?}", m.name));
        }
        let op = match m.op {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        };
        parts.push(format!("{}{}{}", m.name, op, quote(&m.value)));
    }
    parts.push("__name__=~\".+\"".to_string());
    Ok(format!("{{{}}}", parts.join(",")))
}

/// A double-quoted PromQL string.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Adds external label names to Prometheus's label names (only when it
/// found any), sorted and unique.
pub fn merge_names(mut names: Vec<String>, external: &Labels) -> Vec<String> {
    if !names.is_empty() {
        names.extend(external.iter().map(|Label { name, .. }| name.clone()));
    }
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cm(name: &str, op: MatchOp, v: &str) -> CompiledMatcher {
        CompiledMatcher::new(&LabelMatcher::new(name, op, v)).unwrap()
    }

    fn ext() -> Labels {
        Labels::from_pairs([("cluster", "c1"), ("replica", "r0")])
    }

    #[test]
    fn external_matchers_decide_and_are_stripped() {
        let ms = [
            cm("cluster", MatchOp::Regex, "c.*"),
            cm("job", MatchOp::Equal, "a"),
        ];
        assert_eq!(
            plan(&ms, &ext()),
            Plan::Ask(vec![LabelMatcher::new("job", MatchOp::Equal, "a")])
        );
        let ms = [
            cm("replica", MatchOp::NotEqual, "r0"),
            cm("job", MatchOp::Equal, "a"),
        ];
        assert_eq!(plan(&ms, &ext()), Plan::Empty);
    }

    #[test]
    fn completion_replaces_and_drops_replica_labels() {
        let s = Labels::from_pairs([("__name__", "up"), ("cluster", "own"), ("job", "a")]);
        assert_eq!(
            complete(s.clone(), &ext(), &[]),
            Labels::from_pairs([
                ("__name__", "up"),
                ("cluster", "c1"),
                ("job", "a"),
                ("replica", "r0")
            ])
        );
        // Only external labels are dropped as replica labels.
        assert_eq!(
            complete(s, &ext(), &["replica".into(), "job".into()]),
            Labels::from_pairs([("__name__", "up"), ("cluster", "c1"), ("job", "a")])
        );
    }

    #[test]
    fn selector_quotes_values_and_refuses_bad_names() {
        let ms = [
            LabelMatcher::new("job", MatchOp::Equal, "a\"b\\c\nd"),
            LabelMatcher::new("x", MatchOp::NotRegex, ".*"),
        ];
        assert_eq!(
            selector(&ms).unwrap(),
            r#"{job="a\"b\\c\nd",x!~".*",__name__=~".+"}"#
        );
        assert!(selector(&[LabelMatcher::new("a-b", MatchOp::Equal, "x")]).is_err());
        assert!(!is_valid_label_name("1a"));
        assert!(!is_valid_label_name(""));
        assert!(is_valid_label_name("_a1"));
    }

    #[test]
    fn names_get_external_ones_only_when_prometheus_found_some() {
        assert_eq!(
            merge_names(vec!["job".into(), "__name__".into()], &ext()),
            vec!["__name__", "cluster", "job", "replica"]
        );
        assert!(merge_names(vec![], &ext()).is_empty());
    }
}
