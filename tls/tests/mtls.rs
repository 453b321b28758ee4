//! Mutual TLS end to end with tonic: trusted clients get through, clients
//! from another CA or without a certificate do not, and a reload switches
//! the server to new material without a restart.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;
use skein_proto::thanos::info::info_client::InfoClient;
use skein_proto::thanos::info::info_server::{Info, InfoServer};
use skein_proto::thanos::info::{InfoRequest, InfoResponse};
use skein_tls::devcerts::DevCa;
use skein_tls::{TlsFiles, TlsMaterial, TlsReloader};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

struct Fixed;

#[tonic::async_trait]
impl Info for Fixed {
    async fn info(
        &self,
        _: tonic::Request<InfoRequest>,
    ) -> Result<tonic::Response<InfoResponse>, tonic::Status> {
        Ok(tonic::Response::new(InfoResponse {
            component_type: "store".into(),
            ..Default::default()
        }))
    }
}

fn node_files(dir: &Path, ca: &DevCa, name: &str) -> TlsFiles {
    std::fs::write(dir.join("ca.crt"), &ca.cert_pem).unwrap();
    let (cert, key) = ca.issue_to(dir, name, &["127.0.0.1".into()]).unwrap();
    TlsFiles {
        cert,
        key,
        ca: dir.join("ca.crt"),
    }
}

async fn serve(tls: Arc<TlsReloader>) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = skein_tls::server::incoming(listener, tls, Duration::from_secs(5));
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(InfoServer::new(Fixed))
            .serve_with_incoming(incoming),
    );
    addr
}

async fn call(addr: std::net::SocketAddr, tls: Option<ClientTlsConfig>) -> Result<String, String> {
    let mut ep = Endpoint::from_shared(format!("https://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(3));
    if let Some(t) = tls {
        ep = ep.tls_config(t).map_err(|e| e.to_string())?;
    }
    let ch: Channel = ep.connect().await.map_err(|e| format!("{e:?}"))?;
    InfoClient::new(ch)
        .info(InfoRequest {})
        .await
        .map(|r| r.into_inner().component_type)
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn mutual_tls_accepts_trusted_rejects_others_and_reloads() {
    skein_tls::install_crypto_provider();
    let tmp = tempfile::tempdir().unwrap();
    let (server_dir, good_dir, evil_dir) = (
        tmp.path().join("server"),
        tmp.path().join("good"),
        tmp.path().join("evil"),
    );
    for d in [&server_dir, &good_dir, &evil_dir] {
        std::fs::create_dir_all(d).unwrap();
    }
    let ca = DevCa::generate("skein test CA").unwrap();
    let other_ca = DevCa::generate("another CA").unwrap();
    let server_files = node_files(&server_dir, &ca, "store-0.skein.test");
    let good = TlsMaterial::load(&node_files(&good_dir, &ca, "query-0.skein.test")).unwrap();
    let evil = TlsMaterial::load(&node_files(&evil_dir, &other_ca, "evil.skein.test")).unwrap();

    let reloader = TlsReloader::new(server_files.clone(), &mut Registry::default()).unwrap();
    let addr = serve(reloader.clone()).await;

    // A client with a certificate from the same CA, checking the server name.
    assert_eq!(
        call(addr, Some(good.client_config("store-0.skein.test"))).await,
        Ok("store".to_string())
    );
    // Wrong server name: the client refuses the server.
    assert!(
        call(addr, Some(good.client_config("other.skein.test")))
            .await
            .is_err()
    );
    // A client from another CA: the server refuses it (and the client
    // refuses the server, whose CA it does not trust either).
    assert!(
        call(addr, Some(evil.client_config("store-0.skein.test")))
            .await
            .is_err()
    );
    // A client trusting the server's CA but presenting no certificate.
    let no_cert = ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(&good.ca_pem))
        .domain_name("store-0.skein.test");
    assert!(call(addr, Some(no_cert)).await.is_err());
    // Plaintext against the TLS port.
    assert!(
        call(addr, None).await.is_err(),
        "plaintext must not be served"
    );

    // Rotate the server to the other CA: the old clients lose access, the
    // new CA's clients gain it, with no restart.
    let rotated = node_files(&server_dir, &other_ca, "store-0.skein.test");
    assert_eq!(rotated, server_files);
    let gen0 = reloader.generation();
    reloader.reload().unwrap();
    assert_eq!(reloader.generation(), gen0 + 1);
    let evil_for_store = TlsMaterial::load(&TlsFiles {
        ca: evil_dir.join("ca.crt"),
        ..node_files(&evil_dir, &other_ca, "query-1.skein.test")
    })
    .unwrap();
    assert_eq!(
        call(
            addr,
            Some(evil_for_store.client_config("store-0.skein.test"))
        )
        .await,
        Ok("store".to_string())
    );
    assert!(
        call(addr, Some(good.client_config("store-0.skein.test")))
            .await
            .is_err()
    );

    // Broken files: reload fails and the previous material keeps serving.
    std::fs::write(&server_files.cert, "not a certificate").unwrap();
    assert!(reloader.reload().is_err());
    assert_eq!(
        call(
            addr,
            Some(evil_for_store.client_config("store-0.skein.test"))
        )
        .await,
        Ok("store".to_string())
    );
}

#[test]
fn dev_ca_is_reused_from_its_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let (ca1, created1) = DevCa::load_or_create(tmp.path(), "dev").unwrap();
    let (ca2, created2) = DevCa::load_or_create(tmp.path(), "dev").unwrap();
    assert!(created1 && !created2);
    assert_eq!(ca1.cert_pem, ca2.cert_pem);
    // A certificate issued by the reloaded CA verifies against the file.
    let dir = tmp.path();
    let (cert, key) = ca2.issue_to(dir, "n1", &["127.0.0.1".into()]).unwrap();
    TlsMaterial::load(&TlsFiles {
        cert,
        key,
        ca: dir.join("ca.crt"),
    })
    .unwrap()
    .server_config()
    .unwrap();
}

#[test]
fn missing_and_garbage_files_name_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let f = |n: &str| tmp.path().join(n);
    std::fs::write(f("garbage.pem"), "hello").unwrap();
    let e = TlsMaterial::load(&TlsFiles {
        cert: f("nope.crt"),
        key: f("garbage.pem"),
        ca: f("garbage.pem"),
    })
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("nope.crt"), "{e}");
    let e = TlsMaterial::load(&TlsFiles {
        cert: f("garbage.pem"),
        key: f("garbage.pem"),
        ca: f("garbage.pem"),
    })
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("garbage.pem"), "{e}");
}
