//! Parsing `match[]` selectors (`up{job="x"}`) into matchers.

use promql_parser::label::MatchOp as ParserOp;
use promql_parser::parser::{self, Expr};
use skein_promql::{LabelMatcher, MatchOp};

use super::parse_position::with_position;
use crate::matchers::CompiledMatcher;

const METRIC_NAME: &str = "__name__";

const EMPTY_MATCHER_ERROR: &str = "match[] must contain at least one non-empty matcher";

/// Parses one series selector. Errors read like Prometheus's.
pub fn parse_selector(s: &str) -> Result<Vec<LabelMatcher>, String> {
    let expr = parser::parse(s).map_err(|e| {
        if e.starts_with("parse error") {
            e
        } else {
            format!("parse error: {e}")
        }
    })?;
    let Expr::VectorSelector(vs) = expr else {
        return Err(format!(
            "parse error: unexpected expression {s:?}, expected a series selector"
        ));
    };
    if !vs.matchers.or_matchers.is_empty() {
        return Err("parse error: \"or\" in series selectors is not supported".to_string());
    }
    if vs.offset.is_some() || vs.at.is_some() {
        return Err("parse error: offset and @ are not allowed in a series selector".into());
    }
    let mut out: Vec<LabelMatcher> = Vec::new();
    if let Some(name) = &vs.name
        && !vs.matchers.matchers.iter().any(|m| m.name == METRIC_NAME)
    {
        out.push(LabelMatcher::new(METRIC_NAME, MatchOp::Equal, name.clone()));
    }
    for m in &vs.matchers.matchers {
        let op = match m.op {
            ParserOp::Equal => MatchOp::Equal,
            ParserOp::NotEqual => MatchOp::NotEqual,
            ParserOp::Re(_) => MatchOp::Regex,
            ParserOp::NotRe(_) => MatchOp::NotRegex,
        };
        out.push(LabelMatcher::new(m.name.clone(), op, m.value.clone()));
    }
    Ok(out)
}

/// Parses every `match[]` value; each selector needs a matcher that does
/// not match the empty string, as Prometheus requires.
pub fn parse_match_params(values: &[String]) -> Result<Vec<Vec<LabelMatcher>>, String> {
    let mut sets = Vec::with_capacity(values.len());
    for v in values {
        let ms = parse_selector(v).map_err(|e| {
            // The parser refuses `{a=~".*"}` itself; say it as Prometheus's
            // API does.
            if e.contains("at least one non-empty matcher") {
                EMPTY_MATCHER_ERROR.to_string()
            } else {
                with_position(v, &e)
            }
        })?;
        let mut any_non_empty = false;
        for m in &ms {
            let c = CompiledMatcher::new(m).map_err(|e| e.to_string())?;
            any_non_empty |= !c.matches("");
        }
        if !any_non_empty {
            return Err(EMPTY_MATCHER_ERROR.to_string());
        }
        sets.push(ms);
    }
    Ok(sets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_become_matchers() {
        let ms = parse_selector(r#"up{job=~"a.*",x!="y"}"#).unwrap();
        assert_eq!(
            ms,
            vec![
                LabelMatcher::new("__name__", MatchOp::Equal, "up"),
                LabelMatcher::new("job", MatchOp::Regex, "a.*"),
                LabelMatcher::new("x", MatchOp::NotEqual, "y"),
            ]
        );
        assert!(parse_selector("up{").is_err());
        assert!(parse_selector("rate(up[5m])").is_err());
    }

    #[test]
    fn empty_matching_selectors_are_refused() {
        let e = parse_match_params(&[r#"{job=~".*"}"#.to_string()]).unwrap_err();
        assert_eq!(e, EMPTY_MATCHER_ERROR);
        assert_eq!(parse_match_params(&["up".to_string()]).unwrap().len(), 1);
    }
}
