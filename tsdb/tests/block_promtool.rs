//! Blocks written by Skein are read by real Prometheus tools (`promtool tsdb analyze` / `dump`),
//! and blocks written by promtool are read by Skein.

use skein_tsdb::Label;
use skein_tsdb::block::{Block, BlockWriter, ThanosMeta};
use skein_tsdb::index::{MatchOp, Matcher};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const PROMTOOL: &str = "/usr/bin/promtool";
const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;
const BASE: i64 = 1_700_000_000_000;

type SeriesMap = BTreeMap<String, Vec<(i64, f64)>>;
type TestSeries = (Vec<Label>, Vec<(i64, f64)>);

fn promtool(args: &[&str]) -> String {
    let out = Command::new(PROMTOOL)
        .args(args)
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Prometheus' text form of a label set.
fn label_string(labels: &[Label]) -> String {
    skein_tsdb::labels::DisplayLabels(labels).to_string()
}

/// 12 series over 3 jobs; 250-400 samples each (several chunks), jittered, with odd values.
fn test_data() -> Vec<TestSeries> {
    let mut out = Vec::new();
    for (j, job) in ["api", "db", "web"].iter().enumerate() {
        for i in 0..4 {
            let labels = vec![
                Label::new("__name__", "requests_total"),
                Label::new("job", *job),
                Label::new("instance", format!("host-{i}:9100")),
            ];
            let n = 250 + 50 * i + j as i64;
            let samples = (0..n)
                .map(|k| {
                    let t = BASE + k * 15_000 + (k * 7 + i) % 13;
                    let v = match k % 50 {
                        7 => f64::NAN,
                        13 => f64::INFINITY,
                        17 => -0.5,
                        _ => (k * (i + 1)) as f64 + 0.25 * j as f64,
                    };
                    (t, v)
                })
                .collect();
            out.push((labels, samples));
        }
    }
    out
}

/// Parses `promtool tsdb dump` lines: `{labels} value timestamp`.
fn parse_dump(out: &str) -> SeriesMap {
    let mut m = SeriesMap::new();
    for line in out.lines().filter(|l| !l.trim().is_empty()) {
        let mut it = line.rsplitn(3, ' ');
        let t: i64 = it.next().unwrap().parse().unwrap();
        let v: f64 = match it.next().unwrap() {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            x => x.parse().unwrap(),
        };
        m.entry(it.next().unwrap().to_string())
            .or_default()
            .push((t, v));
    }
    m
}

fn assert_same(want: &SeriesMap, got: &SeriesMap) {
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>()
    );
    for (k, w) in want {
        let g = &got[k];
        assert_eq!(w.len(), g.len(), "{k}");
        for (a, b) in w.iter().zip(g) {
            assert_eq!(a.0, b.0, "{k}");
            if a.1.is_nan() {
                assert!(b.1.is_nan(), "{k} at {}", a.0);
            } else {
                assert_eq!(a.1, b.1, "{k} at {}", a.0);
            }
        }
    }
}

fn expected(data: &[TestSeries]) -> SeriesMap {
    data.iter()
        .map(|(l, s)| {
            let mut l = l.clone();
            l.sort();
            (label_string(&l), s.clone())
        })
        .collect()
}

#[test]
fn skein_block_is_read_by_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = test_data();
    // A stale marker at the end of one series.
    let last = data[0].1.last().unwrap().0;
    data[0].1.push((last + 15_000, f64::from_bits(STALE_NAN)));
    let mut w = BlockWriter::new(dir.path()).unwrap();
    w.set_thanos(ThanosMeta {
        labels: [("replica".to_string(), "a".to_string())].into(),
        source: "test".into(),
        ..ThanosMeta::default()
    });
    for (l, s) in &data {
        w.add_series(l.clone(), s).unwrap();
    }
    let meta = w.finish().unwrap();
    let ulid = meta.ulid.to_string();
    let block_dir = dir.path().join(&ulid);
    assert!(block_dir.join("index").exists());
    assert_eq!(meta.stats.num_series, 12);
    assert!(meta.stats.num_chunks > 24);

    let analyze = promtool(&["tsdb", "analyze", dir.path().to_str().unwrap(), &ulid]);
    assert!(analyze.contains(&format!("Block ID: {ulid}")), "{analyze}");
    assert!(analyze.contains("Series: 12"), "{analyze}");

    // `dump` opens the directory as a Prometheus data dir, which has a WAL directory.
    std::fs::create_dir(dir.path().join("wal")).unwrap();
    let dump = promtool(&[
        "tsdb",
        "dump",
        &format!("--min-time={}", meta.min_time),
        &format!("--max-time={}", meta.max_time),
        dir.path().to_str().unwrap(),
    ]);
    assert_same(&expected(&data), &parse_dump(&dump));

    // And Skein reads its own block back, including the Thanos section.
    let b = Block::open(&block_dir).unwrap();
    assert_eq!(b.meta().thanos.as_ref().unwrap().labels["replica"], "a");
    assert!(
        b.meta()
            .thanos
            .as_ref()
            .unwrap()
            .files
            .iter()
            .any(|f| f.rel_path == "chunks/000001")
    );
    let got = read_all(&b, &[]);
    assert_same(&expected(&data), &got);
    let stale = &got[&label_string(&{
        let mut l = data[0].0.clone();
        l.sort();
        l
    })];
    assert_eq!(stale.last().unwrap().1.to_bits(), STALE_NAN);
}

fn read_all(b: &Block<skein_tsdb::FileRange>, ms: &[Matcher]) -> SeriesMap {
    let mut m = SeriesMap::new();
    for s in b.select(ms, i64::MIN, i64::MAX).unwrap() {
        m.insert(
            label_string(&s.labels),
            b.samples(&s, i64::MIN, i64::MAX).unwrap(),
        );
    }
    m
}

/// Runs promtool create-blocks-from openmetrics over `data` and returns the block directory.
fn promtool_block(data: &[TestSeries], dir: &Path) -> std::path::PathBuf {
    let mut om = String::new();
    om.push_str("# TYPE requests_total gauge\n");
    // OpenMetrics wants all samples of a metric family together; order by series then time.
    for (labels, samples) in data {
        let inner: Vec<String> = labels
            .iter()
            .filter(|l| l.name != "__name__")
            .map(|l| format!("{}={:?}", l.name, l.value))
            .collect();
        for (t, v) in samples {
            let val = if v.is_nan() {
                "NaN".to_string()
            } else if v.is_infinite() {
                "+Inf".to_string()
            } else {
                format!("{v:?}")
            };
            om.push_str(&format!(
                "requests_total{{{}}} {val} {}.{:03}\n",
                inner.join(","),
                t / 1000,
                t % 1000
            ));
        }
    }
    om.push_str("# EOF\n");
    let input = dir.join("in.om");
    std::fs::write(&input, om).unwrap();
    let out = dir.join("blocks");
    promtool(&[
        "tsdb",
        "create-blocks-from",
        "openmetrics",
        input.to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    let blocks: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(blocks.len(), 1, "{blocks:?}");
    blocks[0].clone()
}

#[test]
fn promtool_block_is_read_by_skein() {
    let dir = tempfile::tempdir().unwrap();
    let data = test_data();
    let block_dir = promtool_block(&data, dir.path());
    let b = Block::open(&block_dir).unwrap();
    assert_eq!(b.meta().stats.num_series, 12);
    assert_same(&expected(&data), &read_all(&b, &[]));

    // Matchers select the right subsets.
    let db = read_all(&b, &[Matcher::equal("job", "db")]);
    assert_eq!(db.len(), 4);
    assert!(db.keys().all(|k| k.contains("job=\"db\"")));
    let re = read_all(
        &b,
        &[
            Matcher::new(MatchOp::RegexMatch, "instance", "host-[12]:.*").unwrap(),
            Matcher::new(MatchOp::NotEqual, "job", "web").unwrap(),
        ],
    );
    assert_eq!(re.len(), 4);
    assert!(
        b.select(&[Matcher::equal("job", "nope")], i64::MIN, i64::MAX)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        b.index().label_values("job").unwrap(),
        vec!["api", "db", "web"]
    );

    // A time range keeps only overlapping chunks and samples.
    let (lo, hi) = (BASE + 3_600_000, BASE + 3_700_000);
    for s in b.select(&[], lo, hi).unwrap() {
        for c in &s.chunks {
            assert!(c.max_time >= lo && c.min_time <= hi);
        }
        let got = b.samples(&s, lo, hi).unwrap();
        assert!(!got.is_empty());
        assert!(got.iter().all(|(t, _)| *t >= lo && *t <= hi));
    }
    assert!(b.select(&[], BASE - 10_000, BASE - 1).unwrap().is_empty());
}
