//! Reading values from a node's `/metrics` page (Prometheus/OpenMetrics text).

use anyhow::bail;

use crate::http::ApiClient;

/// Sum of all samples of metric `name` (every label set) in exposition `text`;
/// `None` when no sample of it is there.
pub fn metric_sum(text: &str, name: &str) -> Option<f64> {
    let mut found = false;
    let mut sum = 0.0;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let rest = match rest.chars().next() {
            Some('{') => match rest.find('}') {
                Some(end) => &rest[end + 1..],
                None => continue,
            },
            Some(' ') => rest,
            _ => continue,
        };
        if let Some(v) = rest
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
        {
            sum += v;
            found = true;
        }
    }
    found.then_some(sum)
}

/// GET `/metrics` from `client`.
pub fn fetch(client: &ApiClient) -> anyhow::Result<String> {
    let resp = client.get("/metrics", &[])?;
    if resp.status != 200 {
        bail!("/metrics answered {}", resp.status);
    }
    Ok(resp.text)
}

/// The summed value of `name` on `client`'s `/metrics`, 0 when absent.
pub fn metric(client: &ApiClient, name: &str) -> anyhow::Result<f64> {
    Ok(metric_sum(&fetch(client)?, name).unwrap_or(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_label_sets_and_ignores_prefixes() {
        let text =
            "# TYPE a counter\na_total 3\na_total_x 9\na{x=\"1 2\"} 1\na{y=\"b\"} 2.5\nab 7\n";
        assert_eq!(metric_sum(text, "a_total"), Some(3.0));
        assert_eq!(metric_sum(text, "a"), Some(3.5));
        assert_eq!(metric_sum(text, "zz"), None);
    }
}
