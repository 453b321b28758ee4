//! The one guarded way to parse PromQL text that came from outside the
//! process (queries, `match[]` selectors).
//!
//! promql-parser and everything that walks its tree recurse once per
//! nesting level, and its parse time grows faster than linearly with long
//! operator chains; its regexes compile with the regex crate's default
//! limits. So before it sees the text, [`parse_expr`]:
//! 1. refuses text longer than [`ParseLimits::max_bytes`];
//! 2. scans it once (aware of string literals and `#` comments) and refuses
//!    brackets `( [ {` nested deeper than [`ParseLimits::max_depth`], more
//!    than [`ParseLimits::max_operators`] operators (binary and unary
//!    operators, set operators, `offset`, `@`, range and subquery brackets:
//!    every production that nests a tree without brackets), and any
//!    non-ASCII character outside a string literal or comment, with
//!    Prometheus's wording and position (`1:8: parse error: unexpected
//!    character: 'ö'`);
//! 3. compiles every regex literal (`=~`, `!~`) under the regex limits
//!    ([`crate::re`]);
//! 4. parses, and refuses a tree nested deeper than `max_depth` (measured
//!    without recursion).
//!
//! A source-tree test makes sure no other module calls the raw parser.

use promql_parser::parser::Expr;

use crate::parse_position;
use crate::re::{self, RegexError};

/// Limits on PromQL text from a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseLimits {
    /// Longest query or selector, in bytes.
    pub max_bytes: usize,
    /// Deepest bracket nesting, and deepest expression tree (not counting
    /// selectors and literals, its leaves).
    pub max_depth: usize,
    /// Most operators (see the module documentation for what counts).
    pub max_operators: usize,
    /// Largest compiled regex program, in bytes.
    pub max_regex_bytes: usize,
}

/// Default longest query: about 20 times the longest Grafana-templated
/// queries seen in practice; parsing it takes milliseconds.
pub const DEFAULT_MAX_BYTES: usize = 128 << 10;
/// Default deepest nesting: hand-written queries stay under 20; evaluation
/// recurses once per level on a 2 MiB thread stack.
pub const DEFAULT_MAX_DEPTH: usize = 256;
/// Default most operators: generated queries stay in the hundreds; parse
/// time grows faster than linearly with operator chains.
pub const DEFAULT_MAX_OPERATORS: usize = 1000;

/// Ceilings no configuration can raise: past them promql-parser and the
/// evaluator would overflow a 2 MiB thread stack (tests prove these hold).
pub const HARD_MAX_DEPTH: usize = 512;
pub const HARD_MAX_OPERATORS: usize = 4096;

impl ParseLimits {
    fn depth(&self) -> usize {
        self.max_depth.min(HARD_MAX_DEPTH)
    }

    fn operators(&self) -> usize {
        self.max_operators.min(HARD_MAX_OPERATORS)
    }
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_bytes: DEFAULT_MAX_BYTES,
            max_depth: DEFAULT_MAX_DEPTH,
            max_operators: DEFAULT_MAX_OPERATORS,
            max_regex_bytes: re::DEFAULT_SIZE_LIMIT,
        }
    }
}

/// Why text was refused. Every variant but [`ParseError::Syntax`] and an
/// invalid regex is a limit, with a `reason` for the rejection metrics.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error(
        "parse error: query is {len} bytes long, over the limit of {max} bytes (--query.max-length)"
    )]
    TooLong { len: usize, max: usize },
    #[error(
        "{line}:{col}: parse error: brackets nested deeper than {max} levels (--query.max-depth)"
    )]
    TooDeep { line: usize, col: usize, max: usize },
    #[error("parse error: expression nested deeper than {max} levels (--query.max-depth)")]
    TreeTooDeep { max: usize },
    #[error(
        "{line}:{col}: parse error: more than {max} operators in the query (--query.max-operators)"
    )]
    TooManyOperators { line: usize, col: usize, max: usize },
    /// A character outside a string literal that PromQL's lexer refuses.
    #[error("{line}:{col}: parse error: {message}")]
    NonAscii {
        line: usize,
        col: usize,
        message: String,
    },
    #[error("{line}:{col}: parse error: {error}")]
    Regex {
        line: usize,
        col: usize,
        error: RegexError,
    },
    /// The parser's own error, `parse error: ...`, with `line:col: ` in
    /// front once the position is known.
    #[error("{message}")]
    Syntax { message: String },
}

impl ParseError {
    /// The `reason` label of `skein_query_rejected_total`, for limits.
    pub fn reason(&self) -> Option<&'static str> {
        match self {
            ParseError::TooLong { .. } => Some("query_too_long"),
            ParseError::TooDeep { .. } | ParseError::TreeTooDeep { .. } => Some("too_deep"),
            ParseError::TooManyOperators { .. } => Some("too_many_operators"),
            ParseError::NonAscii { .. } => Some("non_ascii"),
            ParseError::Regex {
                error: RegexError::TooLarge { .. },
                ..
            } => Some("regex_too_large"),
            ParseError::Regex {
                error: RegexError::TooDeep { .. },
                ..
            } => Some("regex_too_deep"),
            ParseError::Regex { .. } | ParseError::Syntax { .. } => None,
        }
    }

    /// The error text as the API shows it.
    pub fn message(&self) -> String {
        self.to_string()
    }
}

/// Refuses text over the length limit (cheap; callers use it before
/// queueing a request).
pub fn check_length(text: &str, limits: &ParseLimits) -> Result<(), ParseError> {
    if text.len() > limits.max_bytes {
        return Err(ParseError::TooLong {
            len: text.len(),
            max: limits.max_bytes,
        });
    }
    Ok(())
}

/// Parses PromQL text under `limits`; see the module documentation. The
/// parser's syntax errors come back without a position (see
/// [`parse_expr_positioned`]).
pub fn parse_expr(text: &str, limits: &ParseLimits) -> Result<Expr, ParseError> {
    let regexes = scan(text, limits)?;
    check_regexes(text, &regexes, limits)?;
    parse_checked(text, limits)
}

/// Like [`parse_expr`], with the position of a syntax error found (by a
/// bounded search) and put in front of its message, as Prometheus does.
pub fn parse_expr_positioned(text: &str, limits: &ParseLimits) -> Result<Expr, ParseError> {
    parse_expr(text, limits).map_err(|e| position(text, e, limits))
}

/// Parses a PromQL query for evaluation: the guard on the text as sent,
/// then the rewrites of syntax promql-parser does not read (duration
/// expressions with `step()`/`range()`, extended selectors, `info()`'s
/// selector), then the parser; a syntax error gets its position. Syntax
/// promql-parser accepts beyond PromQL (`or` between label matchers) is
/// refused.
pub fn parse_promql(
    query: &str,
    durations: crate::durexpr::DurationContext,
    limits: &ParseLimits,
) -> Result<Expr, ParseError> {
    let regexes = scan(query, limits)?;
    check_regexes(query, &regexes, limits)?;
    let text = crate::durexpr::rewrite(query, durations);
    let text = crate::extended::rewrite_info(&text);
    let text = crate::extended::rewrite(&text);
    let expr = parse_checked(&text, limits).map_err(|e| position(query, e, limits))?;
    if has_or_matchers(&expr) {
        return Err(ParseError::Syntax {
            message: "parse error: unexpected \"or\" in label matching".into(),
        });
    }
    Ok(expr)
}

/// Whether a selector uses promql-parser's `or` between matchers (the tree
/// is at most `max_depth` deep here, so recursion is bounded).
fn has_or_matchers(e: &Expr) -> bool {
    match e {
        Expr::VectorSelector(vs) => !vs.matchers.or_matchers.is_empty(),
        Expr::MatrixSelector(ms) => !ms.vs.matchers.or_matchers.is_empty(),
        Expr::Aggregate(a) => {
            has_or_matchers(&a.expr) || a.param.as_deref().is_some_and(has_or_matchers)
        }
        Expr::Unary(u) => has_or_matchers(&u.expr),
        Expr::Binary(b) => has_or_matchers(&b.lhs) || has_or_matchers(&b.rhs),
        Expr::Paren(p) => has_or_matchers(&p.expr),
        Expr::Subquery(s) => has_or_matchers(&s.expr),
        Expr::Call(c) => c.args.args.iter().any(|a| has_or_matchers(a)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => false,
    }
}

/// `e` with its position found, when it is a syntax error without one.
pub fn position(text: &str, e: ParseError, limits: &ParseLimits) -> ParseError {
    match e {
        ParseError::Syntax { message } => ParseError::Syntax {
            message: parse_position::with_position(text, &message, limits),
        },
        other => other,
    }
}

/// The parse attempts of the position search: the lexical guard and the
/// parser, without compiling regex literals again (the search blanks them).
pub(crate) fn parse_attempt(text: &str, limits: &ParseLimits) -> bool {
    scan(text, limits).is_ok() && parse_checked(text, limits).is_ok()
}

/// Text the guard has scanned: parse it, then check the tree's depth.
pub(crate) fn parse_checked(text: &str, limits: &ParseLimits) -> Result<Expr, ParseError> {
    // The only call of the raw parser in the workspace (see the test
    // `raw_parser_is_called_only_here`).
    let expr = promql_parser::parser::parse(text).map_err(|m| ParseError::Syntax {
        message: if m.starts_with("parse error") {
            m
        } else {
            format!("parse error: {m}")
        },
    })?;
    if tree_depth(&expr) > limits.depth() {
        return Err(ParseError::TreeTooDeep {
            max: limits.depth(),
        });
    }
    Ok(expr)
}

/// A regex literal found by the scan: where its matcher's label starts,
/// and the literal's byte range (quotes included).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RegexLiteral {
    pub label: usize,
    pub start: usize,
    pub end: usize,
}

/// The end (exclusive) of the string literal opening at `start`, or the end
/// of the text when it is not closed.
fn string_end(b: &[u8], start: usize) -> usize {
    let quote = b[start];
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' if quote != b'`' => i += 2,
            c if c == quote => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

/// Where a `\\` escape of a non-ASCII character starts in the string literal
/// `b[start..end]` (raw backtick strings have no escapes).
fn escaped_non_ascii(b: &[u8], start: usize, end: usize) -> Option<usize> {
    if b.get(start) == Some(&b'`') {
        return None;
    }
    let mut i = start + 1;
    while i < end {
        if b[i] == b'\\' {
            if b.get(i + 1).is_some_and(|&n| n >= 0x80) {
                return Some(i);
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    None
}

fn is_word_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b':' || c == b'.'
}

/// `(line, column)`, both from 1, of byte offset `at`; columns count bytes
/// as Prometheus's do.
pub fn line_col(text: &str, at: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..at.min(text.len())];
    let line = before.iter().filter(|&&c| c == b'\n').count() + 1;
    let col = match before.iter().rposition(|&c| c == b'\n') {
        Some(nl) => before.len() - nl,
        None => before.len() + 1,
    };
    (line, col)
}

/// A rune as Go's `%q` writes it.
fn quote_rune(c: char) -> String {
    if c.is_control() || c.is_whitespace() || c == '\u{feff}' {
        if (c as u32) <= 0xffff {
            format!("'\\u{:04x}'", c as u32)
        } else {
            format!("'\\U{:08x}'", c as u32)
        }
    } else {
        format!("'{c}'")
    }
}

/// The lexical pre-scan: depth, operators and non-ASCII characters, in one
/// pass; returns the regex literals to check.
pub(crate) fn scan(text: &str, limits: &ParseLimits) -> Result<Vec<RegexLiteral>, ParseError> {
    check_length(text, limits)?;
    let (max_depth, max_operators) = (limits.depth(), limits.operators());
    let b = text.as_bytes();
    let mut stack: Vec<u8> = Vec::new();
    let mut operators = 0usize;
    let mut regexes = Vec::new();
    // Inside braces: where the last label name started, and whether the
    // next string is a regex (after `=~` / `!~`).
    let mut label_start: Option<usize> = None;
    let mut regex_next = false;
    // The last character that was not white space, and where.
    let mut prev: Option<(usize, u8)> = None;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let in_braces = stack.last() == Some(&b'{');
        let at = i;
        match c {
            b'"' | b'\'' | b'`' => {
                let end = string_end(b, i);
                // promql-parser slices a `\` escape as if the next character were one
                // byte and panics on a non-ASCII one; Prometheus refuses it as an
                // unknown escape sequence.
                if let Some(bs) = escaped_non_ascii(b, i, end) {
                    let (line, col) = line_col(text, bs);
                    let ch = text
                        .get(bs + 1..)
                        .and_then(|t| t.chars().next())
                        .unwrap_or('?');
                    return Err(ParseError::NonAscii {
                        line,
                        col,
                        message: format!("unknown escape sequence U+{:04X} '{ch}'", u32::from(ch)),
                    });
                }
                if in_braces {
                    if regex_next {
                        regexes.push(RegexLiteral {
                            label: label_start.unwrap_or(i),
                            start: i,
                            end,
                        });
                        regex_next = false;
                    } else if !matches!(prev, Some((_, b'=' | b'~'))) {
                        // A quoted label name.
                        label_start = Some(i);
                    }
                }
                i = end;
                prev = Some((at, c));
                continue;
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'(' | b'[' | b'{' => {
                stack.push(c);
                if stack.len() > max_depth {
                    let (line, col) = line_col(text, i);
                    return Err(ParseError::TooDeep {
                        line,
                        col,
                        max: max_depth,
                    });
                }
                if c == b'[' {
                    operators += 1;
                }
                if c == b'{' {
                    label_start = None;
                    regex_next = false;
                }
            }
            b')' | b']' | b'}' => {
                stack.pop();
            }
            b'=' | b'!' if in_braces => {
                if b.get(i + 1) == Some(&b'~') {
                    regex_next = true;
                    i += 1;
                } else if c == b'!' && b.get(i + 1) == Some(&b'=') {
                    i += 1;
                }
            }
            b'=' | b'!' | b'<' | b'>' => {
                // `==`, `!=`, `<=`, `>=`, `<`, `>`: one operator.
                operators += 1;
                if b.get(i + 1) == Some(&b'=') {
                    i += 1;
                }
            }
            b'+' | b'-' | b'*' | b'/' | b'%' | b'^' | b'@' if !in_braces => operators += 1,
            c if is_word_byte(c) => {
                let start = i;
                while i < b.len() && is_word_byte(b[i]) {
                    i += 1;
                }
                let word = &text[start..i];
                if in_braces {
                    label_start = Some(start);
                } else if ["and", "or", "unless", "atan2", "offset"]
                    .iter()
                    .any(|k| word.eq_ignore_ascii_case(k))
                {
                    operators += 1;
                }
                prev = Some((start, b[i - 1]));
                if operators > max_operators {
                    let (line, col) = line_col(text, start);
                    return Err(ParseError::TooManyOperators {
                        line,
                        col,
                        max: max_operators,
                    });
                }
                continue;
            }
            c if !c.is_ascii() => return Err(non_ascii(text, i, &stack, prev)),
            _ => {}
        }
        if operators > max_operators {
            let (line, col) = line_col(text, at);
            return Err(ParseError::TooManyOperators {
                line,
                col,
                max: max_operators,
            });
        }
        if !c.is_ascii_whitespace() {
            // For two-character operators, their second character.
            prev = Some((at, b[i]));
        }
        i += 1;
    }
    Ok(regexes)
}

/// The error Prometheus's lexer gives for the non-ASCII character at `i`.
fn non_ascii(text: &str, i: usize, stack: &[u8], prev: Option<(usize, u8)>) -> ParseError {
    let ch = text
        .get(i..)
        .and_then(|s| s.chars().next())
        .unwrap_or('\u{fffd}');
    let q = quote_rune(ch);
    let (at, message) = match (stack.last(), prev) {
        (Some(b'{'), Some((p, b'!'))) => (
            p,
            format!("unexpected character after '!' inside braces: {q}"),
        ),
        (Some(b'{'), _) => (i, format!("unexpected character inside braces: {q}")),
        (Some(b'['), Some((_, b'['))) => (i, "missing unit character in duration".to_string()),
        _ => (i, format!("unexpected character: {q}")),
    };
    let (line, col) = line_col(text, at);
    ParseError::NonAscii { line, col, message }
}

/// Compiles every regex literal under the limits (before the parser
/// compiles them with the regex crate's defaults).
fn check_regexes(
    text: &str,
    regexes: &[RegexLiteral],
    limits: &ParseLimits,
) -> Result<(), ParseError> {
    for r in regexes {
        let Some(lit) = text.get(r.start..r.end) else {
            continue;
        };
        // A literal that does not unquote is the parser's to report.
        let Ok(value) = promql_parser::util::unquote_string(lit) else {
            continue;
        };
        if let Err(error) = re::anchored_with(&value, limits.max_regex_bytes) {
            let (line, col) = line_col(text, r.label);
            return Err(ParseError::Regex { line, col, error });
        }
    }
    Ok(())
}

/// `text` with the contents of its regex literals replaced by `a`s (same
/// byte length, so positions hold): what the position search parses.
pub(crate) fn blank_regexes(text: &str, limits: &ParseLimits) -> String {
    let Ok(regexes) = scan(text, limits) else {
        return text.to_string();
    };
    let mut b = text.as_bytes().to_vec();
    for r in regexes {
        let close = if r.end > r.start + 1 && r.end <= b.len() && b[r.end - 1] == b[r.start] {
            r.end - 1
        } else {
            r.end
        };
        for x in b.iter_mut().take(close).skip(r.start + 1) {
            *x = b'a';
        }
    }
    String::from_utf8(b).unwrap_or_else(|_| text.to_string())
}

/// How deep the tree nests, not counting its leaves (selectors and
/// literals), without recursion.
pub fn tree_depth(e: &Expr) -> usize {
    let mut max = 0;
    let mut stack: Vec<(&Expr, usize)> = vec![(e, 0)];
    while let Some((e, d)) = stack.pop() {
        let children: Vec<&Expr> = match e {
            Expr::Aggregate(a) => std::iter::once(a.expr.as_ref())
                .chain(a.param.as_deref())
                .collect(),
            Expr::Unary(u) => vec![&u.expr],
            Expr::Binary(b) => vec![&b.lhs, &b.rhs],
            Expr::Paren(p) => vec![&p.expr],
            Expr::Subquery(s) => vec![&s.expr],
            Expr::Call(c) => c.args.args.iter().map(|a| a.as_ref()).collect(),
            Expr::VectorSelector(_)
            | Expr::MatrixSelector(_)
            | Expr::NumberLiteral(_)
            | Expr::StringLiteral(_)
            | Expr::Extension(_) => Vec::new(),
        };
        if !children.is_empty() {
            max = max.max(d + 1);
            stack.extend(children.into_iter().map(|c| (c, d + 1)));
        }
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_bytes: usize, max_depth: usize, max_operators: usize) -> ParseLimits {
        ParseLimits {
            max_bytes,
            max_depth,
            max_operators,
            max_regex_bytes: re::DEFAULT_SIZE_LIMIT,
        }
    }

    fn err(q: &str, l: &ParseLimits) -> ParseError {
        parse_expr(q, l).unwrap_err()
    }

    #[test]
    fn escaped_non_ascii_in_a_string_is_an_error_not_a_panic() {
        // Found by the promql fuzz target: promql-parser's unescape panicked here.
        let l = ParseLimits::default();
        for q in [r#"up{a="\é"}"#, r#"{__name__=~".\�x"}"#, "'\\ü' + 1"] {
            let e = err(q, &l);
            assert!(
                e.to_string().contains("unknown escape sequence"),
                "{q}: {e}"
            );
        }
        // An escaped backslash before a non-ASCII character is fine; raw
        // strings have no escapes (whatever they answer, they do not panic).
        assert!(parse_expr(r#"up{a="\\é"}"#, &l).is_ok());
        let _ = parse_expr("up{a=`\\é`}", &l);
    }

    #[test]
    fn length_at_its_boundary() {
        let l = limits(10, 8, 8);
        assert!(parse_expr("up + up_10", &l).is_ok());
        assert_eq!(
            err("up + up_100", &l),
            ParseError::TooLong { len: 11, max: 10 }
        );
        assert_eq!(err("up + up_100", &l).reason(), Some("query_too_long"));
    }

    #[test]
    fn bracket_depth_at_its_boundary() {
        let l = limits(1 << 20, 8, 100);
        for (open, close) in [("(", ")"), ("sum(", ")")] {
            let ok = format!("{}up{}", open.repeat(8), close.repeat(8));
            assert!(parse_expr(&ok, &l).is_ok(), "{ok}");
            let deep = format!("{}up{}", open.repeat(9), close.repeat(9));
            let e = err(&deep, &l);
            assert!(matches!(e, ParseError::TooDeep { max: 8, .. }), "{e}");
            assert_eq!(e.reason(), Some("too_deep"));
        }
        // Unbalanced input is refused as early.
        let e = err(&format!("{}up", "(".repeat(50_000)), &l);
        assert_eq!(
            e,
            ParseError::TooDeep {
                line: 1,
                col: 9,
                max: 8
            }
        );
        // Brackets inside strings and comments do not count.
        let q = format!("up{{a=\"{}\"}} # {}\n", "(".repeat(100), "[".repeat(100));
        assert!(parse_expr(&q, &l).is_ok());
    }

    #[test]
    fn tree_depth_at_its_boundary() {
        // 8 chained additions nest 8 deep without a bracket.
        let l = limits(1 << 20, 8, 100);
        let ok = format!("up{}", " + up".repeat(8));
        assert!(parse_expr(&ok, &l).is_ok());
        let e = err(&format!("up{}", " + up".repeat(9)), &l);
        assert_eq!(e, ParseError::TreeTooDeep { max: 8 });
        assert_eq!(e.reason(), Some("too_deep"));
    }

    #[test]
    fn operators_at_their_boundary() {
        let l = limits(1 << 20, 1000, 10);
        let cases = [
            // binary chains
            ("up", " + up"),
            ("up", " and up"),
            ("up", " > bool up"),
            ("up", " == up"),
            // unary minus chains
            ("up", ""),
            // subquery chains
            ("up", "[1m:]"),
        ];
        for (head, op) in cases {
            let (ok, bad) = if op.is_empty() {
                (
                    format!("{}{head}", "-".repeat(10)),
                    format!("{}{head}", "-".repeat(11)),
                )
            } else {
                (
                    format!("{head}{}", op.repeat(10)),
                    format!("{head}{}", op.repeat(11)),
                )
            };
            match parse_expr(&ok, &l) {
                Ok(_) => {}
                // A subquery of a subquery parses; the chain itself may
                // not type-check, which is fine as long as it is not a
                // limit.
                Err(e) => assert_eq!(e.reason(), None, "{ok}: {e}"),
            }
            let e = err(&bad, &l);
            assert!(
                matches!(e, ParseError::TooManyOperators { max: 10, .. }),
                "{bad}: {e}"
            );
            assert_eq!(e.reason(), Some("too_many_operators"));
        }
        // offset and @ count too.
        let q = format!("up{}", " offset 1m".repeat(11));
        assert!(matches!(err(&q, &l), ParseError::TooManyOperators { .. }));
        // Matchers and operators inside strings do not.
        let q = format!(
            "up{{a=\"1\",b!=\"2\",c=~\"3\",d!~\"4\",e=\"{}\"}}",
            "+".repeat(100)
        );
        assert!(parse_expr(&q, &l).is_ok());
    }

    #[test]
    fn non_ascii_outside_strings_is_refused_like_prometheus() {
        let l = ParseLimits::default();
        // Messages and positions are what Prometheus 2.42 answers.
        for (q, want) in [
            ("up + größe", "1:8: parse error: unexpected character: 'ö'"),
            ("größe", "1:3: parse error: unexpected character: 'ö'"),
            (
                "up{job=\"é\"} + ö",
                "1:16: parse error: unexpected character: 'ö'",
            ),
            (
                "up{jöb=\"x\"}",
                "1:5: parse error: unexpected character inside braces: 'ö'",
            ),
            (
                "up{a!ö}",
                "1:5: parse error: unexpected character after '!' inside braces: 'ö'",
            ),
            (
                "up[ö]",
                "1:4: parse error: missing unit character in duration",
            ),
            ("up[5m:ö]", "1:7: parse error: unexpected character: 'ö'"),
            ("up +\n ö", "2:2: parse error: unexpected character: 'ö'"),
            (
                "sum(up) by (ö)",
                "1:13: parse error: unexpected character: 'ö'",
            ),
            (
                "up\u{a0}",
                "1:3: parse error: unexpected character: '\\u00a0'",
            ),
        ] {
            let e = err(q, &l);
            assert_eq!(e.to_string(), want, "{q}");
            assert_eq!(e.reason(), Some("non_ascii"));
        }
        // Inside strings and comments it is fine.
        for q in [
            "up{job=\"größe\"}",
            "up{job='größe'}",
            "up{job=`größe`}",
            "up{job=~\"gr(ö|oe)ße\"}",
            "{\"größe\"=\"x\"}",
            "up # größe",
            "label_replace(up, \"ö\", \"ä\", \"job\", \"(.*)\")",
        ] {
            assert!(parse_expr(q, &l).is_ok(), "{q}: {:?}", parse_expr(q, &l));
        }
    }

    #[test]
    fn regex_literals_are_compiled_under_the_limit() {
        let l = ParseLimits {
            max_regex_bytes: 100_000,
            ..Default::default()
        };
        let e = err("up{a=~\"a{1000}{1000}\"}", &l);
        assert!(
            matches!(
                e,
                ParseError::Regex {
                    line: 1,
                    col: 4,
                    error: RegexError::TooLarge { limit: 100_000 }
                }
            ),
            "{e}"
        );
        assert_eq!(e.reason(), Some("regex_too_large"));
        let e = err("{__name__=\"up\", job!~'(((x'}", &l);
        assert_eq!(
            e.to_string(),
            "1:17: parse error: error parsing regexp: unclosed group"
        );
        assert_eq!(e.reason(), None);
        // Escapes are read as the parser reads them.
        assert!(parse_expr(r#"up{a=~"a\\.b"}"#, &l).is_ok());
        // An equality matcher's value is no regex.
        assert!(parse_expr("up{a=\"a{1000}{1000}\"}", &l).is_ok());
    }

    #[test]
    fn blanked_regexes_keep_positions() {
        let l = ParseLimits::default();
        let q = "up{a=~\"ö|x\", b=\"ö\"} +";
        let b = blank_regexes(q, &l);
        assert_eq!(b.len(), q.len());
        assert_eq!(b, "up{a=~\"aaaa\", b=\"ö\"} +");
    }

    #[test]
    fn depth_of_trees() {
        let p = |q| parse_expr(q, &ParseLimits::default()).unwrap();
        assert_eq!(tree_depth(&p("up")), 0);
        assert_eq!(tree_depth(&p("(up)")), 1);
        assert_eq!(tree_depth(&p("sum(rate(x[5m]))")), 2);
        assert_eq!(tree_depth(&p("1 + 2 * 3")), 2);
    }

    /// The guard is the only way to the raw parser: no other source file in
    /// the workspace calls it.
    #[test]
    fn raw_parser_is_called_only_here() {
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
                if p.is_dir() {
                    if !(name.starts_with('.') || name == "target") {
                        dirs.push(p);
                    }
                } else if name.ends_with(".rs") && !p.ends_with("promql/src/parse.rs") {
                    let text = std::fs::read_to_string(&p).unwrap_or_default();
                    for (n, line) in text.lines().enumerate() {
                        let code = line.split("//").next().unwrap_or("");
                        if code.contains("parser::parse(")
                            || code.contains("parser::parse;")
                            || code.contains("parse::parse(")
                            || code.contains("parser::{parse")
                            || code.contains("parser::lexer(")
                        {
                            offenders.push(format!("{}:{}: {line}", p.display(), n + 1));
                        }
                    }
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "parse PromQL through skein_promql::parse:\n{}",
            offenders.join("\n")
        );
    }
}
