//! Development certificates: a CA and node certificates for tests and the
//! demo (`skein tools certs`). Not for production: keys are written in
//! clear to the output directory.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

fn write(path: &Path, data: &str) -> Result<(), CertError> {
    std::fs::write(path, data).map_err(|source| CertError::Io {
        path: path.display().to_string(),
        source,
    })
}

fn read(path: &Path) -> Result<String, CertError> {
    std::fs::read_to_string(path).map_err(|source| CertError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// A CA that can sign node certificates.
pub struct DevCa {
    issuer: Issuer<'static, KeyPair>,
    pub cert_pem: String,
}

impl DevCa {
    /// A new self-signed CA with the given common name.
    pub fn generate(common_name: &str) -> Result<Self, CertError> {
        let mut p = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        p.distinguished_name = dn;
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate()?;
        let cert = p.self_signed(&key)?;
        let cert_pem = cert.pem();
        Ok(DevCa {
            issuer: Issuer::new(p, key),
            cert_pem,
        })
    }

    /// Loads `ca.crt` and `ca.key` from `dir` if both exist, else makes a
    /// new CA and writes them. Returns the CA and whether it was created.
    pub fn load_or_create(dir: &Path, common_name: &str) -> Result<(Self, bool), CertError> {
        let (crt, key) = (dir.join("ca.crt"), dir.join("ca.key"));
        if crt.exists() && key.exists() {
            let cert_pem = read(&crt)?;
            let key = KeyPair::from_pem(&read(&key)?)?;
            let issuer = Issuer::from_ca_cert_pem(&cert_pem, key)?;
            return Ok((DevCa { issuer, cert_pem }, false));
        }
        std::fs::create_dir_all(dir).map_err(|source| CertError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let ca = DevCa::generate(common_name)?;
        write(&crt, &ca.cert_pem)?;
        write(&key, &ca.issuer.key().serialize_pem())?;
        Ok((ca, true))
    }

    /// A node certificate valid as both server and client, for the given
    /// DNS names and IP addresses. Returns (certificate PEM, key PEM).
    pub fn issue(&self, name: &str, sans: &[String]) -> Result<(String, String), CertError> {
        let mut all = vec![name.to_string()];
        all.extend(sans.iter().filter(|s| s.as_str() != name).cloned());
        let mut p = CertificateParams::new(all)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        p.distinguished_name = dn;
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate()?;
        let cert = p.signed_by(&key, &self.issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// Issues a node certificate and writes `<name>.crt` and `<name>.key`
    /// into `dir`; returns their paths.
    pub fn issue_to(
        &self,
        dir: &Path,
        name: &str,
        sans: &[String],
    ) -> Result<(PathBuf, PathBuf), CertError> {
        let (cert, key) = self.issue(name, sans)?;
        let (cp, kp) = (
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        );
        write(&cp, &cert)?;
        write(&kp, &key)?;
        Ok((cp, kp))
    }
}
