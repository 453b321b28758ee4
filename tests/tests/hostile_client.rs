//! A hostile client against a running querier (two real Prometheus servers,
//! a sidecar each, the querier over both). Every case must get an HTTP
//! answer with Prometheus's status and `errorType`, and after every case the
//! querier must still be running and answer a normal query exactly as
//! before. Cases:
//! - non-ASCII outside strings (`up + größe`, a metric name), invalid UTF-8
//!   and garbage bytes in parameters (percent-encoded): 400 bad_data;
//! - 50,000 nested parentheses, balanced and unbalanced, in a query and in
//!   `match[]` (once a stack overflow that aborted the process): 400;
//! - long operator and unary-minus chains, deep subquery nesting: 400;
//! - 5,000 `match[]`, a query over the length limit, an 8+ MiB body (sent
//!   whole, and announced by Content-Length only): 400;
//! - huge regexes (`a{1000}{1000}`, a 100 KB alternation, a 1 MB one): 400;
//! - an extremely long label name in `match[]`: an answer, not a crash;
//! - 1 ms steps over a year: 400; nested subquery bombs: 422, refused before
//!   allocating;
//! - many concurrent slow queries beyond the queue (a second querier with
//!   a purpose-built slow StoreAPI): 503 `unavailable` for the excess, the
//!   rest answered correctly.
//!
//! After the bombs the querier's peak resident memory (VmHWM) must stay
//! under 512 MiB.

use std::io::{Read, Write};
use std::time::Duration;

use serde_json::Value;
use skein_e2e::fixture::TwoClusters;
use skein_e2e::http::{ApiClient, ApiResponse};
use skein_e2e::procinfo::status_bytes;
use skein_e2e::promjson::QueryData;
use skein_e2e::skein::SkeinNode;
use skein_e2e::timefmt::secs_string;

/// The querier's peak resident memory must stay under this after the bombs
/// (a debug build idles around 30 MiB).
const VM_HWM_BOUND: u64 = 512 << 20;

/// What a case must be answered with.
#[derive(Clone, Copy, Debug)]
enum Want {
    /// HTTP status and errorType.
    Error(u16, &'static str),
    /// HTTP 200, success.
    Success,
}

struct Suite<'a> {
    setup: &'a mut TwoClusters,
    client: ApiClient,
    baseline: QueryData,
    end: i64,
    failures: Vec<String>,
    cases: usize,
}

impl Suite<'_> {
    /// The normal query every case is followed by.
    fn normal(&self) -> anyhow::Result<QueryData> {
        self.client
            .query("sum by (cluster) (gen_queue_depth)", self.end)
    }

    /// Checks an answer, then that the querier lives and answers as before.
    fn check(&mut self, what: &str, res: anyhow::Result<ApiResponse>, want: Want) {
        self.cases += 1;
        match res {
            Err(e) => self.failures.push(format!("{what}: no HTTP answer: {e:#}")),
            Ok(r) => {
                let ok = match want {
                    Want::Error(status, ty) => {
                        r.status == status
                            && r.error_type() == Some(ty)
                            && r.body.get("status").and_then(Value::as_str) == Some("error")
                    }
                    Want::Success => r.ensure_success().is_ok(),
                };
                if !ok {
                    let text: String = r.text.chars().take(400).collect();
                    self.failures.push(format!(
                        "{what}: want {want:?}, got HTTP {}: {text}",
                        r.status
                    ));
                }
            }
        }
        if let Some(status) = self.setup.querier.exited() {
            panic!(
                "{what}: the querier exited ({status}); log:\n{}",
                self.setup.querier.guard().log_tail(30)
            );
        }
        match self.normal() {
            Ok(d) if d == self.baseline => {}
            Ok(d) => self.failures.push(format!(
                "{what}: the normal query changed its answer: {d:?} vs {:?}",
                self.baseline
            )),
            Err(e) => self
                .failures
                .push(format!("{what}: the normal query failed afterwards: {e:#}")),
        }
    }

    fn query(&mut self, what: &str, q: &str, want: Want) {
        let res = self.client.post_form(
            "/api/v1/query",
            &[("query", q.to_string()), ("time", secs_string(self.end))],
        );
        self.check(what, res, want);
    }

    fn series(&mut self, what: &str, matches: &[String], want: Want) {
        let params: Vec<(&str, String)> = matches.iter().map(|m| ("match[]", m.clone())).collect();
        let res = self.client.post_form("/api/v1/series", &params);
        self.check(what, res, want);
    }

    /// A GET with a raw (already percent-encoded) path and query string.
    fn raw_get(&mut self, what: &str, path_and_query: &str, want: Want) {
        let res = raw_get(self.client.base(), path_and_query);
        self.check(what, res, want);
    }
}

fn raw_get(base: &str, path_and_query: &str) -> anyhow::Result<ApiResponse> {
    let url = format!("{base}{path_and_query}");
    let started = std::time::Instant::now();
    let resp = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?
        .get(&url)
        .send()?;
    let status = resp.status().as_u16();
    let text = resp.text()?;
    Ok(ApiResponse {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
        elapsed: started.elapsed(),
    })
}

/// POSTs a form whose headers announce `declared` bytes and sends none of
/// them: the querier must answer from the headers alone.
fn announce_only(base: &str, declared: usize) -> anyhow::Result<ApiResponse> {
    let addr = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "POST /api/v1/query HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {declared}\r\n\r\n"
    )?;
    s.flush()?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    // Read until the JSON body is complete (the server keeps the
    // connection open waiting for the announced bytes).
    loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&raw);
        if let Some((_, body)) = text.split_once("\r\n\r\n")
            && serde_json::from_str::<Value>(body).is_ok()
        {
            break;
        }
    }
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    Ok(ApiResponse {
        status,
        body: serde_json::from_str(body).unwrap_or(Value::Null),
        text: body.to_string(),
        elapsed: Duration::ZERO,
    })
}

#[test]
fn hostile_requests_get_answers_and_the_querier_survives() {
    let mut setup = TwoClusters::start_small().unwrap();
    let (_, end) = setup.window();
    let client =
        ApiClient::with_timeout(&setup.querier.http_url, Duration::from_secs(120)).unwrap();
    let baseline = client
        .query("sum by (cluster) (gen_queue_depth)", end)
        .unwrap();
    assert!(
        matches!(&baseline, QueryData::Vector(m) if m.len() == 2),
        "{baseline:?}"
    );
    let pid = setup.querier.guard().pid().unwrap();
    let mut s = Suite {
        setup: &mut setup,
        client,
        baseline,
        end,
        failures: Vec::new(),
        cases: 0,
    };
    let bad = Want::Error(400, "bad_data");

    // Non-ASCII outside strings; inside strings it works.
    s.query("up + größe", "up + größe", bad);
    s.query("a non-ASCII metric name", "größe_total", bad);
    s.query("non-ASCII in a label name", "up{jöb=\"x\"}", bad);
    s.query(
        "non-ASCII in a label value",
        "gen_queue_depth{cluster=\"größe\"}",
        Want::Success,
    );
    s.series("non-ASCII in match[]", &["größe".into()], bad);

    // Garbage bytes and invalid UTF-8 in parameters.
    s.raw_get(
        "invalid UTF-8 in query",
        "/api/v1/query?query=up%FF%FE",
        bad,
    );
    s.raw_get(
        "invalid UTF-8 in a label value",
        "/api/v1/query?query=up%7Bjob%3D%22%FF%22%7D",
        Want::Success,
    );
    s.raw_get(
        "control bytes in query",
        "/api/v1/query?query=%00%01%02%1B",
        bad,
    );
    s.raw_get(
        "invalid UTF-8 in time",
        "/api/v1/query?query=up&time=%FF",
        bad,
    );
    s.raw_get(
        "invalid UTF-8 in step",
        "/api/v1/query_range?query=up&start=0&end=10&step=%C3%28",
        bad,
    );
    s.raw_get(
        "invalid UTF-8 in match[]",
        "/api/v1/series?match[]=%FF%FE",
        bad,
    );
    s.raw_get(
        "invalid UTF-8 in a label name path",
        "/api/v1/label/%FF%FE/values",
        bad,
    );
    s.raw_get("broken percent-encoding", "/api/v1/query?query=%ZZ%", bad);

    // Deep nesting (once a stack overflow that aborted the process).
    let n = 50_000;
    let balanced = format!("{}up{}", "(".repeat(n), ")".repeat(n));
    let unbalanced = format!("{}up", "(".repeat(n));
    s.query("50k nested parentheses", &balanced, bad);
    s.query("50k unclosed parentheses", &unbalanced, bad);
    s.series("50k nested parentheses in match[]", &[balanced], bad);
    s.series("50k unclosed parentheses in match[]", &[unbalanced], bad);
    s.query(
        "50k nested functions",
        &format!("{}up{}", "abs(".repeat(20_000), ")".repeat(20_000)),
        bad,
    );
    s.query(
        "300 nested subqueries",
        &format!(
            "{}gen_queue_depth{}",
            "max_over_time((".repeat(300),
            ")[5m:1m])".repeat(300)
        ),
        bad,
    );

    // Long chains.
    s.query(
        "a 5,000-operator chain",
        &format!("up{}", " + up".repeat(5_000)),
        bad,
    );
    s.query(
        "a 50,000 unary minus chain",
        &format!("{}up", "-".repeat(50_000)),
        bad,
    );
    s.query(
        "a subquery chain",
        &format!("up{}", "[1m:]".repeat(5_000)),
        bad,
    );

    // Sizes and counts.
    let many: Vec<String> = (0..5_000).map(|i| format!("up{{i=\"{i}\"}}")).collect();
    s.series("5,000 match[]", &many, bad);
    s.query(
        "a query over the length limit",
        &format!("up{{job=\"{}\"}}", "x".repeat(200_000)),
        bad,
    );
    let body = format!("query=up&pad={}", "x".repeat(9 << 20));
    let res = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
        .post(format!("{}/api/v1/query", s.client.base()))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .map_err(anyhow::Error::from)
        .and_then(|r| {
            let status = r.status().as_u16();
            let text = r.text()?;
            Ok(ApiResponse {
                status,
                body: serde_json::from_str(&text).unwrap_or(Value::Null),
                text,
                elapsed: Duration::ZERO,
            })
        });
    s.check("a 9 MiB body", res, bad);
    let res = announce_only(s.client.base(), 64 << 30);
    s.check("a 64 GiB body announced", res, bad);
    s.series(
        "an extremely long label name in match[]",
        &[format!("{{{}=\"x\"}}", "a".repeat(100_000))],
        Want::Success,
    );

    // Regexes.
    s.query("a{1000}{1000}", "up{job=~\"a{1000}{1000}\"}", bad);
    s.series(
        "a{1000}{1000} in match[]",
        &["up{job=~\"a{1000}{1000}\"}".into()],
        bad,
    );
    let alternation = |n: usize| {
        (0..n)
            .map(|i| format!("job_{i:08}"))
            .collect::<Vec<_>>()
            .join("|")
    };
    // 100 KB of alternatives: under the length limit, over the regex size.
    s.query(
        "a 100 KB alternation",
        &format!("up{{job=~\"{}\"}}", alternation(7_500)),
        bad,
    );
    s.query(
        "a 1 MB alternation",
        &format!("up{{job=~\"{}\"}}", alternation(75_000)),
        bad,
    );
    s.query(
        "label_replace with a huge regex",
        "label_replace(up, \"a\", \"$1\", \"job\", \"(x{1000}){1000}\")",
        bad,
    );

    // Steps and subquery bombs.
    let res = s.client.get(
        "/api/v1/query_range",
        &[
            ("query", "up".to_string()),
            ("start", "0".to_string()),
            ("end", "31536000".to_string()),
            ("step", "0.001".to_string()),
        ],
    );
    s.check("1 ms steps over a year", res, bad);
    let too_many = Want::Error(422, "execution");
    s.query(
        "nested 1 ms subqueries over a year",
        "max_over_time(max_over_time(gen_queue_depth[1y:1ms])[1y:1ms])",
        too_many,
    );
    s.query(
        "1 s subquery over a year",
        "max_over_time(gen_queue_depth[1y:1s])",
        too_many,
    );
    s.query(
        "ten nested subqueries over a year",
        &format!(
            "{}gen_queue_depth{}",
            "max_over_time(".repeat(10),
            "[1y:1m])".repeat(10)
        ),
        too_many,
    );

    let hwm = status_bytes(pid, "VmHWM").unwrap();
    eprintln!(
        "{} hostile cases; querier VmHWM {:.1} MiB",
        s.cases,
        hwm as f64 / (1 << 20) as f64
    );
    let failures = std::mem::take(&mut s.failures);
    assert!(
        failures.is_empty(),
        "{} of {} hostile cases failed:\n{}",
        failures.len(),
        s.cases,
        failures.join("\n")
    );
    assert!(
        hwm < VM_HWM_BOUND,
        "querier peak RSS {hwm} bytes is over {VM_HWM_BOUND}"
    );
}

/// A second querier over the same sidecars plus a StoreAPI that takes 3 s
/// per call, allowing 2 requests at once and 2 waiting: of 10 concurrent
/// requests, the excess gets 503 `unavailable` at once and the admitted
/// ones are answered with the data.
#[test]
fn requests_beyond_the_queue_get_503_and_the_rest_are_answered() {
    use skein_actors::query::memstore::{MemStore, MemStoreOptions};
    use skein_promql::{Labels, Sample, Series};

    let setup = TwoClusters::start_small().unwrap();
    let (_, end) = setup.window();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let slow = rt
        .block_on(
            MemStore::new(
                vec![Series::new(
                    Labels::from_pairs([("__name__", "slow_metric")]),
                    vec![Sample { t: end, v: 7.0 }],
                )],
                MemStoreOptions {
                    component_type: "store".into(),
                    external_labels: Labels::from_pairs([("cluster", "slow")]),
                    delay: Some(Duration::from_secs(3)),
                    ..Default::default()
                },
            )
            .serve(),
        )
        .unwrap();
    let mut stores: Vec<String> = setup
        .sidecars
        .iter()
        .map(SkeinNode::store_address)
        .collect();
    stores.push(slow.address());
    let querier = SkeinNode::start_querier(
        setup.clusters.dir.path(),
        "querier-limited",
        &stores,
        &[
            "--query.max-concurrent".into(),
            "2".into(),
            "--query.max-queued".into(),
            "2".into(),
        ],
    )
    .unwrap();
    let client = ApiClient::with_timeout(&querier.http_url, Duration::from_secs(60)).unwrap();
    let answers: Vec<anyhow::Result<ApiResponse>> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..10)
            .map(|_| {
                let c = client.clone();
                sc.spawn(move || {
                    c.get(
                        "/api/v1/query",
                        &[
                            ("query", "sum(slow_metric)".to_string()),
                            ("time", secs_string(end)),
                        ],
                    )
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let (mut ok, mut refused) = (0, 0);
    for a in answers {
        let r = a.unwrap();
        match r.status {
            200 => {
                let d = r.data().unwrap();
                match d {
                    QueryData::Vector(m) => {
                        assert_eq!(m.len(), 1, "{m:?}");
                        assert_eq!(m.values().next().unwrap().1, 7.0);
                    }
                    other => panic!("{other:?}"),
                }
                ok += 1;
            }
            503 => {
                assert_eq!(r.error_type(), Some("unavailable"), "{}", r.text);
                assert!(
                    r.error()
                        .unwrap()
                        .contains("too many queries in flight and queued"),
                    "{}",
                    r.text
                );
                refused += 1;
            }
            other => panic!("HTTP {other}: {}", r.text),
        }
    }
    // 2 running + 2 waiting are answered; a request that arrived after the
    // first ones finished would be answered too, never refused wrongly.
    assert!(ok >= 4, "{ok} answered, {refused} refused");
    assert!(refused >= 1, "{ok} answered, {refused} refused");
    assert_eq!(ok + refused, 10);
    // The counters say so.
    let m = client.get("/metrics", &[]).unwrap().text;
    let line = m
        .lines()
        .find(|l| l.starts_with("skein_query_rejected_total{reason=\"queue_full\"}"))
        .unwrap_or("");
    assert_eq!(
        line.rsplit(' ').next().and_then(|v| v.parse::<u64>().ok()),
        Some(refused as u64),
        "{m}"
    );
    drop(slow);
}
