//! Bad input and failing stores get clear answers, never a hang or a 500:
//! - malformed PromQL: HTTP 400, `errorType: bad_data`, the parse position in
//!   the error text;
//! - bad time/step parameters: HTTP 400, `errorType: bad_data`;
//! - a store address where nothing listens next to a live sidecar: HTTP 200 with
//!   the live data and a warning naming the dead store, within a bounded time;
//!   with `partial_response=false` the query fails instead;
//! - /-/healthy, /-/ready and /metrics answer on every node.

use std::time::{Duration, Instant};

use skein_e2e::compare::{add_labels, compare};
use skein_e2e::datagen::DataSpec;
use skein_e2e::fixture::{TwoClusters, start_clusters};
use skein_e2e::http::{ApiClient, ApiResponse};
use skein_e2e::ports::dead_addr;
use skein_e2e::skein::SkeinNode;
use skein_e2e::timefmt::secs_string;

/// Does `text` carry a parse position: `line:col` (Prometheus style) or a
/// "position"/"column"/"line" with a number?
fn has_position(text: &str) -> bool {
    let bytes = text.as_bytes();
    let line_col = bytes.windows(3).enumerate().any(|(i, w)| {
        w[0].is_ascii_digit()
            && w[1] == b':'
            && w[2].is_ascii_digit()
            && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1].is_ascii_digit())
    });
    let lower = text.to_lowercase();
    let worded = ["position", "column", "col ", "line "]
        .iter()
        .any(|w| lower.contains(w) && text.chars().any(|c| c.is_ascii_digit()));
    line_col || worded
}

fn expect_bad_data(resp: &ApiResponse, what: &str) -> Result<(), String> {
    if resp.status != 400 || resp.error_type() != Some("bad_data") {
        return Err(format!(
            "{what}: expected HTTP 400 bad_data, got HTTP {}: {}",
            resp.status, resp.text
        ));
    }
    if resp.body.get("status").and_then(|s| s.as_str()) != Some("error") {
        return Err(format!("{what}: status is not \"error\": {}", resp.text));
    }
    Ok(())
}

#[test]
fn malformed_promql_and_bad_parameters_are_bad_data() {
    let setup = TwoClusters::start_small().unwrap();
    let q = &setup.querier.client;
    let (_, end) = setup.window();
    let t = secs_string(end);
    let mut failures = Vec::new();

    // Malformed PromQL, instant and range: 400 bad_data with a position.
    for expr in [
        "sum(",
        "rate(gen_http_requests_total[5m]",
        "gen_queue_depth{job=}",
        "gen_queue_depth +",
        "gen_queue_depth[5x]",
        "sum by (job) gen_queue_depth",
        "}",
    ] {
        for (path, params) in [
            (
                "/api/v1/query",
                vec![("query", expr.to_string()), ("time", t.clone())],
            ),
            (
                "/api/v1/query_range",
                vec![
                    ("query", expr.to_string()),
                    ("start", secs_string(end - 3_600_000)),
                    ("end", t.clone()),
                    ("step", "60".to_string()),
                ],
            ),
        ] {
            let what = format!("{path} {expr:?}");
            match q.get(path, &params) {
                Ok(resp) => {
                    if let Err(e) = expect_bad_data(&resp, &what) {
                        failures.push(e);
                    } else if !has_position(resp.error().unwrap_or("")) {
                        failures.push(format!(
                            "{what}: error text has no parse position: {:?}",
                            resp.error()
                        ));
                    }
                }
                Err(e) => failures.push(format!("{what}: {e:#}")),
            }
        }
    }

    // Bad time/step parameters: 400 bad_data.
    let good = "gen_queue_depth".to_string();
    let s = secs_string(end - 3_600_000);
    let cases: Vec<(&str, Vec<(&str, String)>)> = vec![
        (
            "/api/v1/query",
            vec![("query", good.clone()), ("time", "abc".into())],
        ),
        ("/api/v1/query", vec![("time", t.clone())]),
        (
            "/api/v1/query",
            vec![
                ("query", good.clone()),
                ("time", t.clone()),
                ("timeout", "soon".into()),
            ],
        ),
        (
            "/api/v1/query_range",
            vec![
                ("query", good.clone()),
                ("start", "abc".into()),
                ("end", t.clone()),
                ("step", "60".into()),
            ],
        ),
        (
            "/api/v1/query_range",
            vec![
                ("query", good.clone()),
                ("start", s.clone()),
                ("end", "yesterday".into()),
                ("step", "60".into()),
            ],
        ),
        (
            "/api/v1/query_range",
            vec![
                ("query", good.clone()),
                ("start", t.clone()),
                ("end", s.clone()),
                ("step", "60".into()),
            ],
        ),
        (
            "/api/v1/query_range",
            vec![
                ("query", good.clone()),
                ("start", s.clone()),
                ("end", t.clone()),
                ("step", "0".into()),
            ],
        ),
        (
            "/api/v1/query_range",
            vec![
                ("query", good.clone()),
                ("start", s.clone()),
                ("end", t.clone()),
                ("step", "-15".into()),
            ],
        ),
        (
            "/api/v1/query_range",
            vec![
                ("query", good.clone()),
                ("start", s.clone()),
                ("end", t.clone()),
                ("step", "fast".into()),
            ],
        ),
        (
            "/api/v1/query_range",
            vec![
                ("query", good.clone()),
                ("start", s.clone()),
                ("end", t.clone()),
            ],
        ),
        // More than 11,000 points per series (Prometheus' limit).
        (
            "/api/v1/query_range",
            vec![
                ("query", good.clone()),
                ("start", s.clone()),
                ("end", t.clone()),
                ("step", "0.1".into()),
            ],
        ),
    ];
    for (path, params) in cases {
        let what = format!("{path} {params:?}");
        match q.get(path, &params) {
            Ok(resp) => {
                if let Err(e) = expect_bad_data(&resp, &what) {
                    failures.push(e);
                }
            }
            Err(e) => failures.push(format!("{what}: {e:#}")),
        }
    }

    // The same bad inputs on Prometheus give bad_data too (sanity of the
    // expectations above).
    let p = &setup.clusters.clusters[0].prometheus.client;
    let resp = p
        .get(
            "/api/v1/query",
            &[("query", "sum(".into()), ("time", t.clone())],
        )
        .unwrap();
    expect_bad_data(&resp, "prometheus sum(").unwrap();
    assert!(has_position(resp.error().unwrap()), "{:?}", resp.error());

    // The querier still works afterwards.
    q.query("sum(gen_queue_depth)", end).unwrap();

    assert!(
        failures.is_empty(),
        "{} bad-input checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn dead_store_gives_partial_data_and_a_warning() {
    let clusters = start_clusters(DataSpec::small).unwrap();
    let dir = clusters.dir.path();
    let eu = &clusters.clusters[0];
    let sidecar = SkeinNode::start_sidecar(dir, "sidecar-eu1", &eu.prometheus.url, &[]).unwrap();
    let dead = dead_addr().unwrap().to_string();
    let querier = SkeinNode::start_querier(
        dir,
        "querier",
        &[sidecar.store_address(), dead.clone()],
        &[
            "--query.info-interval".into(),
            "1s".into(),
            "--query.info-timeout".into(),
            "2s".into(),
            "--query.store-timeout".into(),
            "5s".into(),
        ],
    )
    .unwrap();
    let q = ApiClient::with_timeout(&querier.http_url, Duration::from_secs(30)).unwrap();
    let (start, end) = clusters.window();
    let expected_instant = add_labels(
        eu.prometheus.client.query("gen_queue_depth", end).unwrap(),
        &eu.external_labels,
    );
    let expected_range = add_labels(
        eu.prometheus
            .client
            .query_range("sum(gen_queue_depth)", start, end, 300_000)
            .unwrap(),
        &eu.external_labels,
    );
    let expected_range = match expected_range {
        // sum() drops labels: the querier's sum has none either.
        skein_e2e::promjson::QueryData::Matrix(m) => skein_e2e::promjson::QueryData::Matrix(
            m.into_values().map(|v| (Default::default(), v)).collect(),
        ),
        other => other,
    };

    let mut failures = Vec::new();
    // Poll briefly: the live store must be discovered first (info interval 1 s).
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = String::new();
    let mut ok = false;
    while Instant::now() < deadline {
        let started = Instant::now();
        match q.query_raw("gen_queue_depth", end) {
            Ok(resp) => {
                let took = started.elapsed();
                if took > Duration::from_secs(15) {
                    failures.push(format!("instant query took {took:?} with a dead store"));
                }
                if resp.status == 500 {
                    failures.push(format!("HTTP 500 with a dead store: {}", resp.text));
                    break;
                }
                match resp.data() {
                    Ok(d) if compare(&expected_instant, &d).is_ok() => {
                        let w = resp.warnings();
                        if w.iter().any(|w| w.contains(&dead)) {
                            ok = true;
                            break;
                        }
                        last = format!(
                            "live data present but no warning naming {dead}: warnings {w:?}"
                        );
                    }
                    Ok(d) => {
                        last = format!(
                            "data differs: {}",
                            compare(&expected_instant, &d).unwrap_err()
                        )
                    }
                    Err(e) => last = format!("{e:#}"),
                }
            }
            Err(e) => last = format!("{e:#}"),
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    if !ok {
        failures.push(format!("instant query with a dead store: {last}"));
    }

    // Range query: the same, immediately.
    let started = Instant::now();
    match q.query_range_raw("sum(gen_queue_depth)", start, end, 300_000) {
        Ok(resp) => {
            if started.elapsed() > Duration::from_secs(15) {
                failures.push(format!("range query took {:?}", started.elapsed()));
            }
            match resp.data() {
                Ok(d) => {
                    if let Err(e) = compare(&expected_range, &d) {
                        failures.push(format!("range query data: {e}"));
                    }
                    if !resp.warnings().iter().any(|w| w.contains(&dead)) {
                        failures.push(format!(
                            "range query: no warning naming {dead}: {:?}",
                            resp.warnings()
                        ));
                    }
                }
                Err(e) => failures.push(format!("range query: {e:#}")),
            }
        }
        Err(e) => failures.push(format!("range query: {e:#}")),
    }

    // partial_response=false: the query fails (error status), still in bounded time.
    let started = Instant::now();
    match q.get(
        "/api/v1/query",
        &[
            ("query", "gen_queue_depth".into()),
            ("time", secs_string(end)),
            ("partial_response", "false".into()),
        ],
    ) {
        Ok(resp) => {
            if resp.status == 200
                || resp.body.get("status").and_then(|s| s.as_str()) != Some("error")
            {
                failures.push(format!(
                    "partial_response=false answered HTTP {}: {}",
                    resp.status, resp.text
                ));
            }
            if started.elapsed() > Duration::from_secs(15) {
                failures.push(format!(
                    "partial_response=false took {:?}",
                    started.elapsed()
                ));
            }
        }
        Err(e) => failures.push(format!("partial_response=false: {e:#}")),
    }

    // The querier stays ready and healthy with a dead store.
    for path in ["/-/healthy", "/-/ready"] {
        match q.status_of(path) {
            Ok(200) => {}
            other => failures.push(format!("querier {path} with a dead store: {other:?}")),
        }
    }
    drop(sidecar);
    assert!(
        failures.is_empty(),
        "{} dead-store checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_node_serves_health_readiness_and_metrics() {
    let setup = TwoClusters::start_small().unwrap();
    let mut failures = Vec::new();
    for node in setup.sidecars.iter().chain(std::iter::once(&setup.querier)) {
        for path in ["/-/healthy", "/-/ready", "/metrics"] {
            match node.client.get(path, &[]) {
                Ok(resp) if resp.status == 200 => {
                    if path == "/metrics"
                        && !(resp.text.contains("# TYPE") || resp.text.contains("# HELP"))
                    {
                        failures.push(format!(
                            "{} {path}: not Prometheus text format: {:.200}",
                            node.name, resp.text
                        ));
                    }
                }
                Ok(resp) => failures.push(format!("{} {path}: HTTP {}", node.name, resp.status)),
                Err(e) => failures.push(format!("{} {path}: {e:#}", node.name)),
            }
        }
    }
    // The querier's own metrics are scrapeable by a Prometheus-style parser:
    // every sample line is `name{labels} value`.
    if let Ok(resp) = setup.querier.client.get("/metrics", &[]) {
        for line in resp
            .text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            let value = line.rsplit(' ').next().unwrap_or("");
            if skein_e2e::promjson::parse_value(value).is_err() {
                failures.push(format!("querier /metrics: bad sample line {line:?}"));
                break;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn position_detector_works() {
    assert!(has_position("1:5: parse error: unclosed left parenthesis"));
    assert!(has_position("parse error at line 1, column 5"));
    assert!(!has_position("parse error: unclosed left parenthesis"));
}

/// Prometheus dies behind a live sidecar: the querier answers 200 with the
/// other cluster's data and a warning, in bounded time; the orphaned sidecar
/// turns not-ready (503) but stays healthy.
#[test]
fn prometheus_down_behind_a_live_sidecar() {
    let mut setup = TwoClusters::start_with(
        DataSpec::small,
        |_| Ok(vec!["--sidecar.refresh-interval".into(), "1s".into()]),
        &["--query.store-timeout".to_string(), "5s".to_string()],
    )
    .unwrap();
    let (_, end) = setup.window();
    let eu = &setup.clusters.clusters[0];
    let expected = add_labels(
        eu.prometheus.client.query("gen_queue_depth", end).unwrap(),
        &eu.external_labels,
    );
    setup.clusters.clusters[1].prometheus.kill();

    let mut failures = Vec::new();
    let started = Instant::now();
    match setup.querier.client.query_raw("gen_queue_depth", end) {
        Ok(resp) => {
            if started.elapsed() > Duration::from_secs(15) {
                failures.push(format!("query took {:?}", started.elapsed()));
            }
            match resp.data() {
                Ok(d) => {
                    if let Err(e) = compare(&expected, &d) {
                        failures.push(format!("data with us1's Prometheus down: {e}"));
                    }
                    if resp.warnings().is_empty() {
                        failures.push("no warning with us1's Prometheus down".to_string());
                    }
                }
                Err(e) => failures.push(format!("query with us1's Prometheus down: {e:#}")),
            }
        }
        Err(e) => failures.push(format!("query with us1's Prometheus down: {e:#}")),
    }

    let sidecar = &setup.sidecars[1];
    let ready = skein_e2e::wait::poll_until(
        "sidecar-us1 not ready",
        Duration::from_secs(15),
        Duration::from_millis(250),
        || Ok((sidecar.client.status_of("/-/ready")? == 503).then_some(())),
    );
    if let Err(e) = ready {
        failures.push(format!("{e:#}"));
    }
    match sidecar.client.status_of("/-/healthy") {
        Ok(200) => {}
        other => failures.push(format!(
            "sidecar-us1 /-/healthy with its Prometheus down: {other:?}"
        )),
    }
    assert!(
        failures.is_empty(),
        "{} checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
