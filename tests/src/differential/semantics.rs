//! Where Prometheus 2.42 (what runs here) and Prometheus 3 (what Skein follows)
//! differ, and how the differential run keeps to data and queries on which
//! they agree. [`RULES`] is printed at the start of every run.

use crate::cases::Eval;

/// Each rule: what differs, and what the harness does about it.
pub const RULES: &[(&str, &str)] = &[
    (
        "range/lookback boundaries: 2.42 closed [t-r, t], 3 left-open (t-r, t]",
        "generated samples sit on whole seconds 1-4 s after each 15 s slot; every evaluation \
         time is 7.321 s after a slot and every range/offset is whole seconds, so t-r never hits \
         a sample; subquery steps and ranges inside subqueries are multiples of 15 s, so inner \
         evaluation times (on the step grid) and their windows miss samples too; no subquery is \
         nested in another (the inner one, evaluated on the outer step grid, would have a point \
         exactly on its range start, which 2.42 counts and 3 does not); live-scraped \
         data: evaluation times are checked against every scrape timestamp (minus each range, \
         offset and the lookback) and queries that come within 50 ms are skipped",
    ),
    (
        "holt_winters (2.42) was renamed double_exponential_smoothing (3)",
        "Prometheus gets holt_winters(...), Skein double_exponential_smoothing(...) with the \
         same arguments",
    ),
    (
        "rate()/increase(): when a series starts late in the range (first sample more than 1.1 \
         average intervals after the range start), 2.42 takes the counter zero point if it is \
         nearer than that threshold, 3 takes the smaller of the zero point and half an interval",
        "counters start far above zero (generated and live) so their zero point is far away; no \
         evaluation window reaches back before the generated data starts (first evaluation 80 min \
         in); rate()/increase() are not applied to subqueries that may have gaps or to gauges \
         that start mid-window (seen: rate(increase(x[1m])[1h:30s]) 0.0485007 in 2.42 vs \
         0.0483865 in Skein, which is exactly the 3 formula)",
    ),
    (
        "regex '.' matches newlines in 3, not in 2.42",
        "no label value holds a newline",
    ),
    (
        "3 sums with Kahan compensation (sum, avg, *_over_time), 2.42 naively",
        "values compare within 1e-9 relative / 1e-12 absolute; no query cancels large terms",
    ),
    (
        "topk/bottomk tie-breaking depends on input order (not specified)",
        "where topk/bottomk answers differ, they pass only if at every timestamp the points one \
         side kept and the other did not carry equal values (printed as a note); sort order is \
         compared as the sequence of values, so ties cannot matter",
    ),
    (
        "default subquery step: Prometheus' global evaluation_interval, Skein 1 m",
        "the Prometheus under test runs with evaluation_interval 1m",
    ),
    (
        "atan2 keeps the metric name in 2.42; it drops it since 2.46 (prometheus/prometheus#12595), \
         like every other arithmetic operator",
        "atan2 answers are compared with __name__ removed from Prometheus' series",
    ),
    (
        "annotations (warnings/infos) are new in 3",
        "not compared; only status, result type, series and values",
    ),
];

/// Print [`RULES`].
pub fn print_rules() {
    println!("Prometheus 2.42 vs 3 differences and how this run avoids them:");
    for (i, (what, how)) in RULES.iter().enumerate() {
        println!("  {}. {what}\n     -> {how}", i + 1);
    }
}

/// Parse a PromQL duration made of whole units (`90s`, `5m`, `1h`, `1h30m`).
pub fn parse_duration_ms(s: &str) -> Option<i64> {
    let mut total = 0i64;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = if c == 'm' && chars.peek() == Some(&'s') {
            chars.next();
            1
        } else {
            match c {
                's' => 1000,
                'm' => 60_000,
                'h' => 3_600_000,
                'd' => 86_400_000,
                'w' => 7 * 86_400_000,
                'y' => 365 * 86_400_000,
                _ => return None,
            }
        };
        total += num.parse::<i64>().ok()? * unit;
        num.clear();
        any = true;
    }
    (any && num.is_empty()).then_some(total)
}

/// Every duration that moves a window edge in `expr`: ranges `[d]` and
/// subquery ranges `[d:s]`, offsets (`offset d`, `offset -d`), and sums of an
/// offset with each range (the edges of an offset range window).
pub fn window_shifts(expr: &str) -> Vec<i64> {
    let mut ranges = Vec::new();
    let mut offsets = Vec::new();
    let b = expr.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'[' {
            let rest = &expr[i + 1..];
            let end = rest.find([']', ':']).unwrap_or(rest.len());
            if let Some(d) = parse_duration_ms(&rest[..end]) {
                ranges.push(d);
            }
        }
        if expr[i..].starts_with("offset ") {
            let rest = expr[i + 7..].trim_start();
            let (neg, rest) = match rest.strip_prefix('-') {
                Some(r) => (true, r),
                None => (false, rest),
            };
            let end = rest
                .find(|c: char| !c.is_ascii_alphanumeric())
                .unwrap_or(rest.len());
            if let Some(d) = parse_duration_ms(&rest[..end]) {
                offsets.push(if neg { -d } else { d });
            }
        }
        i += 1;
    }
    let mut out = vec![0];
    out.extend(&ranges);
    for o in &offsets {
        out.push(*o);
        for r in &ranges {
            out.push(o + r);
        }
    }
    out
}

/// The evaluation times of `eval`.
pub fn eval_times(eval: &Eval) -> Vec<i64> {
    match *eval {
        Eval::Instant(t) => vec![t],
        Eval::Range(s, e, step) if step > 0 => {
            let mut v = Vec::new();
            let mut t = s;
            while t <= e {
                v.push(t);
                t += step;
            }
            v
        }
        Eval::Range(s, ..) => vec![s],
    }
}

/// Whether every window edge of `expr` evaluated at `eval` (with lookback
/// `lookback_ms`) stays at least `margin_ms` away from every timestamp in
/// `samples` (sorted). `None` when safe, else the first offending edge.
pub fn boundary_clash(
    expr: &str,
    eval: &Eval,
    lookback_ms: i64,
    samples: &[i64],
    margin_ms: i64,
) -> Option<(i64, i64)> {
    let mut shifts = window_shifts(expr);
    let base = shifts.clone();
    for s in base {
        shifts.push(s + lookback_ms);
    }
    for t in eval_times(eval) {
        for d in &shifts {
            let edge = t - d;
            let idx = samples.partition_point(|&x| x < edge - margin_ms);
            if let Some(&x) = samples.get(idx)
                && (x - edge).abs() < margin_ms
            {
                return Some((edge, x));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_shifts() {
        assert_eq!(parse_duration_ms("90s"), Some(90_000));
        assert_eq!(parse_duration_ms("1h30m"), Some(5_400_000));
        assert_eq!(parse_duration_ms("250ms"), Some(250));
        assert_eq!(parse_duration_ms("x"), None);
        let s = window_shifts("rate(x[5s] offset 3s) + y[10m:1m]");
        assert!(s.contains(&5000) && s.contains(&3000) && s.contains(&8000));
        assert!(s.contains(&600_000));
        assert!(window_shifts("x offset -5m").contains(&-300_000));
    }

    #[test]
    fn clash_detection() {
        let samples = vec![1_000, 2_000, 3_000];
        assert_eq!(
            boundary_clash("x[1s]", &Eval::Instant(3_500), 300_000, &samples, 50),
            None
        );
        assert!(boundary_clash("x[1s]", &Eval::Instant(3_020), 300_000, &samples, 50).is_some());
        // 2600 is safe, the second step (3000) sits on a sample.
        assert!(boundary_clash("x", &Eval::Range(2_600, 4_000, 400), 0, &samples, 50).is_some());
        assert!(boundary_clash("x", &Eval::Range(2_600, 4_000, 700), 0, &samples, 50).is_none());
    }
}
