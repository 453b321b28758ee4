//! Keeps the Series stream sorted after external labels are added, while
//! holding back as few series as possible.
//!
//! Prometheus streams remote-read series sorted by their own label sets.
//! Adding external labels can reorder them: `{a="1"}` sorts before
//! `{a="1",b="1"}`, but with the external label `c="x"` it becomes
//! `{a="1",c="x"}`, which sorts after `{a="1",b="1",c="x"}`.
//!
//! The *head* of a label set is its labels named below the smallest external
//! label name; a series' head is unchanged by completion. If series arrive
//! sorted and the completed sets keep at least one external label, no later
//! series can complete to something below a completed set that is smaller
//! than the current head at some position. So pending series are released
//! as soon as the head moves past them (in practice: when the metric name
//! changes), and only series sharing a head are held back.

use std::collections::BTreeMap;

use skein_promql::{Label, Labels};
use skein_proto::thanos::AggrChunk;

pub struct Orderer {
    /// Smallest external label name; `None` = hold everything until the end.
    head_bound: Option<String>,
    pending: BTreeMap<Labels, Vec<AggrChunk>>,
    last_received: Option<Labels>,
}

impl Orderer {
    /// `external` are all external labels, `kept` those the answer carries.
    pub fn new(external: &Labels, kept: &Labels) -> Self {
        let head_bound = if kept.is_empty() {
            None
        } else {
            external.iter().map(|l| l.name.clone()).min()
        };
        Orderer {
            head_bound,
            pending: BTreeMap::new(),
            last_received: None,
        }
    }

    /// Takes a series as received (`received`, in Prometheus's order) and
    /// as completed (`completed`); returns the series now safe to send, in
    /// order.
    pub fn push(
        &mut self,
        received: &Labels,
        completed: Labels,
        chunks: Vec<AggrChunk>,
    ) -> Vec<(Labels, Vec<AggrChunk>)> {
        if let Some(prev) = &self.last_received
            && received < prev
        {
            // Not sorted after all: hold everything from now on.
            tracing::warn!(
                "Prometheus returned series out of order; buffering the rest of the answer"
            );
            self.head_bound = None;
        }
        self.last_received = Some(received.clone());
        let mut out = Vec::new();
        if let Some(bound) = &self.head_bound {
            let head: Vec<&Label> = received
                .iter()
                .take_while(|l| l.name.as_str() < bound.as_str())
                .collect();
            while let Some(entry) = self.pending.first_entry() {
                if !below_head(entry.key(), &head) {
                    break;
                }
                out.push(entry.remove_entry());
            }
        }
        self.pending.entry(completed).or_default().extend(chunks);
        out
    }

    /// Everything still pending, in order; chunks of merged series by time.
    pub fn finish(self) -> Vec<(Labels, Vec<AggrChunk>)> {
        self.pending.into_iter().collect()
    }
}

/// True if `set` is smaller than `head` at some position both have.
fn below_head(set: &Labels, head: &[&Label]) -> bool {
    for (a, b) in set.iter().zip(head.iter()) {
        if a != *b {
            return a < *b;
        }
    }
    false
}

/// Orders the chunks of a series by time (series merged from several
/// Prometheus series may interleave).
pub fn sort_chunks(chunks: &mut [AggrChunk]) {
    if chunks.windows(2).any(|w| w[0].min_time > w[1].min_time) {
        chunks.sort_by_key(|c| (c.min_time, c.max_time));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sidecar::extlabels::{complete, effective_external};

    struct Rng(u64);
    impl Rng {
        fn next(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    fn chunk(t: i64) -> AggrChunk {
        AggrChunk {
            min_time: t,
            max_time: t,
            ..Default::default()
        }
    }

    /// Random sorted inputs: the streamed output equals a full sort.
    #[test]
    fn matches_a_full_sort_on_random_inputs() {
        let names = ["__name__", "a", "b", "c", "m", "r", "z"];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..2000 {
            let external = Labels::from_pairs([("c", "x"), ("r", "0")]);
            let dropped: Vec<String> = match round % 3 {
                0 => vec![],
                1 => vec!["r".into()],
                _ => vec!["c".into(), "r".into()],
            };
            let mut input: Vec<Labels> = (0..rng.next(12))
                .map(|_| {
                    let mut labels = Vec::new();
                    for n in names {
                        if rng.next(2) == 0 {
                            labels.push(Label::new(n, rng.next(3).to_string()));
                        }
                    }
                    Labels::new(labels)
                })
                .collect();
            input.sort();
            input.dedup();
            let kept = effective_external(&external, &dropped);
            let mut o = Orderer::new(&external, &kept);
            let mut got = Vec::new();
            let mut want: BTreeMap<Labels, Vec<AggrChunk>> = BTreeMap::new();
            for (i, ls) in input.iter().enumerate() {
                let done = complete(ls.clone(), &external, &dropped);
                want.entry(done.clone()).or_default().push(chunk(i as i64));
                got.extend(o.push(ls, done, vec![chunk(i as i64)]));
            }
            got.extend(o.finish());
            let want: Vec<(Labels, Vec<AggrChunk>)> = want.into_iter().collect();
            assert_eq!(got, want, "round {round}, input {input:?}");
        }
    }

    #[test]
    fn series_are_released_when_the_head_moves_on() {
        let external = Labels::from_pairs([("cluster", "c1")]);
        let mut o = Orderer::new(&external, &external);
        let a = Labels::from_pairs([("__name__", "a"), ("job", "x")]);
        let b = Labels::from_pairs([("__name__", "b"), ("job", "x")]);
        let done = |l: &Labels| complete(l.clone(), &external, &[]);
        assert!(o.push(&a, done(&a), vec![]).is_empty());
        let out = o.push(&b, done(&b), vec![]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, done(&a));
        assert_eq!(o.finish().len(), 1);
    }

    #[test]
    fn out_of_order_input_is_held_until_the_end() {
        let external = Labels::from_pairs([("cluster", "c1")]);
        let mut o = Orderer::new(&external, &external);
        let a = Labels::from_pairs([("__name__", "a")]);
        let b = Labels::from_pairs([("__name__", "b")]);
        let c = Labels::from_pairs([("__name__", "c")]);
        let done = |l: &Labels| complete(l.clone(), &external, &[]);
        assert!(o.push(&b, done(&b), vec![]).is_empty());
        assert!(o.push(&a, done(&a), vec![]).is_empty());
        assert!(o.push(&c, done(&c), vec![]).is_empty());
        let names: Vec<Option<String>> = o
            .finish()
            .into_iter()
            .map(|(l, _)| l.metric_name().map(str::to_string))
            .collect();
        assert_eq!(
            names,
            vec![Some("a".into()), Some("b".into()), Some("c".into())]
        );
    }

    #[test]
    fn chunks_are_sorted_only_when_needed() {
        let mut cs = vec![chunk(5), chunk(1), chunk(3)];
        sort_chunks(&mut cs);
        let mins: Vec<i64> = cs.iter().map(|c| c.min_time).collect();
        assert_eq!(mins, vec![1, 3, 5]);
    }
}
