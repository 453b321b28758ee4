//! The API against the real Prometheus 2.42 installed on this machine:
//! the same requests (needing no data) must give the same status and the
//! same bytes. Parse errors are compared by status and error type only,
//! since the parser reports positions differently.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use actix_web::{App, test, web};
use prometheus_client::registry::Registry;
use skein_actors::query::{QueryConfig, QueryHandle};

const PROMETHEUS: &str = "/usr/bin/prometheus";

struct Prometheus {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A plain HTTP/1.0 GET; returns (status, body).
fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_string()))
}

fn start_prometheus() -> Option<Prometheus> {
    if !std::path::Path::new(PROMETHEUS).exists() {
        eprintln!("{PROMETHEUS} not installed; skipping");
        return None;
    }
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("skein-api-compat-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("prometheus.yml");
    std::fs::write(&cfg, "global:\n  scrape_interval: 15s\n").unwrap();
    let child = Command::new(PROMETHEUS)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let p = Prometheus { child, port, dir };
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok((200, _)) = http_get(port, "/-/ready") {
            return Some(p);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("prometheus did not become ready");
}

/// Requests whose answers must be byte-identical.
const EXACT: &[&str] = &[
    "/api/v1/query?query=1%2B1&time=4",
    "/api/v1/query?query=time()&time=1.5",
    "/api/v1/query?query=vector(1)&time=1.05",
    "/api/v1/query?query=vector(time())&time=1435781451.781",
    "/api/v1/query?query=%22a%22&time=1.5",
    "/api/v1/query?query=1/0&time=10",
    "/api/v1/query?query=0/0&time=10",
    "/api/v1/query?query=-1/0&time=-1.5",
    "/api/v1/query?query=0.1%2B0.2&time=1",
    "/api/v1/query?query=1e21&time=1",
    "/api/v1/query?query=1e-7&time=1",
    "/api/v1/query?query=up&time=100",
    "/api/v1/query?query=vector(1)&time=2015-07-01T20:10:51.781Z",
    "/api/v1/query_range?query=vector(1)&start=0.005&end=1&step=0.5",
    "/api/v1/query_range?query=time()&start=0&end=1&step=0.5",
    "/api/v1/query_range?query=up&start=0&end=100&step=15s",
    "/api/v1/query_range?query=up&start=10&end=5&step=1",
    "/api/v1/query_range?query=up&start=0&end=5&step=0",
    "/api/v1/query_range?query=up&start=0&end=5&step=-1",
    "/api/v1/query_range?query=up&start=0&end=5&step=x",
    "/api/v1/query_range?query=up&start=0&end=5",
    "/api/v1/query_range?query=up&end=5&step=1",
    "/api/v1/query_range?query=up&start=abc&end=5&step=1",
    "/api/v1/query_range?query=up&start=0&end=100000&step=1",
    "/api/v1/query?query=up&time=abc",
    "/api/v1/query?query=up&timeout=x",
    "/api/v1/series",
    "/api/v1/series?match[]=up",
    "/api/v1/series?match[]=up&start=x",
    "/api/v1/series?match[]={job=~%22.*%22}",
    "/api/v1/labels",
    "/api/v1/labels?start=x",
    "/api/v1/label/job/values",
    "/api/v1/label/1bad/values",
    "/api/v1/query_exemplars?query=up",
    "/api/v1/metadata",
];

/// Requests compared by status, error type and the `line:col` of the
/// parse error (when the flag is set): the parser words some errors
/// differently.
const SAME_ERROR: &[(&str, bool)] = &[
    ("/api/v1/query?query=sum(up", true),
    ("/api/v1/query?query=", true),
    ("/api/v1/query?query=rate(up)", false),
    ("/api/v1/query?query=foo%20bar", true),
    ("/api/v1/query?query=up%7Bjob%3D%7D", true),
    ("/api/v1/query?query=up%20%2B", true),
    ("/api/v1/query?query=sum%20by%20(job)%20up", true),
    ("/api/v1/query?query=%7D", true),
    ("/api/v1/query_range?query=sum(&start=0&end=1&step=1", true),
    ("/api/v1/series?match[]=up{", true),
    ("/api/v1/labels?match[]=up{", true),
];

/// Malformed queries for `/api/v1/query`, compared like [`SAME_ERROR`].
const BAD_QUERIES: &[(&str, bool)] = &[
    ("rate(gen_http_requests_total[5m]", true),
    ("gen_queue_depth[5x]", true),
    ("up{job=\"a\"", true),
    ("up[5m", true),
    ("count_values(up)", true),
    ("up offset", true),
    ("1 + on(a) b", true),
    ("topk(up, 3)", false),
    ("up @ foo", true),
    ("up{job='x", true),
    ("abs(up, up)", true),
    ("up == bool", true),
    ("up +\n  (foo bar)", true),
];

/// The `line:col` in an error message, if any.
fn position(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let msg = v.get("error")?.as_str()?;
    let msg = msg.rsplit_once("\": ").map_or(msg, |(_, m)| m);
    let (pos, _) = msg.split_once(": parse error")?;
    Some(pos.to_string())
}

#[actix_web::test]
async fn answers_match_real_prometheus() {
    let Some(prom) = start_prometheus() else {
        return;
    };
    let mut registry = Registry::default();
    let handle = QueryHandle::start(QueryConfig::default(), &mut registry);
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(handle))
            .configure(super::configure),
    )
    .await;
    let ours = |path: &str| {
        let req = test::TestRequest::get().uri(path).to_request();
        let app = &app;
        async move {
            let resp = test::call_service(app, req).await;
            let status = resp.status().as_u16();
            let body = test::read_body(resp).await;
            (status, String::from_utf8(body.to_vec()).unwrap())
        }
    };
    let mut mismatches = Vec::new();
    for path in EXACT {
        let theirs = http_get(prom.port, path).unwrap();
        let mine = ours(path).await;
        if theirs != mine {
            mismatches.push(format!(
                "{path}\n  prometheus: {theirs:?}\n  skein:      {mine:?}"
            ));
        }
    }
    let encoded: Vec<(String, bool)> = BAD_QUERIES
        .iter()
        .map(|(q, same)| {
            let q: String = form_urlencoded::byte_serialize(q.as_bytes()).collect();
            (format!("/api/v1/query?query={q}"), *same)
        })
        .collect();
    let all = SAME_ERROR
        .iter()
        .map(|(p, same)| (p.to_string(), *same))
        .chain(encoded);
    for (path, same_position) in all {
        let path = path.as_str();
        let (ts, tb) = http_get(prom.port, path).unwrap();
        let (ms, mb) = ours(path).await;
        let kind = |b: &str| {
            serde_json::from_str::<serde_json::Value>(b)
                .ok()
                .and_then(|v| v.get("errorType").cloned())
        };
        let position_differs =
            same_position && (position(&tb).is_none() || position(&tb) != position(&mb));
        if ts != ms || kind(&tb) != kind(&mb) || kind(&tb).is_none() || position_differs {
            mismatches.push(format!(
                "{path}\n  prometheus: {ts} {tb}\n  skein:      {ms} {mb}"
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
