//! Prometheus duration strings ("5m", "1h30m", "10s53ms") and the HTTP API's
//! float-seconds form.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot parse {input:?} to a valid duration")]
pub struct DurationError {
    pub input: String,
}

/// Units from largest to smallest; a duration lists them in this order.
const UNITS: [(&str, u64); 7] = [
    ("y", 31_536_000_000),
    ("w", 604_800_000),
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1000),
    ("ms", 1),
];

/// Parses a Prometheus duration ("1h30m") in milliseconds. Units must come
/// in decreasing order, each at most once; "0" is allowed.
pub fn parse_prometheus_duration_ms(s: &str) -> Option<u64> {
    if s == "0" {
        return Some(0);
    }
    if s.is_empty() {
        return None;
    }
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut total: u64 = 0;
    let mut next_rank = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let n: u64 = s.get(start..i)?.parse().ok()?;
        let ustart = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = s.get(ustart..i)?;
        let rank = UNITS.iter().position(|(u, _)| *u == unit)?;
        if rank < next_rank {
            return None;
        }
        next_rank = rank + 1;
        total = total.checked_add(n.checked_mul(UNITS[rank].1)?)?;
    }
    Some(total)
}

/// Parses a duration as the Prometheus HTTP API does: float seconds ("30",
/// "1.5") or a Prometheus duration string ("5m", "1h30m").
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let err = || DurationError {
        input: s.to_string(),
    };
    if let Ok(f) = s.parse::<f64>() {
        if !f.is_finite() || f < 0.0 || f * 1000.0 >= i64::MAX as f64 {
            return Err(err());
        }
        return Ok(Duration::from_millis((f * 1000.0).round() as u64));
    }
    parse_prometheus_duration_ms(s)
        .filter(|ms| *ms <= i64::MAX as u64)
        .map(Duration::from_millis)
        .ok_or_else(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_floats() {
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(
            parse_duration("10s53ms").unwrap(),
            Duration::from_millis(10_053)
        );
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(
            parse_duration("1y").unwrap(),
            Duration::from_secs(31_536_000)
        );
    }

    #[test]
    fn rejects_bad_input() {
        for bad in [
            "", "5", "m", "5x", "1m1h", "-1m", "-1", "NaN", "Inf", "1m1m",
        ] {
            if bad == "5" {
                continue; // "5" is 5 float seconds
            }
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
