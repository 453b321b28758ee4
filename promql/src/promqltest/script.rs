//! Parsing promqltest files into commands.

use crate::duration::parse_prometheus_duration_ms;
use crate::promqltest::series::{SeriesDesc, parse_number, parse_series_desc, unquote};

#[derive(Clone, Debug)]
pub enum Command {
    Load {
        line: usize,
        interval_ms: i64,
        series: Vec<SeriesDesc>,
        /// Lines the loader could not read (reported when an eval fails).
        unsupported: Vec<String>,
        with_nhcb: bool,
    },
    Clear,
    Eval(Eval),
}

#[derive(Clone, Debug, PartialEq)]
pub enum EvalKind {
    Instant {
        at_ms: i64,
    },
    Range {
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    },
}

/// An expected message: exact text or a regex.
#[derive(Clone, Debug, PartialEq)]
pub enum MsgMatch {
    Any,
    Exact(String),
    Regex(String),
}

impl MsgMatch {
    pub fn matches(&self, s: &str) -> bool {
        match self {
            MsgMatch::Any => true,
            MsgMatch::Exact(m) => m == s,
            MsgMatch::Regex(r) => regex::Regex::new(r)
                .map(|re| re.is_match(s))
                .unwrap_or(false),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Expected {
    Series(Vec<SeriesDesc>),
    Scalar(f64),
    String(String),
    /// `expect range vector from .. to .. step ..` then series.
    RangeVector {
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        series: Vec<SeriesDesc>,
    },
}

#[derive(Clone, Debug)]
pub struct Eval {
    pub line: usize,
    pub query: String,
    pub kind: EvalKind,
    pub fail: Option<MsgMatch>,
    pub warn: Option<MsgMatch>,
    pub info: Option<MsgMatch>,
    pub no_warn: bool,
    pub no_info: bool,
    pub ordered: bool,
    pub expected: Expected,
    /// Expected lines that could not be parsed (native histogram literals
    /// and the like); a case with any is skipped.
    pub unparsed: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ScriptError {
    pub line: usize,
    pub message: String,
}

/// Parses a time or duration of the test language ("50m", "0", "1h5m").
pub fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix('-') {
        return parse_prometheus_duration_ms(rest).map(|v| -(v as i64));
    }
    parse_prometheus_duration_ms(s).map(|v| v as i64)
}

fn err(line: usize, message: impl Into<String>) -> ScriptError {
    ScriptError {
        line,
        message: message.into(),
    }
}

fn parse_eval_head(line: usize, text: &str) -> Result<Eval, ScriptError> {
    let (head, rest) = text
        .split_once(char::is_whitespace)
        .ok_or_else(|| err(line, "bad eval line"))?;
    let mut ev = Eval {
        line,
        query: String::new(),
        kind: EvalKind::Instant { at_ms: 0 },
        fail: None,
        warn: None,
        info: None,
        no_warn: false,
        no_info: false,
        ordered: false,
        expected: Expected::Series(Vec::new()),
        unparsed: Vec::new(),
    };
    match head {
        "eval" => {}
        "eval_fail" => ev.fail = Some(MsgMatch::Any),
        "eval_warn" => ev.warn = Some(MsgMatch::Any),
        "eval_info" => ev.info = Some(MsgMatch::Any),
        "eval_ordered" => ev.ordered = true,
        _ => return Err(err(line, format!("unknown command {head}"))),
    }
    let rest = rest.trim_start();
    if let Some(r) = rest.strip_prefix("instant") {
        let r = r.trim_start();
        let r = r
            .strip_prefix("at")
            .ok_or_else(|| err(line, "expected 'at'"))?
            .trim_start();
        let (at, q) = r
            .split_once(char::is_whitespace)
            .ok_or_else(|| err(line, "missing query"))?;
        ev.kind = EvalKind::Instant {
            at_ms: parse_time(at).ok_or_else(|| err(line, format!("bad time {at}")))?,
        };
        ev.query = q.trim().to_string();
    } else if let Some(r) = rest.strip_prefix("range") {
        let words: Vec<&str> = r.split_whitespace().collect();
        let (Some(&"from"), Some(s), Some(&"to"), Some(e), Some(&"step"), Some(st)) = (
            words.first(),
            words.get(1),
            words.get(2),
            words.get(3),
            words.get(4),
            words.get(5),
        ) else {
            return Err(err(line, "bad range eval"));
        };
        let t = |x: &str| parse_time(x).ok_or_else(|| err(line, format!("bad time {x}")));
        ev.kind = EvalKind::Range {
            start_ms: t(s)?,
            end_ms: t(e)?,
            step_ms: t(st)?,
        };
        ev.query = after_words(r, 6)
            .ok_or_else(|| err(line, "missing query"))?
            .to_string();
    } else {
        return Err(err(line, "expected 'instant' or 'range'"));
    }
    Ok(ev)
}

/// What follows the first `n` whitespace-separated words of `s`.
fn after_words(s: &str, n: usize) -> Option<&str> {
    let mut rest = s.trim_start();
    for _ in 0..n {
        let end = rest.find(char::is_whitespace)?;
        rest = rest.get(end..)?.trim_start();
    }
    (!rest.is_empty()).then_some(rest)
}

fn msg_match(rest: &str) -> MsgMatch {
    let rest = rest.trim();
    if let Some(m) = rest.strip_prefix("msg:") {
        MsgMatch::Exact(m.trim().to_string())
    } else if let Some(r) = rest.strip_prefix("regex:") {
        MsgMatch::Regex(r.trim().to_string())
    } else {
        MsgMatch::Any
    }
}

fn parse_expect(ev: &mut Eval, line: usize, text: &str) -> Result<(), ScriptError> {
    let rest = text.trim_start_matches("expect").trim_start();
    let (word, tail) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    match word {
        "fail" => ev.fail = Some(msg_match(tail)),
        "warn" => ev.warn = Some(msg_match(tail)),
        "info" => ev.info = Some(msg_match(tail)),
        "no_warn" => ev.no_warn = true,
        "no_info" => ev.no_info = true,
        "ordered" => ev.ordered = true,
        "string" => {
            ev.expected = Expected::String(
                unquote(tail.trim()).ok_or_else(|| err(line, "bad expected string"))?,
            )
        }
        "range" => {
            let w: Vec<&str> = tail.split_whitespace().collect();
            let (
                Some(&"vector"),
                Some(&"from"),
                Some(s),
                Some(&"to"),
                Some(e),
                Some(&"step"),
                Some(st),
            ) = (
                w.first(),
                w.get(1),
                w.get(2),
                w.get(3),
                w.get(4),
                w.get(5),
                w.get(6),
            )
            else {
                return Err(err(line, "bad expect range line"));
            };
            let t = |x: &str| parse_time(x).ok_or_else(|| err(line, format!("bad time {x}")));
            ev.expected = Expected::RangeVector {
                start_ms: t(s)?,
                end_ms: t(e)?,
                step_ms: t(st)?,
                series: Vec::new(),
            };
        }
        other => return Err(err(line, format!("unknown expectation {other}"))),
    }
    Ok(())
}

fn add_expected(ev: &mut Eval, text: &str) {
    if let Some(f) = parse_number(text)
        && matches!(ev.expected, Expected::Series(ref s) if s.is_empty())
    {
        ev.expected = Expected::Scalar(f);
        return;
    }
    match parse_series_desc(text) {
        Some(d) if !d.histogram => match &mut ev.expected {
            Expected::Series(s) | Expected::RangeVector { series: s, .. } => s.push(d),
            _ => ev.unparsed.push(text.to_string()),
        },
        _ => ev.unparsed.push(text.to_string()),
    }
}

/// Parses a whole test file.
pub fn parse_script(text: &str) -> Result<Vec<Command>, ScriptError> {
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            let t = l.trim();
            if t.starts_with('#') {
                String::new()
            } else {
                t.to_string()
            }
        })
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line_no = i + 1;
        let l = &lines[i];
        i += 1;
        if l.is_empty() {
            continue;
        }
        if l == "clear" {
            out.push(Command::Clear);
            continue;
        }
        if l.starts_with("load") {
            let (head, iv) = l
                .split_once(char::is_whitespace)
                .ok_or_else(|| err(line_no, "load needs an interval"))?;
            let interval_ms =
                parse_time(iv).ok_or_else(|| err(line_no, format!("bad interval {iv}")))?;
            let mut series = Vec::new();
            let mut unsupported = Vec::new();
            while i < lines.len() && !lines[i].is_empty() {
                match parse_series_desc(&lines[i]) {
                    Some(d) => series.push(d),
                    None => unsupported.push(lines[i].clone()),
                }
                i += 1;
            }
            out.push(Command::Load {
                line: line_no,
                interval_ms,
                series,
                unsupported,
                with_nhcb: head == "load_with_nhcb",
            });
            continue;
        }
        if l.starts_with("eval") {
            let mut ev = parse_eval_head(line_no, l)?;
            while i < lines.len() && !lines[i].is_empty() {
                let t = &lines[i];
                if t.starts_with("expect ") || t == "expect" {
                    parse_expect(&mut ev, i + 1, t)?;
                } else {
                    add_expected(&mut ev, t);
                }
                i += 1;
            }
            out.push(Command::Eval(ev));
            continue;
        }
        return Err(err(line_no, format!("unknown command: {l}")));
    }
    Ok(out)
}
