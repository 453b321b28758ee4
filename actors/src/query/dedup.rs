//! Removing HA replicas: series that are equal once the replica labels are
//! gone are merged into one, preferring one replica and filling its gaps
//! from the others without raising the sample rate (penalty dedup).

use skein_promql::{Labels, Sample, Series};

/// Penalty for the replica not chosen before any sample gap is known (ms).
const INITIAL_PENALTY_MS: i64 = 5000;

/// The labels without the replica labels.
pub fn strip_replica_labels(labels: &Labels, replica_labels: &[String]) -> Labels {
    if !replica_labels.iter().any(|r| labels.get(r).is_some()) {
        return labels.clone();
    }
    let mut out = labels.clone();
    for r in replica_labels {
        out.remove(r);
    }
    out
}

/// Index of the first sample after `after` (or 0 when nothing was taken yet).
fn seek(samples: &[Sample], from: usize, after: Option<i64>) -> usize {
    let Some(after) = after else { return from };
    let rest = samples.get(from..).unwrap_or(&[]);
    from + rest.partition_point(|s| s.t <= after)
}

/// Merges two replicas of one series. At each step the earlier sample wins;
/// the replica not taken is then skipped ahead by twice the last gap, so
/// switching between replicas never packs samples closer than either
/// replica had them. Ties go to `a`.
pub fn penalty_merge(a: &[Sample], b: &[Sample]) -> Vec<Sample> {
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    let (mut i, mut j) = (0usize, 0usize);
    let (mut pen_a, mut pen_b) = (0i64, 0i64);
    let mut last: Option<i64> = None;
    loop {
        i = seek(a, i, last.map(|t| t.saturating_add(pen_a)));
        j = seek(b, j, last.map(|t| t.saturating_add(pen_b)));
        let (take_a, s) = match (a.get(i), b.get(j)) {
            (None, None) => break,
            (Some(x), None) => (true, *x),
            (None, Some(y)) => (false, *y),
            (Some(x), Some(y)) => {
                let take_a = x.t <= y.t;
                let s = if take_a { *x } else { *y };
                let pen = match last {
                    Some(l) => s.t.saturating_sub(l).saturating_mul(2),
                    None => INITIAL_PENALTY_MS,
                };
                if take_a {
                    pen_b = pen;
                } else {
                    pen_a = pen;
                }
                (take_a, s)
            }
        };
        if take_a {
            pen_a = 0;
        } else {
            pen_b = 0;
        }
        out.push(s);
        last = Some(s.t);
    }
    out
}

/// Strips the replica labels and merges the series that become equal.
/// Input in any order; output sorted by labels with unique label sets.
/// Replicas are preferred in the order of their original label sets.
pub fn dedup_series(mut series: Vec<Series>, replica_labels: &[String]) -> Vec<Series> {
    series.sort_by(|x, y| x.labels.cmp(&y.labels));
    let mut keyed: Vec<(Labels, Series)> = series
        .into_iter()
        .map(|s| (strip_replica_labels(&s.labels, replica_labels), s))
        .collect();
    // Stable: replicas keep their label order inside a group.
    keyed.sort_by(|x, y| x.0.cmp(&y.0));
    let mut out: Vec<Series> = Vec::with_capacity(keyed.len());
    for (labels, s) in keyed {
        match out.last_mut() {
            Some(prev) if prev.labels == labels => {
                prev.samples = penalty_merge(&prev.samples, &s.samples);
            }
            _ => out.push(Series::new(labels, s.samples)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(ts: &[i64], v: f64) -> Vec<Sample> {
        ts.iter().map(|&t| Sample { t, v }).collect()
    }

    fn times(s: &[Sample]) -> Vec<i64> {
        s.iter().map(|s| s.t).collect()
    }

    #[test]
    fn fills_gaps_without_doubling_samples() {
        let a = samples(&[0, 15_000, 30_000, 90_000, 105_000], 1.0);
        let b = samples(
            &[
                1_000, 16_000, 31_000, 46_000, 61_000, 76_000, 91_000, 106_000,
            ],
            2.0,
        );
        let m = penalty_merge(&a, &b);
        assert_eq!(
            times(&m),
            vec![0, 15_000, 30_000, 61_000, 76_000, 91_000, 106_000]
        );
        // Gaps between samples never shrink below the replicas' own.
        assert!(m.windows(2).all(|w| w[1].t - w[0].t >= 15_000));
    }

    #[test]
    fn identical_replicas_give_one_copy_and_one_side_alone_passes() {
        let a = samples(&[0, 10, 20, 30], 1.0);
        assert_eq!(penalty_merge(&a, &a), a);
        assert_eq!(penalty_merge(&a, &[]), a);
        assert_eq!(penalty_merge(&[], &a), a);
    }

    #[test]
    fn dedup_groups_by_labels_without_replica() {
        let l = |r: &str, job: &str| Labels::from_pairs([("job", job), ("replica", r)]);
        let series = vec![
            Series::new(l("b", "x"), samples(&[0, 10_000], 2.0)),
            Series::new(l("a", "x"), samples(&[0, 10_000, 20_000], 1.0)),
            Series::new(l("a", "w"), samples(&[5], 3.0)),
        ];
        let out = dedup_series(series, &["replica".to_string()]);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].labels, Labels::from_pairs([("job", "w")]));
        assert_eq!(out[1].labels, Labels::from_pairs([("job", "x")]));
        // Replica "a" is preferred: its values win at equal timestamps.
        assert!(out[1].samples.iter().all(|s| s.v == 1.0));
        assert_eq!(times(&out[1].samples), vec![0, 10_000, 20_000]);
    }

    #[test]
    fn strip_only_touches_replica_labels() {
        let l = Labels::from_pairs([("a", "1"), ("replica", "r"), ("rule_replica", "x")]);
        let r = vec!["replica".to_string(), "rule_replica".to_string()];
        assert_eq!(
            strip_replica_labels(&l, &r),
            Labels::from_pairs([("a", "1")])
        );
        assert_eq!(strip_replica_labels(&l, &[]), l);
    }
}
