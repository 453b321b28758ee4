//! The accept loop's bounds with real sockets: a peer that opens many TCP
//! connections and never handshakes takes at most `max_handshakes` slots
//! (the rest are closed at once and counted), honest clients get in once
//! the silent ones time out, and connections over `max_connections` are
//! closed and counted.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::registry::Registry;
use skein_proto::thanos::info::info_client::InfoClient;
use skein_proto::thanos::info::info_server::{Info, InfoServer};
use skein_proto::thanos::info::{InfoRequest, InfoResponse};
use skein_tls::devcerts::DevCa;
use skein_tls::server::{AcceptLimits, AcceptMetrics};
use skein_tls::{TlsFiles, TlsMaterial, TlsReloader};
use tokio::io::AsyncReadExt;
use tonic::transport::{ClientTlsConfig, Endpoint};

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
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("ca.crt"), &ca.cert_pem).unwrap();
    let (cert, key) = ca.issue_to(dir, name, &["127.0.0.1".into()]).unwrap();
    TlsFiles {
        cert,
        key,
        ca: dir.join("ca.crt"),
    }
}

async fn call(addr: std::net::SocketAddr, tls: ClientTlsConfig) -> Result<String, String> {
    let ch = Endpoint::from_shared(format!("https://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(3))
        .tls_config(tls)
        .map_err(|e| e.to_string())?
        .connect()
        .await
        .map_err(|e| format!("{e:?}"))?;
    InfoClient::new(ch)
        .info(InfoRequest {})
        .await
        .map(|r| r.into_inner().component_type)
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn silent_connections_take_at_most_the_handshake_slots_and_honest_clients_get_in() {
    skein_tls::install_crypto_provider();
    let tmp = tempfile::tempdir().unwrap();
    let ca = DevCa::generate("skein test CA").unwrap();
    let server_files = node_files(&tmp.path().join("server"), &ca, "store-0.skein.test");
    let client =
        TlsMaterial::load(&node_files(&tmp.path().join("client"), &ca, "query-0")).unwrap();
    let reloader = TlsReloader::new(server_files, &mut Registry::default()).unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = AcceptLimits {
        max_handshakes: 4,
        handshake_timeout: Duration::from_secs(1),
        max_connections: 1000,
    };
    let metrics = AcceptMetrics::register(&mut Registry::default());
    let incoming = skein_tls::server::incoming_limited(
        listener,
        Arc::clone(&reloader),
        limits,
        metrics.clone(),
    );
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(InfoServer::new(Fixed))
            .serve_with_incoming(incoming),
    );

    // 50 connections that never send a byte.
    let mut silent = Vec::new();
    for _ in 0..50 {
        silent.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    // All but the 4 that hold a handshake slot are closed and counted.
    let until = Instant::now() + Duration::from_secs(20);
    while metrics.handshakes_rejected() < 46 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(metrics.handshakes_rejected(), 46);
    // A refused connection is closed by the server: the peer reads EOF.
    let mut buf = [0u8; 1];
    let last = silent.last_mut().unwrap();
    let n = tokio::time::timeout(Duration::from_secs(20), last.read(&mut buf))
        .await
        .expect("a refused connection must be closed")
        .unwrap_or(0);
    assert_eq!(n, 0);

    // The silent ones that hold slots time out; an honest client gets in.
    let mut answer = Err(String::new());
    let until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < until {
        answer = call(addr, client.client_config("store-0.skein.test")).await;
        if answer.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(answer, Ok("store".to_string()));
    drop(silent);
}

#[tokio::test]
async fn connections_over_the_cap_are_closed_and_counted() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = AcceptLimits {
        max_connections: 2,
        ..AcceptLimits::default()
    };
    let metrics = AcceptMetrics::register(&mut Registry::default());
    let incoming = skein_tls::server::incoming_plaintext(listener, limits, metrics.clone());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(InfoServer::new(Fixed))
            .serve_with_incoming(incoming),
    );
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    let until = Instant::now() + Duration::from_secs(20);
    while metrics.connections_rejected() < 3 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(metrics.connections_rejected(), 3);
    // Once the held ones close, a client is served again.
    drop(held);
    let mut answer = Err(String::new());
    let until = Instant::now() + Duration::from_secs(20);
    while Instant::now() < until {
        let ch = Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await;
        if let Ok(ch) = ch {
            answer = InfoClient::new(ch)
                .info(InfoRequest {})
                .await
                .map(|r| r.into_inner().component_type)
                .map_err(|e| e.to_string());
            if answer.is_ok() {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(answer, Ok("store".to_string()));
}
