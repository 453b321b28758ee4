//! The HTTP API against a QueryHandle over real in-process StoreAPI
//! servers: JSON shapes, error types and status codes, GET and POST,
//! repeated `match[]`, warnings from failing stores.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{App, test, web};
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use skein_actors::query::memstore::{MemStore, MemStoreOptions, RunningStore};
use skein_actors::query::{QueryConfig, QueryHandle};
use skein_promql::{Labels, Sample, Series};

const SCRAPE: i64 = 15_000;

fn samples(from: i64, to: i64, v: f64) -> Vec<Sample> {
    (0..)
        .map(|i| from + i * SCRAPE)
        .take_while(|t| *t <= to)
        .map(|t| Sample { t, v })
        .collect()
}

fn opts(pairs: &[(&str, &str)]) -> MemStoreOptions {
    MemStoreOptions {
        external_labels: Labels::from_pairs(pairs.iter().copied()),
        component_type: "sidecar".into(),
        ..Default::default()
    }
}

async fn ha_stores() -> Vec<RunningStore> {
    let mut out = Vec::new();
    for (replica, v) in [("a", 1.0), ("b", 2.0)] {
        let series = vec![
            Series::new(
                Labels::from_pairs([("__name__", "up"), ("job", "node")]),
                samples(0, 600_000, v),
            ),
            Series::new(
                Labels::from_pairs([("__name__", "up"), ("job", "prom")]),
                samples(0, 600_000, v),
            ),
        ];
        let s = MemStore::new(series, opts(&[("cluster", "eu"), ("replica", replica)]));
        out.push(s.serve().await.unwrap());
    }
    out
}

struct Fixture {
    handle: QueryHandle,
    registry: Registry,
    _stores: Vec<RunningStore>,
}

async fn fixture_with(
    stores: Vec<RunningStore>,
    extra: Vec<String>,
    store_timeout: Duration,
) -> Fixture {
    let mut registry = Registry::default();
    let mut addrs: Vec<String> = stores.iter().map(|s| s.address()).collect();
    addrs.extend(extra);
    let handle = QueryHandle::start(
        QueryConfig {
            stores: addrs,
            info_interval: Duration::from_secs(60),
            info_timeout: Duration::from_secs(2),
            store_timeout,
            ..Default::default()
        },
        &mut registry,
    );
    handle.check_stores_now().await.unwrap();
    Fixture {
        handle,
        registry,
        _stores: stores,
    }
}

async fn fixture() -> Fixture {
    fixture_with(ha_stores().await, vec![], Duration::from_secs(5)).await
}

macro_rules! app {
    ($f:expr) => {
        test::init_service(
            App::new()
                .app_data(web::Data::new($f.handle.clone()))
                .configure(super::configure),
        )
        .await
    };
}

/// Sends a request and returns (status, raw body, parsed body).
async fn call<S>(app: &S, req: test::TestRequest) -> (StatusCode, String, Value)
where
    S: actix_web::dev::Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse,
            Error = actix_web::Error,
        >,
{
    let resp = test::call_service(app, req.to_request()).await;
    let status = resp.status();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = test::read_body(resp).await;
    let text = String::from_utf8(body.to_vec()).unwrap();
    let parsed: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if parsed != Value::Null {
        assert!(ct.starts_with("application/json"), "{ct}");
    }
    (status, text, parsed)
}

fn get(uri: &str) -> test::TestRequest {
    test::TestRequest::get().uri(uri)
}

fn post_form(uri: &str, body: &str) -> test::TestRequest {
    test::TestRequest::post()
        .uri(uri)
        .insert_header(("content-type", "application/x-www-form-urlencoded"))
        .set_payload(body.to_string())
}

#[actix_web::test]
async fn health_check_query_is_byte_exact() {
    let f = fixture().await;
    let app = app!(f);
    let (status, body, _) = call(&app, get("/api/v1/query?query=1%2B1&time=4")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"scalar","result":[4,"2"]}}"#
    );
    let (status, body, _) = call(&app, post_form("/api/v1/query", "query=1%2B1&time=4")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"scalar","result":[4,"2"]}}"#
    );
}

#[actix_web::test]
async fn instant_query_dedups_by_default_and_keeps_replicas_on_request() {
    let f = fixture().await;
    let app = app!(f);
    let (status, _, v) = call(&app, get("/api/v1/query?query=up&time=300")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["data"]["resultType"], "vector");
    assert_eq!(
        v["data"]["result"],
        json!([
            {"metric": {"__name__": "up", "cluster": "eu", "job": "node"}, "value": [300, "1"]},
            {"metric": {"__name__": "up", "cluster": "eu", "job": "prom"}, "value": [300, "1"]},
        ])
    );
    let (_, _, v) = call(
        &app,
        post_form("/api/v1/query", "query=up&time=300.5&dedup=false"),
    )
    .await;
    let result = v["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 4);
    assert_eq!(result[0]["metric"]["replica"], "a");
    assert_eq!(result[0]["value"], json!([300.5, "1"]));
    // replicaLabels[] overrides the configured replica labels.
    let (_, _, v) = call(
        &app,
        get("/api/v1/query?query=up&time=300&replicaLabels[]=job"),
    )
    .await;
    assert_eq!(v["data"]["result"].as_array().unwrap().len(), 2);
    assert!(v["data"]["result"][0]["metric"].get("job").is_none());
}

#[actix_web::test]
async fn range_query_returns_a_matrix() {
    let f = fixture().await;
    let app = app!(f);
    let (status, _, v) = call(
        &app,
        get("/api/v1/query_range?query=sum(up)&start=0&end=120&step=60"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        v["data"],
        json!({"resultType": "matrix", "result": [
            {"metric": {}, "values": [[0, "2"], [60, "2"], [120, "2"]]}
        ]})
    );
    let (status, _, v) = call(
        &app,
        post_form(
            "/api/v1/query_range",
            "query=up&start=1970-01-01T00:00:00Z&end=60&step=1m",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        v["data"]["result"][0]["values"].as_array().unwrap().len(),
        2
    );
}

async fn expect_error<S>(
    app: &S,
    req: test::TestRequest,
    status: StatusCode,
    error_type: &str,
    msg: &str,
) where
    S: actix_web::dev::Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse,
            Error = actix_web::Error,
        >,
{
    let (st, body, v) = call(app, req).await;
    assert_eq!(st, status, "{body}");
    assert_eq!(v["status"], "error", "{body}");
    assert_eq!(v["errorType"], error_type, "{body}");
    let got = v["error"].as_str().unwrap_or("");
    assert!(got.starts_with(msg), "{got:?} does not start with {msg:?}");
}

#[actix_web::test]
async fn bad_requests_get_prometheus_errors() {
    let f = fixture().await;
    let app = app!(f);
    let bad = StatusCode::BAD_REQUEST;
    expect_error(
        &app,
        get("/api/v1/query_range?query=sum(up&start=0&end=1&step=1"),
        bad,
        "bad_data",
        "1:7: parse error: ",
    )
    .await;
    expect_error(
        &app,
        get("/api/v1/query?query=sum(up"),
        bad,
        "bad_data",
        "invalid parameter \"query\": 1:7: parse error: ",
    )
    .await;
    expect_error(
        &app,
        get("/api/v1/query?query=up&time=abc"),
        bad,
        "bad_data",
        "invalid parameter \"time\": Invalid time value for 'time': cannot parse \"abc\" to a valid timestamp",
    )
    .await;
    expect_error(
        &app,
        get("/api/v1/query_range?query=up&start=10&end=5&step=1"),
        bad,
        "bad_data",
        "invalid parameter \"end\": end timestamp must not be before start time",
    )
    .await;
    expect_error(
        &app,
        get("/api/v1/query_range?query=up&start=0&end=5&step=0"),
        bad,
        "bad_data",
        "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer",
    )
    .await;
    expect_error(
        &app,
        get("/api/v1/query_range?query=up&start=0&end=100000&step=1"),
        bad,
        "bad_data",
        "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
    )
    .await;
    expect_error(
        &app,
        get("/api/v1/query_range?query=up&start=0&end=5"),
        bad,
        "bad_data",
        "invalid parameter \"step\": cannot parse \"\" to a valid duration",
    )
    .await;
    expect_error(
        &app,
        get("/api/v1/query_range?query=up&end=5&step=1"),
        bad,
        "bad_data",
        "invalid parameter \"start\": cannot parse \"\" to a valid timestamp",
    )
    .await;
    expect_error(
        &app,
        get("/api/v1/query?query=up&timeout=x"),
        bad,
        "bad_data",
        "invalid parameter \"timeout\"",
    )
    .await;
    expect_error(
        &app,
        get("/api/v1/query?query=up&dedup=maybe"),
        bad,
        "bad_data",
        "'dedup' parameter",
    )
    .await;
    expect_error(
        &app,
        get("/api/v1/series"),
        bad,
        "bad_data",
        "no match[] parameter provided",
    )
    .await;
    expect_error(
        &app,
        get("/api/v1/series?match[]=up{"),
        bad,
        "bad_data",
        "invalid parameter \"match[]\": ",
    )
    .await;
    expect_error(
        &app,
        get("/api/v1/labels?match[]=up{"),
        bad,
        "bad_data",
        "1:4: parse error: ",
    )
    .await;
    expect_error(
        &app,
        get("/api/v1/series?match[]=up&start=x"),
        bad,
        "bad_data",
        "invalid parameter \"start\": Invalid time value for 'start': cannot parse \"x\" to a valid timestamp",
    )
    .await;
    expect_error(
        &app,
        get("/api/v1/label/1bad/values"),
        bad,
        "bad_data",
        "invalid label name: \"1bad\"",
    )
    .await;
    expect_error(
        &app,
        get("/api/v1/labels?limit=-1"),
        bad,
        "bad_data",
        "invalid parameter \"limit\"",
    )
    .await;
    // Counted as bad requests.
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &f.registry).unwrap();
    assert!(
        text.contains("skein_query_bad_requests_total{endpoint=\"query_range\"} 5"),
        "{text}"
    );
}

#[actix_web::test]
async fn series_labels_and_values() {
    let f = fixture().await;
    let app = app!(f);
    let want_series = json!([
        {"__name__": "up", "cluster": "eu", "job": "node"},
        {"__name__": "up", "cluster": "eu", "job": "prom"},
    ]);
    let (status, _, v) = call(
        &app,
        get("/api/v1/series?match[]=up{job=%22node%22}&match[]=up{job=%22prom%22}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v, json!({"status": "success", "data": want_series}));
    let (_, _, v) = call(
        &app,
        post_form(
            "/api/v1/series",
            "match[]=up%7Bjob%3D%22node%22%7D&match[]=up%7Bjob%3D%22prom%22%7D&start=0&end=600",
        ),
    )
    .await;
    assert_eq!(v["data"], want_series);
    let (_, _, v) = call(&app, get("/api/v1/series?match[]=up&dedup=false")).await;
    assert_eq!(v["data"].as_array().unwrap().len(), 4);
    let (_, _, v) = call(&app, get("/api/v1/series?match[]=up&limit=1")).await;
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    assert_eq!(v["warnings"], json!(["results truncated due to limit"]));

    let (_, _, v) = call(&app, get("/api/v1/labels")).await;
    assert_eq!(
        v,
        json!({"status": "success", "data": ["__name__", "cluster", "job"]})
    );
    let (_, _, v) = call(&app, post_form("/api/v1/labels", "match[]=up&dedup=false")).await;
    assert_eq!(v["data"], json!(["__name__", "cluster", "job", "replica"]));
    let (_, _, v) = call(&app, get("/api/v1/label/job/values")).await;
    assert_eq!(v, json!({"status": "success", "data": ["node", "prom"]}));
    let (_, _, v) = call(
        &app,
        get("/api/v1/label/job/values?match[]=up{job=%22node%22}"),
    )
    .await;
    assert_eq!(v["data"], json!(["node"]));
    let (_, _, v) = call(&app, get("/api/v1/label/nothing/values")).await;
    assert_eq!(v, json!({"status": "success", "data": []}));
}

#[actix_web::test]
async fn stores_buildinfo_and_static_endpoints() {
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let f = fixture_with(
        ha_stores().await,
        vec![dead.clone()],
        Duration::from_secs(5),
    )
    .await;
    let app = app!(f);
    let (status, _, v) = call(&app, get("/api/v1/stores")).await;
    assert_eq!(status, StatusCode::OK);
    let sidecars = v["data"]["sidecar"].as_array().unwrap();
    assert_eq!(sidecars.len(), 2);
    let s = &sidecars[0];
    assert_eq!(s["lastError"], Value::Null);
    assert_eq!(s["labelSets"], json!([{"cluster": "eu", "replica": "a"}]));
    assert_eq!(s["minTime"], 0);
    assert_eq!(s["maxTime"], 600_000);
    assert!(s["lastCheck"].as_str().unwrap().ends_with('Z'));
    let unknown = v["data"]["unknown"].as_array().unwrap();
    assert_eq!(unknown[0]["name"], dead.as_str());
    assert!(unknown[0]["lastError"].is_string());

    let (_, _, v) = call(&app, get("/api/v1/status/buildinfo")).await;
    assert_eq!(v["data"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(v["data"].get("features").is_none());
    for k in ["revision", "branch", "buildUser", "buildDate", "goVersion"] {
        assert!(v["data"][k].is_string(), "{k}");
    }
    let (_, body, _) = call(&app, get("/api/v1/query_exemplars?query=up")).await;
    assert_eq!(body, r#"{"status":"success","data":[]}"#);
    let (_, body, _) = call(&app, get("/api/v1/rules")).await;
    assert_eq!(body, r#"{"status":"success","data":{"groups":[]}}"#);
    let (_, body, _) = call(&app, get("/api/v1/metadata")).await;
    assert_eq!(body, r#"{"status":"success","data":{}}"#);
}

#[actix_web::test]
async fn failing_and_hanging_stores_give_warnings_or_errors() {
    let mut stores = ha_stores().await;
    let hanging = MemStore::new(
        vec![Series::new(
            Labels::from_pairs([("__name__", "up"), ("job", "slow")]),
            samples(0, 600_000, 5.0),
        )],
        MemStoreOptions {
            delay: Some(Duration::from_secs(60)),
            ..opts(&[("cluster", "us")])
        },
    );
    let hanging = hanging.serve().await.unwrap();
    let hanging_addr = hanging.address();
    stores.push(hanging);
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let f = fixture_with(stores, vec![dead.clone()], Duration::from_millis(700)).await;
    let app = app!(f);
    let started = std::time::Instant::now();
    let (status, body, v) = call(&app, get("/api/v1/query?query=up&time=300")).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(v["data"]["result"].as_array().unwrap().len(), 2);
    let warnings = v["warnings"].to_string();
    assert!(warnings.contains(&dead), "{warnings}");
    assert!(
        warnings.contains(&hanging_addr) && warnings.contains("timed out"),
        "{warnings}"
    );

    let (status, body, v) = call(
        &app,
        get("/api/v1/query?query=up&time=300&partial_response=false"),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(v["errorType"], "unavailable");

    let (status, _, v) = call(&app, get("/api/v1/labels?partial_response=0")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(v["errorType"], "unavailable");
    let (status, _, v) = call(&app, get("/api/v1/label/job/values")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["data"], json!(["node", "prom"]));
    assert!(
        v["warnings"].as_array().is_some_and(|w| w.len() == 2),
        "{v}"
    );
}

/// With `on_connect` installed, a client that disconnects cancels its
/// query and the StoreAPI calls under it; a client that stays is served.
#[actix_web::test]
async fn a_client_that_leaves_cancels_its_query() {
    use std::io::{Read, Write};

    let store = MemStore::new(
        vec![Series::new(
            Labels::from_pairs([("__name__", "up")]),
            samples(0, 600_000, 1.0),
        )],
        MemStoreOptions {
            delay: Some(Duration::from_secs(30)),
            ..opts(&[("cluster", "slow")])
        },
    );
    let probe = store.clone();
    let fast = ha_stores().await;
    let mut all = fast;
    all.push(store.serve().await.unwrap());
    let f = fixture_with(all, vec![], Duration::from_secs(60)).await;
    let data = web::Data::new(f.handle.clone());
    let server = actix_web::HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .configure(super::configure)
    })
    .on_connect(super::on_connect)
    .workers(1)
    .disable_signals()
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = server.addrs()[0];
    let server = server.run();
    let stop = server.handle();
    actix_rt::spawn(server);

    // A query that does not touch the slow store is answered.
    let ok = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(
            s,
            "GET /api/v1/query?query=1%2B1&time=4 HTTP/1.0\r\nHost: x\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    });
    let mut waited = Duration::ZERO;
    while !ok.is_finished() && waited < Duration::from_secs(10) {
        actix_rt::time::sleep(Duration::from_millis(20)).await;
        waited += Duration::from_millis(20);
    }
    let out = ok.join().unwrap();
    assert!(
        out.ends_with(r#"{"status":"success","data":{"resultType":"scalar","result":[4,"2"]}}"#),
        "{out}"
    );

    // A client that gives up on a slow query takes the store call with it.
    let leaver = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(
            s,
            "GET /api/v1/query?query=up&time=300 HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(600));
    });
    let started = std::time::Instant::now();
    let mut seen = false;
    let mut cancelled_after = None;
    while started.elapsed() < Duration::from_secs(8) {
        let n = probe.series_in_flight();
        seen |= n == 1;
        if seen && n == 0 {
            cancelled_after = Some(started.elapsed());
            break;
        }
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    leaver.join().unwrap();
    stop.stop(false).await;
    assert!(seen, "the slow store was never asked");
    let after = cancelled_after.expect("the store call outlived its client");
    assert!(after < Duration::from_secs(3), "{after:?}");
}

async fn fixture_limited(
    stores: Vec<RunningStore>,
    limits: skein_actors::query::QueryLimits,
) -> Fixture {
    let mut registry = Registry::default();
    let addrs: Vec<String> = stores.iter().map(|s| s.address()).collect();
    let handle = QueryHandle::start(
        QueryConfig {
            stores: addrs,
            info_interval: Duration::from_secs(60),
            info_timeout: Duration::from_secs(2),
            limits,
            ..Default::default()
        },
        &mut registry,
    );
    handle.check_stores_now().await.unwrap();
    Fixture {
        handle,
        registry,
        _stores: stores,
    }
}

fn rejected(f: &Fixture, reason: &str) -> u64 {
    f.handle.metrics().rejected_count(reason)
}

/// Hostile requests get Prometheus's error types and statuses (the text
/// Prometheus 2.42 answers, where it has an answer), and each refusal is
/// counted by reason.
#[actix_web::test]
async fn hostile_requests_get_prometheus_errors_and_are_counted() {
    let limits = skein_actors::query::QueryLimits {
        max_match: 3,
        max_body_bytes: 4096,
        parse: skein_promql::ParseLimits {
            max_bytes: 1000,
            ..Default::default()
        },
        ..Default::default()
    };
    let f = fixture_limited(ha_stores().await, limits).await;
    let app = app!(f);
    let bad = StatusCode::BAD_REQUEST;
    // Non-ASCII outside a string (once a panic on the HTTP worker).
    expect_error(
        &app,
        get("/api/v1/query?query=up%20%2B%20gr%C3%B6%C3%9Fe&time=300"),
        bad,
        "bad_data",
        "invalid parameter \"query\": 1:8: parse error: unexpected character: 'ö'",
    )
    .await;
    expect_error(
        &app,
        post_form("/api/v1/series", "match[]=up%7Bj%C3%B6b%3D%22x%22%7D"),
        bad,
        "bad_data",
        "invalid parameter \"match[]\": 1:5: parse error: unexpected character inside braces: 'ö'",
    )
    .await;
    assert_eq!(rejected(&f, "non_ascii"), 2);
    // Inside a string it is fine.
    let (st, body, _) = call(
        &app,
        get("/api/v1/query?query=up%7Bjob%3D%22gr%C3%B6%C3%9Fe%22%7D&time=300"),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    // Invalid UTF-8, percent-encoded, outside a string.
    expect_error(
        &app,
        get("/api/v1/query?query=up%FF&time=300"),
        bad,
        "bad_data",
        "invalid parameter \"query\": 1:3: parse error: unexpected character: '\u{fffd}'",
    )
    .await;
    // Deep nesting in match[] (once a stack overflow of the process).
    let deep = format!("{}up{}", "(".repeat(400), ")".repeat(400));
    expect_error(
        &app,
        post_form("/api/v1/series", &format!("match[]={deep}")),
        bad,
        "bad_data",
        "invalid parameter \"match[]\": 1:257: parse error: brackets nested deeper than 256 levels",
    )
    .await;
    assert_eq!(rejected(&f, "too_deep"), 1);
    // Too many match[].
    expect_error(
        &app,
        get("/api/v1/series?match[]=up&match[]=up&match[]=up&match[]=up"),
        bad,
        "bad_data",
        "too many match[] parameters: 4, the limit is 3",
    )
    .await;
    expect_error(
        &app,
        get("/api/v1/labels?match[]=up&match[]=up&match[]=up&match[]=up"),
        bad,
        "bad_data",
        "too many match[] parameters: 4",
    )
    .await;
    assert_eq!(rejected(&f, "too_many_matchers"), 2);
    // A query over the length limit.
    expect_error(
        &app,
        post_form("/api/v1/query", &format!("query=up{}", "+up".repeat(400))),
        bad,
        "bad_data",
        "invalid parameter \"query\": parse error: query is 1202 bytes long, over the limit of 1000 bytes",
    )
    .await;
    assert_eq!(rejected(&f, "query_too_long"), 1);
    // A body over the size limit, form POST and query string.
    expect_error(
        &app,
        post_form("/api/v1/query", &format!("query=up&x={}", "y".repeat(5000))),
        bad,
        "bad_data",
        "request body too large",
    )
    .await;
    expect_error(
        &app,
        get(&format!("/api/v1/labels?x={}", "y".repeat(5000))),
        bad,
        "bad_data",
        "query string too large",
    )
    .await;
    assert_eq!(rejected(&f, "body_too_large"), 2);
    // A regex over the size limit, in a query and in match[].
    expect_error(
        &app,
        get("/api/v1/query?query=up%7Bjob%3D~%22a%7B1000%7D%7B1000%7D%22%7D"),
        bad,
        "bad_data",
        "invalid parameter \"query\": 1:4: parse error: regex too large",
    )
    .await;
    expect_error(
        &app,
        get("/api/v1/label/job/values?match[]=up%7Bjob%3D~%22a%7B1000%7D%7B1000%7D%22%7D"),
        bad,
        "bad_data",
        "1:4: parse error: regex too large",
    )
    .await;
    assert_eq!(rejected(&f, "regex_too_large"), 2);
    // 1 ms steps over a year.
    expect_error(
        &app,
        get("/api/v1/query_range?query=up&start=0&end=31536000&step=0.001"),
        bad,
        "bad_data",
        "exceeded maximum resolution of 11,000 points per timeseries",
    )
    .await;
    assert_eq!(rejected(&f, "too_many_points"), 1);
    // A subquery bomb: 422 before anything is allocated.
    expect_error(
        &app,
        get("/api/v1/query?query=max_over_time(max_over_time(up%5B1y:1ms%5D)%5B1y:1ms%5D)"),
        StatusCode::UNPROCESSABLE_ENTITY,
        "execution",
        "query processing would load too many samples into memory in query execution",
    )
    .await;
    assert_eq!(rejected(&f, "too_many_samples"), 1);
    // Everything still answers.
    let (st, _, v) = call(&app, get("/api/v1/query?query=sum(up)&time=300")).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["data"]["result"][0]["value"][1], "2");
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &f.registry).unwrap();
    assert!(
        text.contains("skein_query_rejected_total{reason=\"body_too_large\"} 2"),
        "{text}"
    );
}

/// At most `max_concurrent` requests evaluate and `max_queued` wait; the
/// rest are answered 503 at once, and the admitted ones are answered.
#[actix_web::test]
async fn requests_beyond_the_queue_get_503_and_the_rest_answer() {
    let series = vec![Series::new(
        Labels::from_pairs([("__name__", "up"), ("job", "node")]),
        samples(0, 600_000, 1.0),
    )];
    // A store that takes its time: the first requests hold their slots.
    let slow = MemStore::new(
        series,
        MemStoreOptions {
            delay: Some(Duration::from_millis(1500)),
            ..opts(&[("cluster", "eu")])
        },
    )
    .serve()
    .await
    .unwrap();
    let limits = skein_actors::query::QueryLimits {
        max_concurrent: 1,
        max_queued: 1,
        ..Default::default()
    };
    let f = fixture_limited(vec![slow], limits).await;
    let app = app!(f);
    let reqs = [
        get("/api/v1/query?query=up&time=300"),
        get("/api/v1/query_range?query=up&start=0&end=300&step=60"),
        get("/api/v1/series?match[]=up"),
        get("/api/v1/labels"),
        get("/api/v1/label/job/values"),
    ];
    let answers = futures::future::join_all(reqs.into_iter().map(|r| call(&app, r))).await;
    let statuses: Vec<u16> = answers.iter().map(|(s, _, _)| s.as_u16()).collect();
    // The first runs, the second waits, the other three are refused.
    assert_eq!(statuses, vec![200, 200, 503, 503, 503], "{answers:?}");
    for (_, body, v) in &answers[2..] {
        assert_eq!(v["errorType"], "unavailable", "{body}");
        assert!(
            v["error"]
                .as_str()
                .unwrap()
                .starts_with("too many queries in flight and queued"),
            "{body}"
        );
    }
    assert_eq!(rejected(&f, "queue_full"), 3);
    // The queue drained: the next request is answered.
    let (st, _, _) = call(&app, get("/api/v1/labels")).await;
    assert_eq!(st, StatusCode::OK);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &f.registry).unwrap();
    assert!(text.contains("skein_query_queries_in_flight 0"), "{text}");
    assert!(text.contains("skein_query_queries_queued 0"), "{text}");
}
