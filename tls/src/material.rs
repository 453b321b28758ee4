//! TLS material from PEM files and the configs built from it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use crate::identity::{
    CertFacts, ExpectedIdentity, IdentityError, IdentityVerifier, SIGNING_SCHEMES,
};

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

    /// The certificate chain (leaf first).
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// What this node's own certificate says (identity, SANs, expiry).
    pub fn own_facts(&self) -> Result<CertFacts, IdentityError> {
        CertFacts::parse(&self.chain[0])
    }

    /// Signs `msg` with this node's private key. Returns the scheme (a TLS
    /// code point, see [`crate::identity::verify_signature`]) and the
    /// signature.
    pub fn sign(&self, msg: &[u8]) -> Result<(u16, Vec<u8>), TlsError> {
        let provider = rustls::crypto::ring::default_provider();
        let key = provider
            .key_provider
            .load_private_key(self.key()?)
            .map_err(|e| TlsError::Config(format!("private key: {e}")))?;
        let signer = key.choose_scheme(SIGNING_SCHEMES).ok_or_else(|| {
            TlsError::Config(format!(
                "private key of type {:?} cannot sign gossip",
                key.algorithm()
            ))
        })?;
        let sig = signer
            .sign(msg)
            .map_err(|e| TlsError::Config(format!("signing: {e}")))?;
        Ok((u16::from(signer.scheme()), sig))
    }

    /// Checks a peer's certificate chain (leaf first) as a client
    /// certificate against this node's CA at `now` (the same checks as the
    /// mutual-TLS handshake), and returns what the leaf says.
    pub fn verify_peer_chain(
        &self,
        chain: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<CertFacts, TlsError> {
        let (leaf, intermediates) = chain
            .split_first()
            .ok_or_else(|| TlsError::Config("empty certificate chain".into()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = WebPkiClientVerifier::builder_with_provider(self.roots.clone(), provider)
            .build()
            .map_err(|e| TlsError::Config(format!("client verifier: {e}")))?;
        verifier
            .verify_client_cert(leaf, intermediates, now)
            .map_err(|e| TlsError::Config(format!("certificate: {e}")))?;
        CertFacts::parse(leaf).map_err(|e| TlsError::Config(e.to_string()))
    }

    /// Like [`TlsMaterial::client_config`], and the server's certificate
    /// must also name an identity of `expect`'s federation and cluster. The
    /// returned verifier tells why it refused a certificate.
    pub fn client_config_expecting(
        &self,
        server_name: &str,
        expect: ExpectedIdentity,
    ) -> Result<(ClientTlsConfig, Arc<IdentityVerifier>), TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let inner = WebPkiServerVerifier::builder_with_provider(self.roots.clone(), provider)
            .build()
            .map_err(|e| TlsError::Config(format!("server verifier: {e}")))?;
        let verifier = Arc::new(IdentityVerifier::new(inner, expect));
        let cfg = ClientTlsConfig::new()
            .identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
            .domain_name(server_name.to_string());
        Ok((cfg, verifier))
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
