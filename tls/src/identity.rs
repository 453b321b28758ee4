//! Node identity in certificates, and signatures made with a node's key.
//!
//! Every Skein node certificate names its identity in one URI SAN:
//!
//! ```text
//! spiffe://<federation>/cluster/<cluster>/node/<node_id>
//! ```
//!
//! Each part is percent-encoded (every byte outside `A-Z a-z 0-9 - . _ ~`),
//! so any node id, cluster or federation name round-trips. The DNS and IP
//! SANs name the addresses the node is reached at, as before.
//!
//! - [`CertFacts`]: what a certificate says (identities, DNS and IP SANs,
//!   expiry), parsed from DER;
//! - [`verify_signature`]: checks a signature made with a certificate's key
//!   (the signing side is [`crate::TlsMaterial::sign`]);
//! - [`IdentityVerifier`]: a rustls server certificate verifier that, after
//!   the usual WebPKI checks, requires a given federation and cluster in the
//!   server's certificate, and keeps the reason of its last refusal.

use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// URI scheme of identity SANs.
pub const IDENTITY_SCHEME: &str = "spiffe://";

/// Largest identity part accepted (node ids and clusters are at most 128
/// bytes in announcements).
const MAX_PART: usize = 128;

/// Why a certificate's identity or a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("certificate does not parse: {0}")]
    Parse(String),
    #[error(
        "certificate has no Skein identity (URI SAN spiffe://{federation}/cluster/<cluster>/node/<node>)"
    )]
    NoIdentity { federation: String },
    #[error("certificate names identities of several clusters in federation {0}")]
    Ambiguous(String),
    #[error("certificate identity is of cluster {got:?}, not {want:?}")]
    WrongCluster { got: String, want: String },
    #[error("signature: {0}")]
    Signature(String),
}

/// A node's identity: federation, cluster and node id.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeIdentity {
    pub federation: String,
    pub cluster: String,
    pub node_id: String,
}

impl NodeIdentity {
    pub fn new(
        federation: impl Into<String>,
        cluster: impl Into<String>,
        node_id: impl Into<String>,
    ) -> NodeIdentity {
        NodeIdentity {
            federation: federation.into(),
            cluster: cluster.into(),
            node_id: node_id.into(),
        }
    }

    /// The URI SAN naming this identity.
    pub fn uri(&self) -> String {
        format!(
            "{IDENTITY_SCHEME}{}/cluster/{}/node/{}",
            encode(&self.federation),
            encode(&self.cluster),
            encode(&self.node_id)
        )
    }

    /// Parses an identity URI; `None` for any other URI.
    pub fn parse_uri(uri: &str) -> Option<NodeIdentity> {
        let rest = uri.strip_prefix(IDENTITY_SCHEME)?;
        let mut parts = rest.split('/');
        let federation = decode(parts.next()?)?;
        if parts.next()? != "cluster" {
            return None;
        }
        let cluster = decode(parts.next()?)?;
        if parts.next()? != "node" {
            return None;
        }
        let node_id = decode(parts.next()?)?;
        if parts.next().is_some() {
            return None;
        }
        Some(NodeIdentity {
            federation,
            cluster,
            node_id,
        })
    }
}

impl fmt::Display for NodeIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.uri())
    }
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn decode(s: &str) -> Option<String> {
    if s.is_empty() || s.len() > 3 * MAX_PART {
        return None;
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let text = String::from_utf8(out).ok()?;
    (text.len() <= MAX_PART && !text.chars().any(char::is_control)).then_some(text)
}

/// What a certificate says about its holder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertFacts {
    /// Skein identities (URI SANs of [`IDENTITY_SCHEME`] that parse).
    pub identities: Vec<NodeIdentity>,
    /// DNS SANs, lower-cased.
    pub dns: Vec<String>,
    pub ips: Vec<IpAddr>,
    /// Expiry, seconds since the epoch.
    pub not_after: i64,
}

impl CertFacts {
    /// Parses a DER certificate. Never panics on hostile input.
    pub fn parse(der: &[u8]) -> Result<CertFacts, IdentityError> {
        use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
        let (_, cert) =
            X509Certificate::from_der(der).map_err(|e| IdentityError::Parse(e.to_string()))?;
        let mut facts = CertFacts {
            identities: Vec::new(),
            dns: Vec::new(),
            ips: Vec::new(),
            not_after: cert.validity().not_after.timestamp(),
        };
        let san = cert
            .subject_alternative_name()
            .map_err(|e| IdentityError::Parse(e.to_string()))?;
        for name in san.iter().flat_map(|s| s.value.general_names.iter()) {
            match name {
                GeneralName::URI(u) => {
                    if let Some(id) = NodeIdentity::parse_uri(u) {
                        facts.identities.push(id);
                    }
                }
                GeneralName::DNSName(d) => facts.dns.push(d.to_ascii_lowercase()),
                GeneralName::IPAddress(b) => match b.len() {
                    4 => facts
                        .ips
                        .push(IpAddr::from(<[u8; 4]>::try_from(*b).unwrap_or_default())),
                    16 => facts
                        .ips
                        .push(IpAddr::from(<[u8; 16]>::try_from(*b).unwrap_or_default())),
                    _ => {}
                },
                _ => {}
            }
        }
        Ok(facts)
    }

    /// The cluster of this certificate's identities in `federation`. A
    /// certificate may name several nodes (one certificate shared by the
    /// pods of a StatefulSet), all of one cluster.
    pub fn cluster_in(&self, federation: &str) -> Result<&str, IdentityError> {
        let mut of_fed = self
            .identities
            .iter()
            .filter(|i| i.federation == federation);
        let first = of_fed.next().ok_or_else(|| IdentityError::NoIdentity {
            federation: federation.to_string(),
        })?;
        if of_fed.any(|i| i.cluster != first.cluster) {
            return Err(IdentityError::Ambiguous(federation.to_string()));
        }
        Ok(&first.cluster)
    }

    /// True when the certificate names `node_id` in `federation`.
    pub fn names_node(&self, federation: &str, node_id: &str) -> bool {
        self.identities
            .iter()
            .any(|i| i.federation == federation && i.node_id == node_id)
    }

    /// True when `host` (an IP literal, or a DNS name) is a SAN of this
    /// certificate. A DNS SAN `*.example.com` covers exactly one label.
    pub fn has_host(&self, host: &str) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = host.parse::<IpAddr>() {
            return self.ips.contains(&ip);
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.dns.iter().any(|san| {
            let san = san.trim_end_matches('.');
            if let Some(suffix) = san.strip_prefix("*.") {
                host.split_once('.')
                    .is_some_and(|(first, rest)| !first.is_empty() && rest == suffix)
            } else {
                san == host
            }
        })
    }
}

/// Signature schemes used for gossip signatures: those TLS 1.3 allows, so
/// every key type rustls loads has one.
pub(crate) const SIGNING_SCHEMES: &[SignatureScheme] = &[
    SignatureScheme::ED25519,
    SignatureScheme::ECDSA_NISTP256_SHA256,
    SignatureScheme::ECDSA_NISTP384_SHA384,
    SignatureScheme::ECDSA_NISTP521_SHA512,
    SignatureScheme::RSA_PSS_SHA256,
    SignatureScheme::RSA_PSS_SHA384,
    SignatureScheme::RSA_PSS_SHA512,
];

/// Checks that `signature` (scheme `scheme`, as a TLS code point) over
/// `msg` was made with the key of `cert`. Only checks the signature: the
/// certificate itself is checked by [`crate::TlsMaterial::verify_peer_chain`].
pub fn verify_signature(
    cert: &CertificateDer<'_>,
    scheme: u16,
    msg: &[u8],
    signature: &[u8],
) -> Result<(), IdentityError> {
    let scheme = SignatureScheme::from(scheme);
    if !SIGNING_SCHEMES.contains(&scheme) {
        return Err(IdentityError::Signature(format!(
            "scheme {scheme:?} not accepted"
        )));
    }
    let algs = rustls::crypto::ring::default_provider().signature_verification_algorithms;
    let alg = algs
        .mapping
        .iter()
        .find(|(s, _)| *s == scheme)
        .and_then(|(_, a)| a.first())
        .ok_or_else(|| IdentityError::Signature(format!("scheme {scheme:?} not supported")))?;
    let ee = webpki::EndEntityCert::try_from(cert)
        .map_err(|e| IdentityError::Parse(format!("{e:?}")))?;
    ee.verify_signature(*alg, msg, signature)
        .map_err(|e| IdentityError::Signature(format!("{e:?}")))
}

/// The federation and cluster a server's certificate must name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ExpectedIdentity {
    pub federation: String,
    pub cluster: String,
}

/// A server certificate verifier: the usual WebPKI checks (chain to the CA,
/// validity, server name), then the identity in the certificate must be of
/// the expected federation and cluster. The reason of the last refusal is
/// kept for the caller's error reports ([`IdentityVerifier::last_refusal`]),
/// since the TLS error that reaches a gRPC caller is terse.
#[derive(Debug)]
pub struct IdentityVerifier {
    inner: Arc<WebPkiServerVerifier>,
    expect: ExpectedIdentity,
    last_refusal: Mutex<Option<IdentityError>>,
}

impl IdentityVerifier {
    pub(crate) fn new(inner: Arc<WebPkiServerVerifier>, expect: ExpectedIdentity) -> Self {
        IdentityVerifier {
            inner,
            expect,
            last_refusal: Mutex::new(None),
        }
    }

    pub fn expected(&self) -> &ExpectedIdentity {
        &self.expect
    }

    /// Why the last handshake was refused for its identity, if it was.
    /// Cleared by a handshake whose identity is accepted.
    pub fn last_refusal(&self) -> Option<IdentityError> {
        self.last_refusal
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn check(&self, end_entity: &CertificateDer<'_>) -> Result<(), IdentityError> {
        let facts = CertFacts::parse(end_entity)?;
        let cluster = facts.cluster_in(&self.expect.federation)?;
        if cluster != self.expect.cluster {
            return Err(IdentityError::WrongCluster {
                got: cluster.to_string(),
                want: self.expect.cluster.clone(),
            });
        }
        Ok(())
    }
}

impl ServerCertVerifier for IdentityVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let ok = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        let res = self.check(end_entity);
        let mut slot = self
            .last_refusal
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match res {
            Ok(()) => {
                *slot = None;
                Ok(ok)
            }
            Err(e) => {
                *slot = Some(e.clone());
                Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                    rustls::OtherError(Arc::new(e)),
                )))
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_uri_round_trips_any_text() {
        let id = NodeIdentity::new("skein", "eu 1/x", "node%1é");
        let uri = id.uri();
        assert_eq!(uri, "spiffe://skein/cluster/eu%201%2Fx/node/node%251%C3%A9");
        assert_eq!(NodeIdentity::parse_uri(&uri), Some(id));
        let plain = NodeIdentity::new("fed", "a", "a0");
        assert_eq!(plain.uri(), "spiffe://fed/cluster/a/node/a0");
    }

    #[test]
    fn foreign_and_broken_uris_are_not_identities() {
        for u in [
            "https://fed/cluster/a/node/n",
            "spiffe://fed/ns/a/sa/n",
            "spiffe://fed/cluster/a/node/n/extra",
            "spiffe://fed/cluster//node/n",
            "spiffe://fed/cluster/a/node/%zz",
            "spiffe://fed/cluster/a/node/%0A",
            "spiffe://fed/cluster/a/node/%",
            "spiffe://fed/cluster/a",
            "spiffe://",
        ] {
            assert_eq!(NodeIdentity::parse_uri(u), None, "{u}");
        }
        let long = "x".repeat(MAX_PART + 1);
        assert_eq!(
            NodeIdentity::parse_uri(&format!("spiffe://f/cluster/{long}/node/n")),
            None
        );
    }

    #[test]
    fn hosts_match_sans() {
        let f = CertFacts {
            identities: vec![],
            dns: vec!["q0.eu1.example.com".into(), "*.ingress.example.com".into()],
            ips: vec!["127.0.0.7".parse().unwrap(), "::1".parse().unwrap()],
            not_after: 0,
        };
        assert!(f.has_host("Q0.EU1.example.com"));
        assert!(f.has_host("a.ingress.example.com"));
        assert!(!f.has_host("a.b.ingress.example.com"));
        assert!(!f.has_host("ingress.example.com"));
        assert!(f.has_host("127.0.0.7"));
        assert!(f.has_host("[::1]"));
        assert!(!f.has_host("127.0.0.8"));
        assert!(!f.has_host("eu1.example.com"));
        let pods = CertFacts {
            identities: vec![
                NodeIdentity::new("f", "eu1", "p-0"),
                NodeIdentity::new("f", "eu1", "p-1"),
                NodeIdentity::new("g", "x", "p-0"),
            ],
            ..f.clone()
        };
        assert_eq!(pods.cluster_in("f"), Ok("eu1"));
        assert!(pods.names_node("f", "p-1") && !pods.names_node("f", "p-2"));
        let mixed = CertFacts {
            identities: vec![
                NodeIdentity::new("f", "eu1", "p-0"),
                NodeIdentity::new("f", "us1", "p-1"),
            ],
            ..f
        };
        assert!(matches!(
            mixed.cluster_in("f"),
            Err(IdentityError::Ambiguous(_))
        ));
        assert!(matches!(
            mixed.cluster_in("h"),
            Err(IdentityError::NoIdentity { .. })
        ));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(CertFacts::parse(b"").is_err());
        assert!(CertFacts::parse(&[0x30, 0x82, 0xff, 0xff, 0]).is_err());
        let c = CertificateDer::from(vec![1u8, 2, 3]);
        assert!(verify_signature(&c, 0x0403, b"m", b"s").is_err());
        assert!(verify_signature(&c, 0x0201, b"m", b"s").is_err());
    }
}

#[cfg(test)]
mod material_tests {
    use super::*;
    use crate::devcerts::{DevCa, NodeCertSpec};
    use crate::{TlsFiles, TlsMaterial};

    fn material(ca: &DevCa, dir: &std::path::Path, spec: &NodeCertSpec) -> TlsMaterial {
        let (cert, key) = ca.issue_node_to(dir, spec).unwrap();
        let ca_path = dir.join("ca.crt");
        std::fs::write(&ca_path, &ca.cert_pem).unwrap();
        TlsMaterial::load(&TlsFiles {
            cert,
            key,
            ca: ca_path,
        })
        .unwrap()
    }

    #[test]
    fn signatures_bind_key_and_message_and_chains_bind_the_ca() {
        let dir = tempfile::tempdir().unwrap();
        let ca = DevCa::generate("t").unwrap();
        let a = material(
            &ca,
            dir.path(),
            &NodeCertSpec::new("a", &[]).with_identity("fed", "ca"),
        );
        let b = material(&ca, dir.path(), &NodeCertSpec::new("b", &[]));
        let (scheme, sig) = a.sign(b"hello").unwrap();
        verify_signature(&a.chain()[0], scheme, b"hello", &sig).unwrap();
        assert!(verify_signature(&a.chain()[0], scheme, b"hellp", &sig).is_err());
        assert!(verify_signature(&b.chain()[0], scheme, b"hello", &sig).is_err());
        let now = UnixTime::now();
        let facts = b.verify_peer_chain(a.chain(), now).unwrap();
        assert_eq!(facts.cluster_in("fed").unwrap(), "ca");
        assert!(facts.names_node("fed", "a") && !facts.names_node("fed", "b"));
        assert!(facts.cluster_in("other").is_err());
        // A chain from another CA does not verify.
        let other = DevCa::generate("other").unwrap();
        let odir = tempfile::tempdir().unwrap();
        let o = material(&other, odir.path(), &NodeCertSpec::new("o", &[]));
        assert!(a.verify_peer_chain(o.chain(), now).is_err());
        assert!(a.verify_peer_chain(&[], now).is_err());
        // Expired by then.
        let later = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            u64::try_from(facts.not_after).unwrap() + 10,
        ));
        assert!(b.verify_peer_chain(a.chain(), later).is_err());
    }
}
