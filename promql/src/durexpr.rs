//! Duration expressions (experimental in Prometheus 3): arithmetic inside
//! range and subquery brackets (`x[5m+30s]`, `x[1h:step()*2]`) and after
//! `offset` (`offset (2*2)`, `offset min_of(step(), 1s)`). promql-parser
//! does not read them, so before parsing each is evaluated and replaced by
//! a duration literal in milliseconds.

use crate::duration::parse_prometheus_duration_ms;

/// Values `step()` and `range()` take, in milliseconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct DurationContext {
    pub step_ms: i64,
    pub range_ms: i64,
}

struct P<'a> {
    s: &'a [u8],
    i: usize,
    ctx: DurationContext,
    depth: usize,
}

/// How deep parentheses and calls may nest in a duration expression.
const MAX_NESTING: usize = 64;

impl P<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }

    /// expr := term (('+'|'-') term)*
    fn expr(&mut self) -> Option<f64> {
        let mut v = self.term()?;
        while let Some(c @ (b'+' | b'-')) = self.peek() {
            self.i += 1;
            let r = self.term()?;
            v = if c == b'+' { v + r } else { v - r };
        }
        Some(v)
    }

    /// term := unary (('*'|'/'|'%') unary)*
    fn term(&mut self) -> Option<f64> {
        let mut v = self.unary()?;
        while let Some(c @ (b'*' | b'/' | b'%')) = self.peek() {
            self.i += 1;
            let r = self.unary()?;
            v = match c {
                b'*' => v * r,
                b'/' => v / r,
                _ => v % r,
            };
        }
        Some(v)
    }

    /// unary := ('-'|'+') unary | power
    fn unary(&mut self) -> Option<f64> {
        match self.peek()? {
            b'-' => {
                self.i += 1;
                Some(-self.unary()?)
            }
            b'+' => {
                self.i += 1;
                self.unary()
            }
            _ => self.power(),
        }
    }

    /// power := atom ('^' unary)?  (right-associative, above unary minus)
    fn power(&mut self) -> Option<f64> {
        let base = self.atom()?;
        if self.peek() == Some(b'^') {
            self.i += 1;
            let e = self.unary()?;
            return Some(base.powf(e));
        }
        Some(base)
    }

    fn atom(&mut self) -> Option<f64> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return None;
        }
        let v = self.atom_inner();
        self.depth -= 1;
        v
    }

    fn atom_inner(&mut self) -> Option<f64> {
        let c = self.peek()?;
        if c == b'(' {
            self.i += 1;
            let v = self.expr()?;
            if self.peek()? != b')' {
                return None;
            }
            self.i += 1;
            return Some(v);
        }
        let start = self.i;
        if c.is_ascii_digit() || c == b'.' {
            while self.i < self.s.len()
                && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'.')
            {
                self.i += 1;
            }
            let tok = std::str::from_utf8(&self.s[start..self.i]).ok()?;
            if let Ok(f) = tok.parse::<f64>() {
                return Some(f);
            }
            return parse_prometheus_duration_ms(tok).map(|ms| ms as f64 / 1000.0);
        }
        if c.is_ascii_alphabetic() {
            while self.i < self.s.len()
                && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_')
            {
                self.i += 1;
            }
            let name = std::str::from_utf8(&self.s[start..self.i])
                .ok()?
                .to_ascii_lowercase();
            if self.peek()? != b'(' {
                return None;
            }
            self.i += 1;
            let mut args = Vec::new();
            if self.peek()? != b')' {
                loop {
                    args.push(self.expr()?);
                    match self.peek()? {
                        b',' => self.i += 1,
                        b')' => break,
                        _ => return None,
                    }
                }
            }
            self.i += 1;
            return match (name.as_str(), args.as_slice()) {
                ("step", []) => Some(self.ctx.step_ms as f64 / 1000.0),
                ("range", []) => Some(self.ctx.range_ms as f64 / 1000.0),
                ("min_of", [a, b]) => Some(a.min(*b)),
                ("max_of", [a, b]) => Some(a.max(*b)),
                _ => None,
            };
        }
        None
    }
}

/// Evaluates a duration expression to seconds.
pub fn eval(text: &str, ctx: DurationContext) -> Option<f64> {
    let mut p = P {
        s: text.as_bytes(),
        i: 0,
        ctx,
        depth: 0,
    };
    let v = p.expr()?;
    p.ws();
    (p.i == p.s.len() && v.is_finite()).then_some(v)
}

fn literal(secs: f64) -> String {
    let ms = (secs * 1000.0).round() as i64;
    if ms < 0 {
        format!("-{}ms", -ms)
    } else {
        format!("{ms}ms")
    }
}

fn is_plain(part: &str) -> bool {
    let t = part.trim();
    t.is_empty() || parse_prometheus_duration_ms(t).is_some()
}

/// Rewrites duration expressions into literals; text without any is
/// returned unchanged. Parts that do not evaluate are left for the parser
/// to reject.
pub fn rewrite(q: &str, ctx: DurationContext) -> String {
    let b = q.as_bytes();
    let mut out = String::with_capacity(q.len());
    let mut i = 0;
    let mut last = 0;
    let mut quote: Option<u8> = None;
    // Once no `]` is left, later `[` need no search (keeps this linear).
    let mut closes_left = true;
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
        match c {
            b'"' | b'\'' | b'`' => quote = Some(c),
            b'[' if closes_left => {
                let close = q[i..].find(']').map(|k| i + k);
                if close.is_none() {
                    closes_left = false;
                }
                if let Some(close) = close {
                    let inner = &q[i + 1..close];
                    let parts: Vec<&str> = split_colon(inner);
                    if parts.iter().any(|p| !is_plain(p)) {
                        let replaced: Option<Vec<String>> = parts
                            .iter()
                            .map(|p| {
                                if is_plain(p) {
                                    Some(p.trim().to_string())
                                } else {
                                    eval(p, ctx).map(literal)
                                }
                            })
                            .collect();
                        if let Some(r) = replaced {
                            out.push_str(&q[last..=i]);
                            out.push_str(&r.join(":"));
                            last = close;
                        }
                    }
                    i = close;
                }
            }
            b'o' if q[i..].starts_with("offset")
                && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
                && b.get(i + 6)
                    .is_some_and(|c| !c.is_ascii_alphanumeric() && *c != b'_') =>
            {
                let start = i + 6;
                if let Some(end) = offset_expr_end(q, start) {
                    let text = &q[start..end];
                    if !is_plain(text.trim().trim_start_matches('-'))
                        && let Some(v) = eval(text, ctx)
                    {
                        if (v * 1000.0).round() == 0.0 {
                            // A zero offset is no offset (the parser
                            // refuses zero durations).
                            out.push_str(&q[last..i]);
                        } else {
                            out.push_str(&q[last..start]);
                            out.push(' ');
                            out.push_str(&literal(v));
                        }
                        last = end;
                        i = end;
                        continue;
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    out.push_str(&q[last..]);
    out
}

/// Splits a bracket's content at its top-level colon.
fn split_colon(s: &str) -> Vec<&str> {
    let mut depth = 0i32;
    for (k, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ':' if depth == 0 => return vec![&s[..k], &s[k + 1..]],
            _ => {}
        }
    }
    vec![s]
}

/// The end of an offset's duration expression starting at `start`: an
/// optional sign, then a parenthesized expression or a function call
/// (`step()`, `range()`, `min_of(..)`, `max_of(..)`), or a literal.
fn offset_expr_end(q: &str, start: usize) -> Option<usize> {
    let b = q.as_bytes();
    let mut i = start;
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
    }
    let word_start = i;
    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.') {
        i += 1;
    }
    let word = q[word_start..i].to_ascii_lowercase();
    let is_call = matches!(word.as_str(), "step" | "range" | "min_of" | "max_of");
    if word.is_empty() || is_call {
        if b.get(i) != Some(&b'(') {
            return None;
        }
        let mut depth = 0;
        while i < b.len() {
            match b[i] {
                b'(' => depth += 1,
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(i + 1);
                    }
                }
                _ => {}
            }
            i += 1;
        }
        return None;
    }
    Some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluates_duration_arithmetic() {
        let c = DurationContext {
            step_ms: 10_000,
            range_ms: 60_000,
        };
        assert_eq!(eval("26m+4m", c), Some(1800.0));
        assert_eq!(eval("2m*(10+5)", c), Some(1800.0));
        assert_eq!(eval("1h30m % 1h", c), Some(1800.0));
        assert_eq!(eval("-2 ^ 2", c), Some(-4.0));
        assert_eq!(eval("min_of(step()+1, 1h)", c), Some(11.0));
        assert_eq!(eval("range()", c), Some(60.0));
        assert_eq!(eval("STep()", c), Some(10.0));
        assert_eq!(eval("5m foo", c), None);
    }

    #[test]
    fn rewrites_brackets_and_offsets() {
        let c = DurationContext::default();
        assert_eq!(rewrite("x[26m+4m]", c), "x[1800000ms]");
        assert_eq!(rewrite("x[5m:1m]", c), "x[5m:1m]");
        assert_eq!(rewrite("x[29s+1s:5s+5s]", c), "x[30000ms:10000ms]");
        assert_eq!(rewrite("x offset (2 * 2)", c), "x offset 4000ms");
        assert_eq!(rewrite("x offset 100 + 2", c), "x offset 100000ms + 2");
        assert_eq!(rewrite("x offset 5m", c), "x offset 5m");
        assert_eq!(rewrite("x offset range()", c), "x ");
        assert_eq!(rewrite("x{a=\"[1+1]\"}", c), "x{a=\"[1+1]\"}");
    }
}
