//! Where a PromQL parse error is. promql-parser reports errors without a
//! position; Prometheus prefixes them with `line:col`. This finds the spot
//! by search: the error sits at the start of the token after the longest
//! prefix that some short completion turns into a valid query.
//!
//! Every attempt goes through the parse guard ([`crate::parse`]), with the
//! regex literals blanked (they compiled once already), and the whole
//! search has a budget of bytes parsed: on a long query it gives up and the
//! error goes without a position.

use crate::parse::{ParseLimits, blank_regexes, line_col, parse_attempt};

/// Most token starts examined (bounds the cost on long queries).
const MAX_CANDIDATES: usize = 400;

/// Most bytes the search may parse in all (a parse costs about 1 µs per
/// byte, so this is a few hundred milliseconds at worst).
pub const BUDGET_BYTES: usize = 256 << 10;

/// What one parse attempt costs beyond its length (the parser's setup).
const ATTEMPT_COST: usize = 64;

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

/// Bytes the search may still parse.
struct Budget(usize);

impl Budget {
    /// Takes `n` bytes; false once the budget is spent.
    fn take(&mut self, n: usize) -> bool {
        match self.0.checked_sub(n) {
            Some(left) => {
                self.0 = left;
                true
            }
            None => {
                self.0 = 0;
                false
            }
        }
    }
}

/// Whether a short completion turns `prefix` into a valid query; `None`
/// once the budget is spent.
fn completable(prefix: &str, limits: &ParseLimits, budget: &mut Budget) -> Option<bool> {
    if !budget.take(prefix.len()) {
        return None;
    }
    let Some(close) = closers(prefix) else {
        return Some(false);
    };
    // The completions may make the text a little longer than the query.
    let limits = ParseLimits {
        max_bytes: limits.max_bytes.saturating_add(close.len() + 32),
        ..limits.clone()
    };
    for f in FILLERS {
        for t in TAILS {
            let candidate = format!("{prefix}{f}{close}{t}");
            if !budget.take(candidate.len() + ATTEMPT_COST) {
                return None;
            }
            if parse_attempt(&candidate, &limits) {
                return Some(true);
            }
        }
    }
    Some(false)
}

/// The position of the parse error in `input`, if the search finds one
/// within its budget.
pub fn parse_error_position(input: &str, limits: &ParseLimits) -> Option<(usize, usize)> {
    let text = blank_regexes(input, limits);
    let mut budget = Budget(BUDGET_BYTES);
    if !budget.take(text.len()) {
        return None;
    }
    let starts = token_starts(&text);
    for &p in starts.iter().rev().take(MAX_CANDIDATES) {
        let Some(prefix) = text.get(..p) else {
            continue;
        };
        match completable(prefix, limits, &mut budget) {
            Some(true) => return Some(line_col(input, p)),
            Some(false) => {}
            None => return None,
        }
    }
    None
}

/// `message` with Prometheus's `line:col: ` in front when it is a parse
/// error without a position and one can be found.
pub fn with_position(input: &str, message: &str, limits: &ParseLimits) -> String {
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
    match parse_error_position(input, limits) {
        Some((line, col)) => format!("{line}:{col}: {message}"),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static L: std::sync::LazyLock<ParseLimits> = std::sync::LazyLock::new(ParseLimits::default);

    #[test]
    fn positions_match_prometheus_for_common_mistakes() {
        // Expected columns are what Prometheus 2.42 reports.
        assert_eq!(parse_error_position("sum(up", &L), Some((1, 7)));
        assert_eq!(parse_error_position("sum(", &L), Some((1, 5)));
        assert_eq!(parse_error_position("up{", &L), Some((1, 4)));
        assert_eq!(parse_error_position("foo bar", &L), Some((1, 5)));
        assert_eq!(
            parse_error_position("gen_queue_depth{job=}", &L),
            Some((1, 21))
        );
        assert_eq!(parse_error_position("gen_queue_depth +", &L), Some((1, 18)));
        assert_eq!(
            parse_error_position("sum by (job) gen_queue_depth", &L),
            Some((1, 14))
        );
        assert_eq!(parse_error_position("}", &L), Some((1, 1)));
        assert_eq!(parse_error_position("", &L), Some((1, 1)));
        assert_eq!(parse_error_position("up +\n  (foo bar)", &L), Some((2, 8)));
        assert_eq!(parse_error_position("up offset", &L), Some((1, 10)));
        assert_eq!(
            parse_error_position("gen_queue_depth[5x]", &L),
            Some((1, 17))
        );
        assert_eq!(parse_error_position("up == bool", &L), Some((1, 11)));
    }

    #[test]
    fn messages_get_a_position_once() {
        assert_eq!(
            with_position("sum(up", "parse error: unclosed left parenthesis", &L),
            "1:7: parse error: unclosed left parenthesis"
        );
        assert_eq!(
            with_position("sum(up", "1:7: parse error: x", &L),
            "1:7: parse error: x"
        );
        assert_eq!(with_position("up", "something else", &L), "something else");
        assert_eq!(
            with_position("abs(up, up)", "parse error: expected 1 argument(s)", &L),
            "1:1: parse error: expected 1 argument(s)"
        );
    }

    #[test]
    fn positions_inside_and_after_regexes_hold() {
        // The regex literal is blanked for the search, positions stay.
        assert_eq!(
            parse_error_position("up{a=~\"ö|x.*\"} +", &L),
            Some((1, 18))
        );
    }

    #[test]
    fn search_on_hostile_input_is_bounded() {
        // Unbalanced deep nesting: every attempt is refused by the guard
        // (no stack overflow), and the budget ends the search.
        let deep = format!("{}up", "(".repeat(50_000));
        assert_eq!(parse_error_position(&deep, &L), None);
        // A long query with a mistake at its end: the search gives up
        // within its budget instead of parsing 400 x 30 long prefixes.
        let long = format!("up{{a=\"{}\"}} + up +", "x".repeat(100_000));
        assert_eq!(parse_error_position(&long, &L), None);
        // A short query with the same mistake still gets its position.
        assert_eq!(parse_error_position("up + up +", &L), Some((1, 10)));
    }

    #[test]
    fn budget_is_spent_and_not_exceeded() {
        let mut b = Budget(10);
        assert!(b.take(4));
        assert!(b.take(6));
        assert!(!b.take(1));
        assert!(!b.take(0) || b.0 == 0);
    }
}
