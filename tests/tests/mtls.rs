//! The same federation over mutual TLS (the default outside `--dev`): sidecars
//! and querier with certificates from `skein tools certs` answer like the
//! Prometheus servers, and a querier whose certificate comes from another CA,
//! or that speaks plaintext, gets none of the data (a warning or an error,
//! never a hang).

use std::time::{Duration, Instant};

use skein_e2e::case_list::{plan, standard_cases};
use skein_e2e::cases::check;
use skein_e2e::certs::CertDir;
use skein_e2e::datagen::DataSpec;
use skein_e2e::fixture::TwoClusters;
use skein_e2e::http::ApiClient;
use skein_e2e::skein::SkeinNode;

#[test]
fn federation_over_mutual_tls() {
    let certs_root = tempfile::Builder::new()
        .prefix("skein-e2e-certs-")
        .tempdir()
        .unwrap();
    let good_dir = certs_root.path().join("good");
    let good = CertDir::create(
        &good_dir,
        &["sidecar-eu1", "sidecar-us1", "querier", "querier-plain"],
        certs_root.path(),
    )
    .unwrap();
    let rogue = CertDir::create(
        &certs_root.path().join("rogue"),
        &["querier-rogue"],
        certs_root.path(),
    )
    .unwrap();

    let sidecar_flags = |name: &str| Ok(good.flags(name));
    let querier_flags = good.flags("querier");
    let setup = TwoClusters::start_with(DataSpec::small, sidecar_flags, &querier_flags).unwrap();
    let (start, end) = setup.window();
    let clusters = &setup.clusters.clusters;

    // A sample of the standard cases, instant and range.
    let mut failures = Vec::new();
    let mut passed = 0;
    for (case, codes) in standard_cases(clusters.len()).iter().step_by(3) {
        for eval in plan(codes, start, end) {
            match check(&setup.querier.client, clusters, case, eval) {
                Ok(()) => passed += 1,
                Err(e) => failures.push(e),
            }
        }
    }
    assert!(
        passed >= 20 || !failures.is_empty(),
        "too few checks ran: {passed}"
    );

    // Untrusted clients: a querier with a certificate from another CA, and a
    // plaintext (--dev) querier. Neither may see data; both answer in bounded time.
    let stores: Vec<String> = setup
        .sidecars
        .iter()
        .map(SkeinNode::store_address)
        .collect();
    let dir = setup.clusters.dir.path();
    let mut rogue_flags = rogue.flags("querier-rogue");
    rogue_flags.extend(["--query.info-timeout".to_string(), "2s".to_string()]);
    let untrusted = [
        SkeinNode::start_querier(dir, "querier-rogue", &stores, &rogue_flags).unwrap(),
        SkeinNode::start_querier(dir, "querier-plain", &stores, &[]).unwrap(),
    ];
    for node in &untrusted {
        let client = ApiClient::with_timeout(&node.http_url, Duration::from_secs(30)).unwrap();
        // Give discovery time to try (and fail), then query.
        std::thread::sleep(Duration::from_secs(3));
        let started = Instant::now();
        match client.query_raw("gen_queue_depth", end) {
            Ok(resp) => {
                if started.elapsed() > Duration::from_secs(20) {
                    failures.push(format!("{}: query took {:?}", node.name, started.elapsed()));
                }
                if resp.status == 200 {
                    match resp.data() {
                        Ok(d) if d.series_count() > 0 => failures.push(format!(
                            "{}: untrusted querier got {} series",
                            node.name,
                            d.series_count()
                        )),
                        Ok(_) => {}
                        Err(e) => failures.push(format!("{}: {e:#}", node.name)),
                    }
                }
            }
            Err(e) => failures.push(format!("{}: {e:#}", node.name)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} mTLS checks failed ({passed} passed):\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
