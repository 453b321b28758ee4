//! Running `promtool` (the Prometheus 2.42 CLI) with a deadline.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::bail;

use crate::process::run_with_timeout;

/// Installed promtool.
pub const PROMTOOL: &str = "/usr/bin/promtool";

/// Run promtool with `args`; returns stdout, fails with stderr on a non-zero exit.
pub fn run(args: &[&str], scratch: &Path, timeout: Duration) -> anyhow::Result<String> {
    let mut cmd = Command::new(PROMTOOL);
    cmd.args(args);
    let out = run_with_timeout(cmd, timeout, scratch)?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "promtool {args:?} failed ({}):\nstdout: {stdout}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(stdout)
}

use std::collections::BTreeMap;

use anyhow::{Context, anyhow};

use crate::labels::LabelSet;
use crate::promjson::{Point, QueryData, parse_value};

/// Parse `1795649220` or `1795649821.588` (seconds) into exact ms.
pub fn parse_secs_ms(s: &str) -> anyhow::Result<i64> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        bail!("bad timestamp {s:?}");
    }
    let w: i64 = whole
        .parse()
        .with_context(|| format!("bad timestamp {s:?}"))?;
    let mut f = frac.to_string();
    while f.len() < 3 {
        f.push('0');
    }
    let f: i64 = f.parse().with_context(|| format!("bad timestamp {s:?}"))?;
    Ok(w * 1000 + if w < 0 { -f } else { f })
}

/// Parse `<value> @[<ts>]`.
fn parse_value_at(s: &str) -> anyhow::Result<Point> {
    let (v, rest) = s
        .split_once(" @[")
        .ok_or_else(|| anyhow!("no ' @[' in {s:?}"))?;
    let ts = rest
        .strip_suffix(']')
        .ok_or_else(|| anyhow!("no closing ']' in {s:?}"))?;
    Ok((parse_secs_ms(ts)?, parse_value(v.trim())?))
}

/// Parse a metric as promtool prints it: `name{a="b", c="d"}` or `{a="b"}`,
/// values quoted Go-style (`\"`, `\\`, `\n`, `\t`); a metric with a name and
/// no other label is printed as the bare name.
pub fn parse_metric(s: &str) -> anyhow::Result<LabelSet> {
    let s = s.trim();
    let Some(open) = s.find('{') else {
        if s.is_empty() || s.contains(['"', '=', ' ', '}']) {
            bail!("not a metric: {s:?}");
        }
        return Ok(LabelSet::from([("__name__".to_string(), s.to_string())]));
    };
    let name = &s[..open];
    let body = s[open + 1..]
        .strip_suffix('}')
        .ok_or_else(|| anyhow!("no closing '}}' in metric {s:?}"))?;
    let mut ls = LabelSet::new();
    if !name.is_empty() {
        ls.insert("__name__".into(), name.to_string());
    }
    let mut chars = body.chars().peekable();
    loop {
        while chars.peek() == Some(&' ') || chars.peek() == Some(&',') {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        for c in chars.by_ref() {
            if c == '=' {
                break;
            }
            key.push(c);
        }
        if chars.next() != Some('"') {
            bail!("label {key:?} value is not quoted in {s:?}");
        }
        let mut val = String::new();
        loop {
            match chars.next() {
                None => bail!("unterminated value of {key:?} in {s:?}"),
                Some('"') => break,
                Some('\\') => match chars.next() {
                    Some('n') => val.push('\n'),
                    Some('t') => val.push('\t'),
                    Some(c @ ('"' | '\\')) => val.push(c),
                    other => bail!("unsupported escape \\{other:?} in {s:?}"),
                },
                Some(c) => val.push(c),
            }
        }
        ls.insert(key.trim().to_string(), val);
    }
    Ok(ls)
}

/// Parse `promtool query instant` output: a vector (`<metric> => <v> @[<t>]`
/// lines) or a scalar (`scalar: <v> @[<t>]`).
pub fn parse_instant(out: &str) -> anyhow::Result<QueryData> {
    let mut m = BTreeMap::new();
    for line in out.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(rest) = line.strip_prefix("scalar: ") {
            return Ok(QueryData::Scalar(parse_value_at(rest)?));
        }
        let (metric, rest) = line
            .split_once(" => ")
            .ok_or_else(|| anyhow!("unexpected instant line {line:?}"))?;
        if m.insert(parse_metric(metric)?, parse_value_at(rest)?)
            .is_some()
        {
            bail!("duplicate series in {line:?}");
        }
    }
    Ok(QueryData::Vector(m))
}

/// Parse `promtool query range` output: `<metric> =>` then `<v> @[<t>]` lines.
pub fn parse_range(out: &str) -> anyhow::Result<QueryData> {
    let mut m: BTreeMap<LabelSet, Vec<Point>> = BTreeMap::new();
    let mut current: Option<LabelSet> = None;
    for line in out.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(metric) = line.strip_suffix(" =>") {
            let ls = parse_metric(metric)?;
            if m.insert(ls.clone(), Vec::new()).is_some() {
                bail!("duplicate series {line:?}");
            }
            current = Some(ls);
        } else {
            let ls = current
                .as_ref()
                .ok_or_else(|| anyhow!("point before any series: {line:?}"))?;
            let p = parse_value_at(line)?;
            m.entry(ls.clone()).or_default().push(p);
        }
    }
    Ok(QueryData::Matrix(m))
}

/// Parse `promtool query series` output: one metric per line.
pub fn parse_series(out: &str) -> anyhow::Result<Vec<LabelSet>> {
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(parse_metric)
        .collect()
}

/// Parse `promtool query labels` output: one value per line.
pub fn parse_label_values(out: &str) -> Vec<String> {
    out.lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::label_set;

    #[test]
    fn parses_promtool_text() {
        let ls = parse_metric(r#"gen_build_info{instance="h:1", path="a \"q\" \\ p/ü"}"#).unwrap();
        assert_eq!(ls["path"], "a \"q\" \\ p/ü");
        assert_eq!(ls["__name__"], "gen_build_info");
        let v =
            parse_instant("{cluster=\"eu1\"} => 243 @[1795649220]\n{} => +Inf @[1.5]\n").unwrap();
        assert_eq!(
            v.vector_point(&label_set(&[("cluster", "eu1")])),
            Some((1_795_649_220_000, 243.0))
        );
        assert_eq!(v.vector_point(&LabelSet::new()).map(|p| p.0), Some(1500));
        let s = parse_instant("scalar: 1 @[1795649821.588]\n").unwrap();
        assert_eq!(s, QueryData::Scalar((1_795_649_821_588, 1.0)));
        let r = parse_range("a{x=\"1\"} =>\n1 @[10]\n2.5 @[25]\nb =>\n").unwrap();
        assert_eq!(r.series_count(), 2);
        let r = parse_range("a{x=\"1\"} =>\n1 @[10]\n2.5 @[25]\n").unwrap();
        assert_eq!(r.point_count(), 2);
        assert!(parse_metric("a{x=1}").is_err());
    }
}
