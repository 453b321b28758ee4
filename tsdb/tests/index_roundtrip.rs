//! Index written by Skein, read back by Skein: symbols, postings, matcher selection, series.

use skein_tsdb::Label;
use skein_tsdb::index::{
    ChunkMeta, IndexError, IndexReader, IndexWriter, MatchOp, Matcher, SeriesToWrite,
};

fn labels(pairs: &[(&str, &str)]) -> Vec<Label> {
    pairs.iter().map(|(n, v)| Label::new(*n, *v)).collect()
}

/// 300 series: job in {api, db, web}, instance i0..i99, some with an extra `env` label.
fn sample_series() -> Vec<SeriesToWrite> {
    let mut out = Vec::new();
    for job in ["api", "db", "web"] {
        for i in 0..100 {
            let inst = format!("i{i:02}");
            let mut pairs = vec![
                ("__name__", "up"),
                ("instance", inst.as_str()),
                ("job", job),
            ];
            if i % 10 == 0 {
                pairs.insert(1, ("env", "prod"));
            }
            let chunks = (0..(i % 4))
                .map(|c| ChunkMeta {
                    chunk_ref: 8 + (i * 4 + c) * 100,
                    min_time: c as i64 * 1000,
                    max_time: c as i64 * 1000 + 999,
                })
                .collect();
            out.push(SeriesToWrite {
                labels: labels(&pairs),
                chunks,
            });
        }
    }
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    out
}

fn write(series: &[SeriesToWrite]) -> Vec<u8> {
    let mut buf = Vec::new();
    IndexWriter::write(series, &mut buf).unwrap();
    buf
}

fn select(r: &IndexReader<Vec<u8>>, ms: &[Matcher]) -> Vec<Vec<Label>> {
    let refs = r.select(ms).unwrap();
    r.series_many(&refs)
        .unwrap()
        .into_iter()
        .map(|s| s.labels)
        .collect()
}

fn brute(series: &[SeriesToWrite], ms: &[Matcher]) -> Vec<Vec<Label>> {
    series
        .iter()
        .filter(|s| {
            ms.iter().all(|m| {
                let v = s
                    .labels
                    .iter()
                    .find(|l| l.name == m.name)
                    .map_or("", |l| l.value.as_str());
                m.matches(v)
            })
        })
        .map(|s| s.labels.clone())
        .collect()
}

#[test]
fn round_trip_all_series() {
    let series = sample_series();
    let r = IndexReader::open(write(&series)).unwrap();
    let all = r.select(&[]).unwrap();
    assert_eq!(all.len(), 300);
    let got = r.series_many(&all).unwrap();
    for (want, got) in series.iter().zip(&got) {
        assert_eq!(want.labels, got.labels);
        assert_eq!(want.chunks, got.chunks);
        assert_eq!(r.series(got.series_ref).unwrap(), *got);
    }
    assert_eq!(r.label_names(), vec!["__name__", "env", "instance", "job"]);
    assert_eq!(r.label_values("job").unwrap(), vec!["api", "db", "web"]);
    assert_eq!(r.label_values("instance").unwrap().len(), 100);
    assert_eq!(r.label_value_count("instance"), 100);
    assert!(r.label_values("nope").unwrap().is_empty());
}

#[test]
fn matchers_agree_with_brute_force() {
    let series = sample_series();
    let r = IndexReader::open(write(&series)).unwrap();
    let cases: Vec<Vec<Matcher>> = vec![
        vec![Matcher::equal("job", "db")],
        vec![Matcher::equal("instance", "i37")],
        vec![
            Matcher::equal("instance", "i99"),
            Matcher::equal("job", "web"),
        ],
        vec![
            Matcher::equal("instance", "i00"),
            Matcher::equal("instance", "i01"),
        ],
        vec![Matcher::equal("instance", "zzz")],
        vec![Matcher::equal("env", "")],
        vec![Matcher::new(MatchOp::NotEqual, "env", "prod").unwrap()],
        vec![Matcher::new(MatchOp::NotEqual, "env", "").unwrap()],
        vec![Matcher::new(MatchOp::RegexMatch, "instance", "i[1-3]5").unwrap()],
        vec![
            Matcher::new(MatchOp::RegexMatch, "env", "prod|").unwrap(),
            Matcher::equal("job", "api"),
        ],
        vec![Matcher::new(MatchOp::RegexNoMatch, "job", "api|db").unwrap()],
        vec![Matcher::new(MatchOp::RegexMatch, "job", ".*").unwrap()],
        vec![Matcher::new(MatchOp::RegexMatch, "missing", ".+").unwrap()],
        vec![
            Matcher::new(MatchOp::RegexNoMatch, "instance", "i.0").unwrap(),
            Matcher::equal("__name__", "up"),
        ],
    ];
    for ms in &cases {
        let want = brute(&series, ms);
        assert_eq!(select(&r, ms), want, "matchers {ms:?}");
    }
    // Every single instance value is found through the sampled postings table.
    for i in 0..100 {
        assert_eq!(
            r.postings("instance", &format!("i{i:02}")).unwrap().len(),
            3
        );
    }
}

#[test]
fn writer_rejects_bad_input() {
    let mut s = sample_series();
    s.swap(0, 1);
    assert!(matches!(
        IndexWriter::write(&s, Vec::new()),
        Err(IndexError::InvalidInput(_))
    ));
    let dup = vec![
        SeriesToWrite {
            labels: labels(&[("a", "1")]),
            chunks: vec![],
        },
        SeriesToWrite {
            labels: labels(&[("a", "1")]),
            chunks: vec![],
        },
    ];
    assert!(IndexWriter::write(&dup, Vec::new()).is_err());
    let unsorted = vec![SeriesToWrite {
        labels: labels(&[("b", "1"), ("a", "1")]),
        chunks: vec![],
    }];
    assert!(IndexWriter::write(&unsorted, Vec::new()).is_err());
}

#[test]
fn corrupt_indexes_give_errors_not_panics() {
    let good = write(&sample_series());
    assert!(matches!(
        IndexReader::open(good[..10].to_vec()),
        Err(IndexError::TooSmall(10))
    ));
    let mut bad = good.clone();
    bad[0] = 0;
    assert!(matches!(
        IndexReader::open(bad),
        Err(IndexError::BadMagic(_))
    ));
    let mut bad = good.clone();
    bad[4] = 1;
    assert!(matches!(
        IndexReader::open(bad),
        Err(IndexError::UnsupportedVersion(1))
    ));
    let mut bad = good.clone();
    let n = bad.len();
    bad[n - 10] ^= 1;
    assert!(matches!(
        IndexReader::open(bad),
        Err(IndexError::Checksum { section: "toc", .. })
    ));
    let mut bad = good.clone();
    bad[12] ^= 0x40; // inside the symbol table
    assert!(matches!(
        IndexReader::open(bad),
        Err(IndexError::Checksum {
            section: "symbols",
            ..
        })
    ));
    // Truncated: TOC is gone or points past the end.
    for cut in [good.len() - 1, good.len() / 2, 60] {
        assert!(IndexReader::open(good[..cut].to_vec()).is_err());
    }
    // Flip bytes all over the file: opening and a full select never panic.
    for i in (0..good.len()).step_by(13) {
        let mut b = good.clone();
        b[i] ^= 0xa5;
        if let Ok(r) = IndexReader::open(b) {
            if let Ok(refs) =
                r.select(&[Matcher::new(MatchOp::RegexMatch, "job", "a.*|w.*").unwrap()])
            {
                let _ = r.series_many(&refs);
            }
            let _ = r.series(1_000_000);
        }
    }
}

/// Counts bytes fetched, like an object-storage backed reader would.
struct Counting {
    data: Vec<u8>,
    bytes: std::sync::atomic::AtomicU64,
    reads: std::sync::atomic::AtomicU64,
}

impl skein_tsdb::RangeRead for Counting {
    fn len(&self) -> u64 {
        self.data.len() as u64
    }
    fn read_range(&self, off: u64, len: u64) -> std::io::Result<std::borrow::Cow<'_, [u8]>> {
        use std::sync::atomic::Ordering::Relaxed;
        self.bytes.fetch_add(len, Relaxed);
        self.reads.fetch_add(1, Relaxed);
        self.data.read_range(off, len)
    }
}

#[test]
fn selection_reads_a_small_part_of_a_large_index() {
    use std::sync::atomic::Ordering::Relaxed;
    let mut series = Vec::new();
    for j in 0..20 {
        for i in 0..1000 {
            let inst = format!("host-{i:04}");
            let job = format!("job-{j:02}");
            let chunks = vec![ChunkMeta {
                chunk_ref: 8 + (j * 1000 + i) * 64,
                min_time: 0,
                max_time: 7_199_999,
            }];
            series.push(SeriesToWrite {
                labels: labels(&[
                    ("__name__", "cpu_seconds_total"),
                    ("instance", &inst),
                    ("job", &job),
                ]),
                chunks,
            });
        }
    }
    series.sort_by(|a, b| a.labels.cmp(&b.labels));
    let data = write(&series);
    let total = data.len() as u64;
    let r = IndexReader::open(Counting {
        data,
        bytes: 0.into(),
        reads: 0.into(),
    })
    .unwrap();
    let src = r.source();
    let opened = src.bytes.swap(0, Relaxed);
    src.reads.swap(0, Relaxed);
    let refs = r
        .select(&[
            Matcher::equal("instance", "host-0421"),
            Matcher::equal("job", "job-07"),
        ])
        .unwrap();
    let got = r.series_many(&refs).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].labels[1].value, "host-0421");
    let query = src.bytes.load(Relaxed);
    let reads = src.reads.load(Relaxed);
    println!(
        "index {total} B, open read {opened} B, equality select read {query} B in {reads} reads, reader memory {} B",
        r.memory_bytes()
    );
    assert!(query < total / 100, "{query} of {total}");
    assert!(reads <= 8, "{reads} reads");
    // A regex over one label scans that label's values only.
    src.bytes.swap(0, Relaxed);
    let refs = r
        .select(&[Matcher::new(MatchOp::RegexMatch, "job", "job-0[0-4]").unwrap()])
        .unwrap();
    assert_eq!(refs.len(), 5000);
    println!("regex select read {} B", src.bytes.load(Relaxed));
    assert!(src.bytes.load(Relaxed) < total / 5);
}
