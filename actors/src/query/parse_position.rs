//! Where a PromQL parse error is. promql-parser reports errors without a
//! position; Prometheus prefixes them with `line:col`. This finds the spot
//! by search: the error sits at the start of the token after the longest
//! prefix that some short completion turns into a valid query.

use promql_parser::parser;

/// Most token starts examined (bounds the cost on long queries).
const MAX_CANDIDATES: usize = 400;

/// What may follow a prefix before its brackets are closed.
const FILLERS: &[&str] = &[
    "",
    "1",
    "x",
    "\"\"",
    "=\"\"",
    "a=\"\"",
    "1m",
    "(x)",
    "x[1m]",
    "[1m]",
    " by (a) (x)",
    "a",
    " 1m",
    " 1",
    " x",
];

/// Words of syntax errors; other parse errors are type errors, which
/// Prometheus places at the start of the expression.
const SYNTAX_WORDS: &[&str] = &[
    "unexpected",
    "unclosed",
    "unterminated",
    "invalid promql query",
    "bad number",
    "bad duration",
    "no expression",
    "illegal",
];
/// What may follow once the brackets are closed.
const TAILS: &[&str] = &["", " (x)"];

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == ':' || c == '.'
}

/// Byte offsets where a token may start, outside string literals, plus
/// the end of the input.
fn token_starts(input: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut prev: Option<char> = None;
    for (i, c) in input.char_indices() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' && q != '`' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            prev = Some(c);
            continue;
        }
        let starts = !c.is_whitespace()
            && match prev {
                None => true,
                Some(p) => p.is_whitespace() || !is_word(p) || !is_word(c),
            };
        if starts {
            out.push(i);
        }
        if c == '"' || c == '\'' || c == '`' {
            quote = Some(c);
        }
        prev = Some(c);
    }
    out.push(input.len());
    out
}

/// The closing brackets `prefix` leaves open, or `None` inside a string
/// or after a stray closing bracket.
fn closers(prefix: &str) -> Option<String> {
    let mut stack = Vec::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in prefix.chars() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' && q != '`' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '(' => stack.push(')'),
            '{' => stack.push('}'),
            '[' => stack.push(']'),
            ')' | '}' | ']' => match stack.pop() {
                Some(open) if open == c => {}
                _ => return None,
            },
            _ => {}
        }
    }
    if quote.is_some() {
        return None;
    }
    Some(stack.iter().rev().collect())
}

fn completable(prefix: &str) -> bool {
    let Some(close) = closers(prefix) else {
        return false;
    };
    FILLERS.iter().any(|f| {
        TAILS
            .iter()
            .any(|t| parser::parse(&format!("{prefix}{f}{close}{t}")).is_ok())
    })
}

/// `(line, column)`, both from 1, of the byte offset `at`.
fn line_col(input: &str, at: usize) -> (usize, usize) {
    let before = input.get(..at).unwrap_or(input);
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(at, |nl| at - nl - 1) + 1;
    (line, col)
}

/// The position of the parse error in `input`, if the search finds one.
pub fn parse_error_position(input: &str) -> Option<(usize, usize)> {
    let starts = token_starts(input);
    starts
        .iter()
        .rev()
        .take(MAX_CANDIDATES)
        .find(|&&p| input.get(..p).is_some_and(completable))
        .map(|&p| line_col(input, p))
}

/// `message` with Prometheus's `line:col: ` in front when it is a parse
/// error without a position and one can be found.
pub fn with_position(input: &str, message: &str) -> String {
    let has_position = message
        .split(':')
        .next()
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
    if !message.starts_with("parse error") || has_position {
        return message.to_string();
    }
    let syntax = SYNTAX_WORDS.iter().any(|w| message.contains(w));
    let balanced = closers(input).is_some_and(|c| c.is_empty());
    if !syntax && balanced {
        let first = input.find(|c: char| !c.is_whitespace()).unwrap_or(0);
        let (line, col) = line_col(input, first);
        return format!("{line}:{col}: {message}");
    }
    match parse_error_position(input) {
        Some((line, col)) => format!("{line}:{col}: {message}"),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_match_prometheus_for_common_mistakes() {
        // Expected columns are what Prometheus 2.42 reports.
        assert_eq!(parse_error_position("sum(up"), Some((1, 7)));
        assert_eq!(parse_error_position("sum("), Some((1, 5)));
        assert_eq!(parse_error_position("up{"), Some((1, 4)));
        assert_eq!(parse_error_position("foo bar"), Some((1, 5)));
        assert_eq!(parse_error_position("gen_queue_depth{job=}"), Some((1, 21)));
        assert_eq!(parse_error_position("gen_queue_depth +"), Some((1, 18)));
        assert_eq!(
            parse_error_position("sum by (job) gen_queue_depth"),
            Some((1, 14))
        );
        assert_eq!(parse_error_position("}"), Some((1, 1)));
        assert_eq!(parse_error_position(""), Some((1, 1)));
        assert_eq!(parse_error_position("up +\n  (foo bar)"), Some((2, 8)));
        assert_eq!(parse_error_position("up offset"), Some((1, 10)));
        assert_eq!(parse_error_position("gen_queue_depth[5x]"), Some((1, 17)));
        assert_eq!(parse_error_position("up == bool"), Some((1, 11)));
    }

    #[test]
    fn messages_get_a_position_once() {
        assert_eq!(
            with_position("sum(up", "parse error: unclosed left parenthesis"),
            "1:7: parse error: unclosed left parenthesis"
        );
        assert_eq!(
            with_position("sum(up", "1:7: parse error: x"),
            "1:7: parse error: x"
        );
        assert_eq!(with_position("up", "something else"), "something else");
        assert_eq!(
            with_position("abs(up, up)", "parse error: expected 1 argument(s)"),
            "1:1: parse error: expected 1 argument(s)"
        );
    }
}
