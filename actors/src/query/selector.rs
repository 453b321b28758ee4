//! Parsing `match[]` selectors (`up{job="x"}`) into matchers, through the
//! guarded parse entry ([`skein_promql::parse`]).

use promql_parser::label::MatchOp as ParserOp;
use promql_parser::parser::Expr;
use skein_promql::parse::{ParseError, ParseLimits, parse_expr};
use skein_promql::{LabelMatcher, MatchOp, QueryError};

use crate::matchers::CompiledMatcher;

const METRIC_NAME: &str = "__name__";

const EMPTY_MATCHER_ERROR: &str = "match[] must contain at least one non-empty matcher";

/// Parses one series selector under `limits`. Errors read like
/// Prometheus's; limits come back as [`QueryError::Rejected`].
pub fn parse_selector(s: &str, limits: &ParseLimits) -> Result<Vec<LabelMatcher>, QueryError> {
    let expr = parse_expr(s, limits).map_err(|e| match e {
        // The parser refuses `{a=~".*"}` itself; say it as Prometheus's
        // API does.
        ParseError::Syntax { message } if message.contains("at least one non-empty matcher") => {
            QueryError::Parse {
                message: EMPTY_MATCHER_ERROR.to_string(),
            }
        }
        other => QueryError::from(skein_promql::parse::position(s, other, limits)),
    })?;
    let Expr::VectorSelector(vs) = expr else {
        return Err(parse_error(format!(
            "parse error: unexpected expression {:?}, expected a series selector",
            short(s)
        )));
    };
    if !vs.matchers.or_matchers.is_empty() {
        return Err(parse_error(
            "parse error: \"or\" in series selectors is not supported",
        ));
    }
    if vs.offset.is_some() || vs.at.is_some() {
        return Err(parse_error(
            "parse error: offset and @ are not allowed in a series selector",
        ));
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

fn parse_error(message: impl Into<String>) -> QueryError {
    QueryError::Parse {
        message: message.into(),
    }
}

/// A selector shortened for an error message.
fn short(v: &str) -> &str {
    let mut end = v.len().min(200);
    while !v.is_char_boundary(end) {
        end -= 1;
    }
    &v[..end]
}

/// Parses every `match[]` value; each selector needs a matcher that does
/// not match the empty string, as Prometheus requires. CPU work (parsing,
/// compiling regexes): callers on an async worker use
/// [`parse_match_params_blocking`].
pub fn parse_match_params(
    values: &[String],
    limits: &ParseLimits,
) -> Result<Vec<Vec<LabelMatcher>>, QueryError> {
    let mut sets = Vec::with_capacity(values.len());
    for v in values {
        let ms = parse_selector(v, limits)?;
        let mut any_non_empty = false;
        for m in &ms {
            let c = CompiledMatcher::new(m).map_err(|e| parse_error(e.to_string()))?;
            any_non_empty |= !c.matches("");
        }
        if !any_non_empty {
            return Err(parse_error(EMPTY_MATCHER_ERROR));
        }
        sets.push(ms);
    }
    Ok(sets)
}

/// [`parse_match_params`] on a blocking thread.
pub async fn parse_match_params_blocking(
    values: Vec<String>,
    limits: ParseLimits,
) -> Result<Vec<Vec<LabelMatcher>>, QueryError> {
    tokio::task::spawn_blocking(move || parse_match_params(&values, &limits))
        .await
        .map_err(|e| QueryError::Execution(format!("parsing match[] failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l() -> ParseLimits {
        ParseLimits::default()
    }

    #[test]
    fn selectors_become_matchers() {
        let ms = parse_selector(r#"up{job=~"a.*",x!="y"}"#, &l()).unwrap();
        assert_eq!(
            ms,
            vec![
                LabelMatcher::new("__name__", MatchOp::Equal, "up"),
                LabelMatcher::new("job", MatchOp::Regex, "a.*"),
                LabelMatcher::new("x", MatchOp::NotEqual, "y"),
            ]
        );
        assert!(parse_selector("up{", &l()).is_err());
        assert!(parse_selector("rate(up[5m])", &l()).is_err());
        let e = parse_selector("up{", &l()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "1:4: parse error: unexpected end of input inside braces"
        );
    }

    #[test]
    fn empty_matching_selectors_are_refused() {
        let e = parse_match_params(&[r#"{job=~".*"}"#.to_string()], &l()).unwrap_err();
        assert_eq!(e.to_string(), EMPTY_MATCHER_ERROR);
        assert_eq!(
            parse_match_params(&["up".to_string()], &l()).unwrap().len(),
            1
        );
    }

    /// Selectors go through the parse guard: deep nesting that once
    /// overflowed the stack of an HTTP worker is a 400 with a reason.
    #[test]
    fn hostile_selectors_are_refused_by_the_guard() {
        for (s, reason) in [
            (
                format!("{}up{}", "(".repeat(50_000), ")".repeat(50_000)),
                "too_deep",
            ),
            (format!("{}up", "(".repeat(50_000)), "too_deep"),
            ("größe".to_string(), "non_ascii"),
            ("up{a=~\"a{1000}{1000}\"}".to_string(), "regex_too_large"),
            (
                format!("up{{a=\"{}\"}}", "x".repeat(200_000)),
                "query_too_long",
            ),
        ] {
            let e = parse_match_params(std::slice::from_ref(&s), &l()).unwrap_err();
            assert_eq!(e.rejection_reason(), Some(reason), "{e}");
            assert_eq!((e.error_type(), e.http_status()), ("bad_data", 400));
        }
        assert_eq!(
            parse_selector("up{job=\"größe\"}", &l()).unwrap()[1].value,
            "größe"
        );
    }
}
