//! Prometheus 3's experimental extended selectors (`x[5m] anchored`,
//! `x[5m] smoothed`, `x smoothed`). promql-parser lexes the keywords but its
//! grammar does not accept them, so before parsing each one is moved into
//! its selector as a reserved matcher (`__ext__="anchored"`), which the
//! planner and evaluator read and never send to a source.

use crate::labels::Labels;
use crate::source::{LabelMatcher, MatchOp};

/// The reserved label carrying the modifier inside a selector.
pub const EXT_LABEL: &str = "__ext__";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ext {
    Anchored,
    Smoothed,
}

impl Ext {
    pub fn name(self) -> &'static str {
        match self {
            Ext::Anchored => "anchored",
            Ext::Smoothed => "smoothed",
        }
    }

    /// The functions a range selector with this modifier may be passed to.
    pub fn allowed(self) -> &'static [&'static str] {
        match self {
            Ext::Anchored => &["changes", "delta", "increase", "rate", "resets"],
            Ext::Smoothed => &["delta", "increase", "rate"],
        }
    }
}

/// Marks the data label selector of `info(v, {...})` with the reserved
/// matcher, so selectors whose matchers all match the empty string (valid
/// there) get past the parser's non-empty-matcher rule.
pub fn rewrite_info(q: &str) -> String {
    // No real query needs many; each one scans the rest of the text.
    if q.matches("info").count() > 64 {
        return q.to_string();
    }
    let b = q.as_bytes();
    let mut inserts: Vec<usize> = Vec::new();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if let Some(qc) = quote {
            if c == b'\\' && qc != b'`' {
                i += 2;
                continue;
            }
            if c == qc {
                quote = None;
            }
            i += 1;
            continue;
        }
        if matches!(c, b'"' | b'\'' | b'`') {
            quote = Some(c);
        } else if b[i..].starts_with(b"info")
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
            // Bytes, not str slices: `i` may sit inside a multi-byte
            // character (`up + größe` once panicked here).
            && b[i + 4..]
                .iter()
                .find(|c| !c.is_ascii_whitespace())
                .is_some_and(|&c| c == b'(')
            && let Some(at) = info_selector_close(q, i + 4)
        {
            inserts.push(at);
        }
        i += 1;
    }
    if inserts.is_empty() {
        return q.to_string();
    }
    let mut out = String::with_capacity(q.len() + 32 * inserts.len());
    let mut last = 0;
    for at in inserts {
        let (Some(before), Some(rest)) = (q.get(..at), q.get(last..at)) else {
            return q.to_string();
        };
        let open = before.rfind('{').unwrap_or(at);
        let inner = q.get(open + 1..at).unwrap_or("").trim();
        out.push_str(rest);
        if !(inner.is_empty() || inner.ends_with(',')) {
            out.push_str(", ");
        }
        out.push_str(EXT_LABEL);
        out.push_str("=\"info\"");
        last = at;
    }
    out.push_str(q.get(last..).unwrap_or(""));
    out
}

/// The position of the closing `}` of `info(`'s second argument when that
/// argument is a bare `{...}` selector.
fn info_selector_close(q: &str, from: usize) -> Option<usize> {
    let b = q.as_bytes();
    let mut i = from + b.get(from..)?.iter().position(|&c| c == b'(')? + 1;
    let mut depth = 0i32;
    let mut quote: Option<u8> = None;
    let mut comma = None;
    while i < b.len() {
        let c = b[i];
        if let Some(qc) = quote {
            if c == b'\\' && qc != b'`' {
                i += 2;
                continue;
            }
            if c == qc {
                quote = None;
            }
        } else {
            match c {
                b'"' | b'\'' | b'`' => quote = Some(c),
                b'(' | b'{' | b'[' => depth += 1,
                b')' if depth == 0 => break,
                b')' | b'}' | b']' => depth -= 1,
                b',' if depth == 0 => comma = Some(i),
                _ => {}
            }
        }
        i += 1;
    }
    let arg = q.get(comma? + 1..i)?.trim();
    if !(arg.starts_with('{') && arg.ends_with('}')) {
        return None;
    }
    q.get(..i)?.rfind('}')
}

/// The modifier among a selector's matchers, if any.
pub fn ext_of(matchers: &[LabelMatcher]) -> Option<Ext> {
    matchers
        .iter()
        .find(|m| m.name == EXT_LABEL && m.op == MatchOp::Equal)
        .and_then(|m| match m.value.as_str() {
            "anchored" => Some(Ext::Anchored),
            "smoothed" => Some(Ext::Smoothed),
            _ => None,
        })
}

const KEYWORDS: [&str; 14] = [
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "atan2",
    "start",
    "end",
];

/// Rewrites `sel[5m] anchored` into `sel{__ext__="anchored"}[5m]` (and the
/// same for `smoothed` and plain vector selectors). Text without the
/// keywords is returned unchanged.
pub fn rewrite(q: &str) -> String {
    let uses = q.matches("anchored").count() + q.matches("smoothed").count();
    // No real query needs many; the scan below is quadratic in them.
    if uses == 0 || uses > 64 {
        return q.to_string();
    }
    let chars: Vec<(usize, char)> = q.char_indices().collect();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut brace_stack: Vec<usize> = Vec::new();
    let mut brace_open: std::collections::HashMap<usize, usize> = Default::default();
    let mut bracket_stack: Vec<usize> = Vec::new();
    let mut bracket_open: std::collections::HashMap<usize, usize> = Default::default();
    // (byte position, text) insertions and (start, end) removals.
    let mut inserts: Vec<(usize, String)> = Vec::new();
    let mut removals: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let (pos, c) = chars[i];
        if let Some(qc) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' && qc != '`' {
                escaped = true;
            } else if c == qc {
                quote = None;
            }
            i += 1;
            continue;
        }
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '{' => brace_stack.push(pos),
            '}' => {
                if let Some(o) = brace_stack.pop() {
                    brace_open.insert(pos, o);
                }
            }
            '[' => bracket_stack.push(pos),
            ']' => {
                if let Some(o) = bracket_stack.pop() {
                    bracket_open.insert(pos, o);
                }
            }
            _ => {}
        }
        if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].1.is_alphanumeric() || chars[i].1 == '_') {
                i += 1;
            }
            let end_pos = chars.get(i).map(|x| x.0).unwrap_or(q.len());
            let word = &q[pos..end_pos];
            let head = strip_modifiers(&q[..pos]);
            let k = chars[..start].partition_point(|x| x.0 < head.len());
            if (word == "anchored" || word == "smoothed")
                && let Some(target) = selector_end(q, &chars[..k], &brace_open, &bracket_open)
            {
                inserts.push((target.0, target.1(word)));
                removals.push((pos, end_pos));
            }
            continue;
        }
        i += 1;
    }
    let mut out = String::with_capacity(q.len() + 32);
    let mut ins = inserts;
    ins.sort_by_key(|x| x.0);
    let mut ii = 0;
    for (pos, c) in q.char_indices() {
        while ii < ins.len() && ins[ii].0 == pos {
            out.push_str(&ins[ii].1);
            ii += 1;
        }
        if removals.iter().any(|(s, e)| pos >= *s && pos < *e) {
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    while ii < ins.len() {
        out.push_str(&ins[ii].1);
        ii += 1;
    }
    out
}

/// `text` without trailing `@ <time>` and `offset <duration>` modifiers.
fn strip_modifiers(text: &str) -> &str {
    static RE: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(
            r"(?:@\s*(?:[-+]?[0-9.eE+]+|start\s*\(\s*\)|end\s*\(\s*\))|offset\s*-?\s*[0-9][0-9a-z.]*)\s*$",
        )
        .ok()
    });
    let mut t = text.trim_end();
    let Some(re) = re else { return t };
    while let Some(m) = re.find(t) {
        t = t[..m.start()].trim_end();
    }
    t
}

type Insertion = (usize, Box<dyn Fn(&str) -> String>);

/// Where to put the matcher for a keyword preceded by `before`.
fn selector_end(
    q: &str,
    before: &[(usize, char)],
    brace_open: &std::collections::HashMap<usize, usize>,
    bracket_open: &std::collections::HashMap<usize, usize>,
) -> Option<Insertion> {
    let mut k = before.len();
    while k > 0 && before[k - 1].1.is_whitespace() {
        k -= 1;
    }
    let (p, c) = *before.get(k.checked_sub(1)?)?;
    // For a range, look at what precedes its `[`.
    let (p, c) = if c == ']' {
        let open = *bracket_open.get(&p)?;
        let mut j = before.iter().position(|x| x.0 == open)?;
        while j > 0 && before[j - 1].1.is_whitespace() {
            j -= 1;
        }
        *before.get(j.checked_sub(1)?)?
    } else {
        (p, c)
    };
    if c == '}' {
        let open = *brace_open.get(&p)?;
        let inner = q.get(open + 1..p)?.trim();
        let sep = if inner.is_empty() || inner.ends_with(',') {
            ""
        } else {
            ", "
        };
        let sep = sep.to_string();
        return Some((p, Box::new(move |w| format!("{sep}{EXT_LABEL}=\"{w}\""))));
    }
    if c.is_alphanumeric() || c == '_' || c == ':' {
        // The word ending here must be a metric name, not a keyword.
        let mut j = before.iter().position(|x| x.0 == p)?;
        while j > 0 && (before[j - 1].1.is_alphanumeric() || matches!(before[j - 1].1, '_' | ':')) {
            j -= 1;
        }
        let word = q.get(before.get(j)?.0..p + c.len_utf8())?;
        if KEYWORDS.contains(&word) || word.parse::<f64>().is_ok() {
            return None;
        }
        return Some((
            p + c.len_utf8(),
            Box::new(|w| format!("{{{EXT_LABEL}=\"{w}\"}}")),
        ));
    }
    None
}

/// Removes the reserved label from a label set (for results).
pub fn strip(l: &mut Labels) {
    l.remove(EXT_LABEL);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_modifiers_into_selectors() {
        assert_eq!(
            rewrite("rate(x[5m] anchored)"),
            "rate(x{__ext__=\"anchored\"}[5m]         )"
        );
        assert_eq!(
            rewrite("increase(x{a=\"b\"}[1m] smoothed)"),
            "increase(x{a=\"b\", __ext__=\"smoothed\"}[1m]         )"
        );
        assert_eq!(rewrite("x smoothed"), "x{__ext__=\"smoothed\"}         ");
        assert_eq!(rewrite("x{} smoothed"), "x{__ext__=\"smoothed\"}         ");
        // Keywords in strings and after operators are left alone.
        assert_eq!(
            rewrite("label_replace(x, \"a\", \"smoothed\", \"b\", \"c\")"),
            "label_replace(x, \"a\", \"smoothed\", \"b\", \"c\")"
        );
        assert_eq!(rewrite("x and smoothed"), "x and smoothed");
        assert_eq!(
            rewrite_info("info(m, {data=~\".*\"})"),
            "info(m, {data=~\".*\", __ext__=\"info\"})"
        );
        assert_eq!(rewrite_info("info(m)"), "info(m)");
        assert_eq!(rewrite_info("info(m, {})"), "info(m, {__ext__=\"info\"})");
        // Non-ASCII text (refused by the parse guard, but the rewrite
        // must not panic on it either).
        assert_eq!(rewrite_info("up + größe"), "up + größe");
        assert_eq!(
            rewrite_info("größe + info(m, {})"),
            "größe + info(m, {__ext__=\"info\"})"
        );
        assert_eq!(
            rewrite_info("\"\\ö\" info(m, {})"),
            "\"\\ö\" info(m, {__ext__=\"info\"})"
        );
        assert_eq!(
            rewrite("x @ 100 offset -1m smoothed"),
            "x{__ext__=\"smoothed\"} @ 100 offset -1m         "
        );
    }
}
