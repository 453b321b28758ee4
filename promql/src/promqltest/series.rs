//! The series notation of promqltest files: `metric{a="b"} 0+10x5 _ stale`.

use regex::Regex;

use crate::eval::STALE_NAN_BITS;
use crate::labels::{Label, Labels, METRIC_NAME};

/// One value of an expanded sequence.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SeqValue {
    Omitted,
    Value(f64),
}

/// A parsed series description.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesDesc {
    pub labels: Labels,
    pub values: Vec<SeqValue>,
    /// Whether the values hold native histogram literals (`{{...}}`), which
    /// are not supported; `values` is empty then.
    pub histogram: bool,
}

/// Unquotes a Go string literal ("...", '...' or `...`).
pub fn unquote(s: &str) -> Option<String> {
    let first = s.chars().next()?;
    let last = s.chars().last()?;
    if s.len() < 2 || first != last {
        return None;
    }
    let inner = s.get(1..s.len() - 1)?;
    if first == '`' {
        return Some(inner.to_string());
    }
    if first != '"' && first != '\'' {
        return None;
    }
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'v' => out.push('\u{b}'),
            '\\' => out.push('\\'),
            '"' => out.push('"'),
            '\'' => out.push('\''),
            'x' => {
                let h: String = chars.by_ref().take(2).collect();
                out.push(char::from_u32(u32::from_str_radix(&h, 16).ok()?)?);
            }
            'u' => {
                let h: String = chars.by_ref().take(4).collect();
                out.push(char::from_u32(u32::from_str_radix(&h, 16).ok()?)?);
            }
            'U' => {
                let h: String = chars.by_ref().take(8).collect();
                out.push(char::from_u32(u32::from_str_radix(&h, 16).ok()?)?);
            }
            _ => return None,
        }
    }
    Some(out)
}

/// Reads a quoted string at the start of `s`; returns it and the rest.
fn take_quoted(s: &str) -> Option<(String, &str)> {
    let q = s.chars().next()?;
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        if escaped {
            escaped = false;
            continue;
        }
        if c == '\\' && q != '`' {
            escaped = true;
            continue;
        }
        if c == q {
            let end = i + c.len_utf8();
            return Some((unquote(s.get(..end)?)?, s.get(end..)?));
        }
    }
    None
}

fn is_name_char(c: char, first: bool) -> bool {
    c == '_' || c == ':' || c.is_ascii_alphabetic() || (!first && c.is_ascii_digit())
}

/// Parses `name{labels}` at the start of `s`; returns labels and the rest.
pub fn parse_labels(s: &str) -> Option<(Labels, &str)> {
    let s = s.trim_start();
    let mut labels: Vec<Label> = Vec::new();
    let name_len = s
        .char_indices()
        .take_while(|(i, c)| is_name_char(*c, *i == 0))
        .count();
    let (name, mut rest) = s.split_at(name_len);
    if !name.is_empty() {
        labels.push(Label::new(METRIC_NAME, name));
    }
    if let Some(r) = rest.strip_prefix('{') {
        rest = r;
        loop {
            rest = rest.trim_start();
            if let Some(r) = rest.strip_prefix('}') {
                rest = r;
                break;
            }
            let (lname, r) = if rest.starts_with('"') || rest.starts_with('\'') {
                take_quoted(rest)?
            } else {
                let n = rest
                    .char_indices()
                    .take_while(|(i, c)| is_name_char(*c, *i == 0))
                    .count();
                if n == 0 {
                    return None;
                }
                (rest.get(..n)?.to_string(), rest.get(n..)?)
            };
            let r = r.trim_start();
            if let Some(r) = r.strip_prefix('=') {
                let (value, r) = take_quoted(r.trim_start())?;
                labels.push(Label::new(lname, value));
                rest = r;
            } else {
                // A quoted metric name alone: {"metric.name", a="b"}.
                labels.push(Label::new(METRIC_NAME, lname));
                rest = r;
            }
            rest = rest.trim_start();
            if let Some(r) = rest.strip_prefix(',') {
                rest = r;
            }
        }
    } else if name.is_empty() {
        return None;
    }
    Some((Labels::new(labels), rest))
}

/// Parses a number as Go's ParseFloat does for the forms tests use.
pub fn parse_number(s: &str) -> Option<f64> {
    let t = s.trim();
    let (sign, body) = match t.strip_prefix('-') {
        Some(b) => (-1.0, b),
        None => (1.0, t.strip_prefix('+').unwrap_or(t)),
    };
    let v = match body.to_ascii_lowercase().as_str() {
        "inf" | "infinity" => f64::INFINITY,
        "nan" => f64::NAN,
        b if b.starts_with("0x") => i64::from_str_radix(b.get(2..)?, 16).ok()? as f64,
        b if b
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | '+' | '-' | '_')) =>
        {
            b.replace('_', "").parse::<f64>().ok()?
        }
        _ => return None,
    };
    Some(sign * v)
}

fn item_regex() -> Regex {
    const NUM: &str = r"(?:[Ii]nf|NaN|nan|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)";
    Regex::new(&format!(
        r"^(?P<a>[+-]?{NUM}|stale)(?P<b>[+-]{NUM})?(?:x(?P<n>[0-9]+))?$"
    ))
    .expect("static regex")
}

/// Expands the values part of a series description.
pub fn parse_values(s: &str) -> Option<Vec<SeqValue>> {
    let re = item_regex();
    let mut out = Vec::new();
    for tok in s.split_whitespace() {
        if tok == "_" {
            out.push(SeqValue::Omitted);
            continue;
        }
        if let Some(n) = tok.strip_prefix("_x") {
            let n: usize = n.parse().ok()?;
            out.extend(std::iter::repeat_n(SeqValue::Omitted, n));
            continue;
        }
        let caps = re.captures(tok)?;
        let a = caps.name("a")?.as_str();
        let mut v = if a == "stale" {
            f64::from_bits(STALE_NAN_BITS)
        } else {
            parse_number(a)?
        };
        let b = match caps.name("b") {
            Some(m) => Some(parse_number(m.as_str())?),
            None => None,
        };
        match caps.name("n") {
            None => {
                if b.is_some() {
                    return None;
                }
                out.push(SeqValue::Value(v));
            }
            Some(n) => {
                let n: usize = n.as_str().parse().ok()?;
                for _ in 0..=n {
                    out.push(SeqValue::Value(v));
                    if let Some(b) = b {
                        v += b;
                    }
                }
            }
        }
    }
    Some(out)
}

/// Parses `metric{labels} values...`.
pub fn parse_series_desc(line: &str) -> Option<SeriesDesc> {
    let (labels, rest) = parse_labels(line)?;
    if rest.contains("{{") {
        return Some(SeriesDesc {
            labels,
            values: Vec::new(),
            histogram: true,
        });
    }
    Some(SeriesDesc {
        labels,
        values: parse_values(rest)?,
        histogram: false,
    })
}

/// Parses the body of a `load <interval>` block (one series description a
/// line; blank lines and `#` comments ignored) into series with samples at
/// `0, interval, 2*interval, ...`. Native histogram lines are an error.
pub fn load_series(text: &str, interval_ms: i64) -> Result<Vec<crate::source::Series>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let d = parse_series_desc(line)
            .filter(|d| !d.histogram)
            .ok_or_else(|| format!("line {}: cannot read series {line:?}", i + 1))?;
        let samples = crate::promqltest::run::desc_samples(&d, 0, interval_ms);
        out.push(crate::source::Series::new(d.labels, samples));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_sequences() {
        let d =
            parse_series_desc(r#"m{a="b", c="d\"e"} 0+10x2 _ stale 1x1 _x2 -1-1x1 Inf"#).unwrap();
        assert_eq!(d.labels.get("c"), Some("d\"e"));
        assert_eq!(d.labels.metric_name(), Some("m"));
        let v = d.values;
        assert_eq!(v.len(), 3 + 1 + 1 + 2 + 2 + 2 + 1);
        assert_eq!(v[1], SeqValue::Value(10.0));
        assert_eq!(v[3], SeqValue::Omitted);
        assert!(matches!(v[4], SeqValue::Value(x) if x.to_bits() == STALE_NAN_BITS));
        assert_eq!(v[10], SeqValue::Value(-2.0));
        assert_eq!(v[11], SeqValue::Value(f64::INFINITY));
    }

    #[test]
    fn loads_a_block() {
        let s = load_series("a{x=\"1\"} 1 _ 3\n# comment\n\nb 0+1x2", 15_000).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].samples.len(), 2);
        assert_eq!(s[0].samples[1].t, 30_000);
        assert_eq!(s[1].samples.len(), 3);
        assert!(load_series("c {{schema:0}}", 1000).is_err());
    }

    #[test]
    fn parses_label_forms() {
        let (l, rest) = parse_labels(r#"{__name__="x", "a.b"="c",} 1"#).unwrap();
        assert_eq!(l.metric_name(), Some("x"));
        assert_eq!(l.get("a.b"), Some("c"));
        assert_eq!(rest.trim(), "1");
        let (l, _) = parse_labels(r#"{"my.metric", a='q'}"#).unwrap();
        assert_eq!(l.metric_name(), Some("my.metric"));
        assert_eq!(l.get("a"), Some("q"));
        assert!(parse_series_desc("m {{schema:0 sum:1}}").unwrap().histogram);
    }
}
