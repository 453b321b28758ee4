//! TLS material from PEM files and the configs built from it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} file {path}: {source}")]
    Read {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("{what} file {path} holds no usable PEM {kind}: {reason}")]
    Pem {
        what: &'static str,
        path: String,
        kind: &'static str,
        reason: String,
    },
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// Where a node's TLS material lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate chain (leaf first), used as server and client identity.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// CA bundle that peers' certificates must chain to.
    pub ca: PathBuf,
}

/// Loaded and parsed material: the PEM text (for tonic's client config) and
/// the DER forms (for rustls).
#[derive(Clone)]
pub struct TlsMaterial {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
    pub ca_pem: Vec<u8>,
    chain: Vec<CertificateDer<'static>>,
    roots: Arc<RootCertStore>,
}

fn read(what: &'static str, p: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(p).map_err(|source| TlsError::Read {
        what,
        path: p.display().to_string(),
        source,
    })
}

fn pem_err(what: &'static str, p: &Path, kind: &'static str, reason: String) -> TlsError {
    TlsError::Pem {
        what,
        path: p.display().to_string(),
        kind,
        reason,
    }
}

impl TlsMaterial {
    pub fn load(files: &TlsFiles) -> Result<Self, TlsError> {
        let cert_pem = read("certificate", &files.cert)?;
        let key_pem = read("key", &files.key)?;
        let ca_pem = read("CA", &files.ca)?;
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<_, _>>()
            .map_err(|e| pem_err("certificate", &files.cert, "certificate", e.to_string()))?;
        if chain.is_empty() {
            return Err(pem_err(
                "certificate",
                &files.cert,
                "certificate",
                "no CERTIFICATE block".into(),
            ));
        }
        PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|e| pem_err("key", &files.key, "private key", e.to_string()))?;
        let mut roots = RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(&ca_pem) {
            let c = c.map_err(|e| pem_err("CA", &files.ca, "certificate", e.to_string()))?;
            roots
                .add(c)
                .map_err(|e| pem_err("CA", &files.ca, "certificate", e.to_string()))?;
        }
        if roots.is_empty() {
            return Err(pem_err(
                "CA",
                &files.ca,
                "certificate",
                "no CA certificate".into(),
            ));
        }
        Ok(TlsMaterial {
            cert_pem,
            key_pem,
            ca_pem,
            chain,
            roots: Arc::new(roots),
        })
    }

    fn key(&self) -> Result<PrivateKeyDer<'static>, TlsError> {
        PrivateKeyDer::from_pem_slice(&self.key_pem).map_err(|e| TlsError::Config(e.to_string()))
    }

    /// A server config that requires a client certificate from the CA and
    /// speaks HTTP/2 (gRPC).
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            WebPkiClientVerifier::builder_with_provider(self.roots.clone(), provider.clone())
                .build()
                .map_err(|e| TlsError::Config(format!("client verifier: {e}")))?;
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain.clone(), self.key()?)
            .map_err(|e| TlsError::Config(format!("server certificate and key: {e}")))?;
        cfg.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(cfg))
    }

    /// tonic's client config: our identity, the CA, and the name the peer's
    /// certificate must carry (also sent as SNI).
    pub fn client_config(&self, server_name: &str) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
            .domain_name(server_name.to_string())
    }
}
