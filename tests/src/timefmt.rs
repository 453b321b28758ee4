//! Time values: milliseconds since the epoch, rendered as the seconds strings the
//! Prometheus API and promtool accept.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in ms since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `1700000000.123` for 1700000000123 ms (exact, no float rounding).
pub fn secs_string(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let a = ms.unsigned_abs();
    format!("{sign}{}.{:03}", a / 1000, a % 1000)
}

/// Parse a Prometheus API timestamp (a JSON number in seconds) to exact ms.
pub fn json_secs_to_ms(v: &serde_json::Value) -> anyhow::Result<i64> {
    // serde_json keeps the textual form when possible only with arbitrary_precision;
    // f64 seconds * 1000 rounded is exact for ms resolution at current epochs.
    let f = v
        .as_f64()
        .ok_or_else(|| anyhow::anyhow!("timestamp is not a number: {v}"))?;
    Ok((f * 1000.0).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_parses_exactly() {
        assert_eq!(secs_string(1_700_000_000_123), "1700000000.123");
        assert_eq!(secs_string(5), "0.005");
        let v: serde_json::Value = serde_json::from_str("1700000000.123").unwrap();
        assert_eq!(json_secs_to_ms(&v).unwrap(), 1_700_000_000_123);
    }
}
