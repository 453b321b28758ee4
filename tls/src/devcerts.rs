//! Development certificates: a CA and node certificates for tests, the
//! demo and small deployments (`skein tools certs`). Private keys are
//! written in clear, readable by their owner only (0600), in a directory
//! only its owner can enter (0700, when it is created here).
//!
//! The CA may sign node certificates only (path length 0). A node
//! certificate is valid as server and client, names the node's addresses as
//! DNS/IP SANs and, when a cluster is given, its Skein identity as a URI SAN
//! (see [`crate::identity`]).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

use crate::identity::NodeIdentity;

/// Validity of a node certificate unless told otherwise.
pub const DEFAULT_NODE_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// Validity of a new CA unless told otherwise.
pub const DEFAULT_CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// Certificates start this long before their issue time, so a peer whose
/// clock is a little behind accepts them at once.
const BACKDATE: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid validity {0:?}: must be between one hour and 100 years")]
    Validity(Duration),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CertError + '_ {
    move |source| CertError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn write(path: &Path, data: &str) -> Result<(), CertError> {
    std::fs::write(path, data).map_err(io_err(path))
}

/// Writes a private key readable by its owner only. An existing file is
/// first narrowed to 0600, then overwritten.
fn write_private(path: &Path, data: &str) -> Result<(), CertError> {
    #[cfg(unix)]
    {
        use std::io::Write;
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        if path.exists() {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .map_err(io_err(path))?;
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .map_err(io_err(path))?;
        f.write_all(data.as_bytes()).map_err(io_err(path))?;
        f.sync_all().map_err(io_err(path))
    }
    #[cfg(not(unix))]
    {
        write(path, data)
    }
}

/// Creates `dir` (and parents) if missing; a directory created here is
/// 0700.
fn create_private_dir(dir: &Path) -> Result<(), CertError> {
    if dir.is_dir() {
        return Ok(());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_err(dir))
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir).map_err(io_err(dir))
    }
}

fn read(path: &Path) -> Result<String, CertError> {
    std::fs::read_to_string(path).map_err(io_err(path))
}

fn set_validity(p: &mut CertificateParams, validity: Duration) -> Result<(), CertError> {
    if validity < Duration::from_secs(3600) || validity > Duration::from_secs(100 * 365 * 86400) {
        return Err(CertError::Validity(validity));
    }
    let now = SystemTime::now();
    p.not_before = time::OffsetDateTime::from(now - BACKDATE);
    p.not_after = time::OffsetDateTime::from(now + validity);
    Ok(())
}

/// What a node certificate says.
#[derive(Clone, Debug)]
pub struct NodeCertSpec {
    /// Common name, first DNS SAN and file name.
    pub name: String,
    /// More DNS names or IP addresses.
    pub sans: Vec<String>,
    /// The Skein identity (URI SAN); `None` makes a certificate that serves
    /// static stores and clients but is refused for gossip.
    pub identity: Option<NodeIdentity>,
    pub validity: Duration,
}

impl NodeCertSpec {
    /// A certificate for `name` (also a SAN) with the given SANs, no
    /// identity and the default validity.
    pub fn new(name: &str, sans: &[String]) -> NodeCertSpec {
        NodeCertSpec {
            name: name.to_string(),
            sans: sans.to_vec(),
            identity: None,
            validity: DEFAULT_NODE_VALIDITY,
        }
    }

    /// Adds the identity `spiffe://<federation>/cluster/<cluster>/node/<name>`.
    pub fn with_identity(mut self, federation: &str, cluster: &str) -> NodeCertSpec {
        self.identity = Some(NodeIdentity::new(federation, cluster, self.name.clone()));
        self
    }
}

/// A CA that can sign node certificates.
pub struct DevCa {
    issuer: Issuer<'static, KeyPair>,
    pub cert_pem: String,
}

impl DevCa {
    /// A new self-signed CA with the given common name and the default
    /// validity.
    pub fn generate(common_name: &str) -> Result<Self, CertError> {
        DevCa::generate_with(common_name, DEFAULT_CA_VALIDITY)
    }

    /// A new self-signed CA valid for `validity`; it may sign end-entity
    /// certificates only (path length 0).
    pub fn generate_with(common_name: &str, validity: Duration) -> Result<Self, CertError> {
        let mut p = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        p.distinguished_name = dn;
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        set_validity(&mut p, validity)?;
        let key = KeyPair::generate()?;
        let cert = p.self_signed(&key)?;
        let cert_pem = cert.pem();
        Ok(DevCa {
            issuer: Issuer::new(p, key),
            cert_pem,
        })
    }

    /// Loads `ca.crt` and `ca.key` from `dir` if both exist, else makes a
    /// new CA (default validity) and writes them. Returns the CA and
    /// whether it was created.
    pub fn load_or_create(dir: &Path, common_name: &str) -> Result<(Self, bool), CertError> {
        DevCa::load_or_create_with(dir, common_name, DEFAULT_CA_VALIDITY)
    }

    /// Like [`DevCa::load_or_create`] with the validity of a new CA. The
    /// directory is made 0700 when created here; `ca.key` is 0600.
    pub fn load_or_create_with(
        dir: &Path,
        common_name: &str,
        validity: Duration,
    ) -> Result<(Self, bool), CertError> {
        let (crt, key) = (dir.join("ca.crt"), dir.join("ca.key"));
        if crt.exists() && key.exists() {
            let cert_pem = read(&crt)?;
            let key = KeyPair::from_pem(&read(&key)?)?;
            let issuer = Issuer::from_ca_cert_pem(&cert_pem, key)?;
            return Ok((DevCa { issuer, cert_pem }, false));
        }
        create_private_dir(dir)?;
        let ca = DevCa::generate_with(common_name, validity)?;
        write_private(&key, &ca.issuer.key().serialize_pem())?;
        write(&crt, &ca.cert_pem)?;
        Ok((ca, true))
    }

    /// A node certificate valid as both server and client, for the given
    /// DNS names and IP addresses, without identity. Returns (certificate
    /// PEM, key PEM).
    pub fn issue(&self, name: &str, sans: &[String]) -> Result<(String, String), CertError> {
        self.issue_node(&NodeCertSpec::new(name, sans))
    }

    /// A node certificate as `spec` says. Returns (certificate PEM, key PEM).
    pub fn issue_node(&self, spec: &NodeCertSpec) -> Result<(String, String), CertError> {
        let mut all = vec![spec.name.clone()];
        all.extend(spec.sans.iter().filter(|s| **s != spec.name).cloned());
        let mut p = CertificateParams::new(all)?;
        if let Some(id) = &spec.identity {
            p.subject_alt_names
                .push(SanType::URI(rcgen::string::Ia5String::try_from(id.uri())?));
        }
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, spec.name.as_str());
        p.distinguished_name = dn;
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.use_authority_key_identifier_extension = true;
        set_validity(&mut p, spec.validity)?;
        let key = KeyPair::generate()?;
        let cert = p.signed_by(&key, &self.issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// Issues a node certificate without identity and writes `<name>.crt`
    /// and `<name>.key` (0600) into `dir`; returns their paths.
    pub fn issue_to(
        &self,
        dir: &Path,
        name: &str,
        sans: &[String],
    ) -> Result<(PathBuf, PathBuf), CertError> {
        self.issue_node_to(dir, &NodeCertSpec::new(name, sans))
    }

    /// Issues a node certificate as `spec` says and writes `<name>.crt` and
    /// `<name>.key` (0600) into `dir`; returns their paths.
    pub fn issue_node_to(
        &self,
        dir: &Path,
        spec: &NodeCertSpec,
    ) -> Result<(PathBuf, PathBuf), CertError> {
        let (cert, key) = self.issue_node(spec)?;
        let (cp, kp) = (
            dir.join(format!("{}.crt", spec.name)),
            dir.join(format!("{}.key", spec.name)),
        );
        write_private(&kp, &key)?;
        write(&cp, &cert)?;
        Ok((cp, kp))
    }
}
