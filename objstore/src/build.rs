//! Builds an [`ObjectStore`] from a parsed [`ObjstoreConfig`].

use crate::config::{
    AzureConfig, BucketLookup, FilesystemConfig, GcsConfig, HttpOptions, ObjstoreConfig, Provider,
    S3Config, Sse,
};
use crate::error::ConfigError;
use crate::tls::install_ring_provider;
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::prefix::PrefixStore;
use object_store::{BackoffConfig, Certificate, ClientOptions, ObjectStore, RetryConfig};
use std::sync::Arc;
use std::time::Duration;

/// The retry count of the HTTP clients when the config does not set `max_retries`.
pub const DEFAULT_CLIENT_RETRIES: usize = 10;

/// Builds the store described by `cfg`, wrapped in its `prefix:` if any. A FILESYSTEM
/// directory is created when missing.
pub fn build_store(cfg: &ObjstoreConfig) -> Result<Arc<dyn ObjectStore>, ConfigError> {
    let store: Arc<dyn ObjectStore> = match &cfg.provider {
        Provider::Filesystem(c) => Arc::new(filesystem(c)?),
        Provider::S3(c) => Arc::new(s3(c)?),
        Provider::Gcs(c) => Arc::new(gcs(c)?),
        Provider::Azure(c) => Arc::new(azure(c)?),
    };
    Ok(match &cfg.prefix {
        Some(p) => Arc::new(PrefixStore::new(store, p.as_str())),
        None => store,
    })
}

fn filesystem(c: &FilesystemConfig) -> Result<LocalFileSystem, ConfigError> {
    std::fs::create_dir_all(&c.directory).map_err(|e| ConfigError::InvalidValue {
        kind: "FILESYSTEM",
        key: "directory".into(),
        reason: format!("cannot create {}: {e}", c.directory.display()),
    })?;
    LocalFileSystem::new_with_prefix(&c.directory)
        .map(|fs| fs.with_automatic_cleanup(true))
        .map_err(|source| ConfigError::Build {
            kind: "FILESYSTEM",
            source,
        })
}

fn retry(max_retries: Option<usize>) -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            base: 2.0,
        },
        max_retries: max_retries.unwrap_or(DEFAULT_CLIENT_RETRIES),
        retry_timeout: Duration::from_secs(3 * 60),
    }
}

fn client_options(kind: &'static str, h: &HttpOptions) -> Result<ClientOptions, ConfigError> {
    let mut o = ClientOptions::new();
    if let Some(t) = h.idle_conn_timeout {
        o = o.with_pool_idle_timeout(t);
    }
    if let Some(t) = h.response_header_timeout {
        // Whole-request timeout: the closest knob the client offers.
        if !t.is_zero() {
            o = o.with_timeout(t.max(Duration::from_secs(30)));
        }
    }
    if let Some(n) = h.max_idle_conns_per_host {
        o = o.with_pool_max_idle_per_host(n);
    }
    if h.insecure_skip_verify {
        o = o.with_allow_invalid_certificates(true);
    }
    if let Some(ca) = &h.ca_file {
        let pem = std::fs::read(ca).map_err(|e| ConfigError::InvalidValue {
            kind,
            key: "http_config.tls_config.ca_file".into(),
            reason: format!("cannot read {}: {e}", ca.display()),
        })?;
        let certs = Certificate::from_pem_bundle(&pem)
            .map_err(|source| ConfigError::Build { kind, source })?;
        for c in certs {
            o = o.with_root_certificate(c);
        }
    }
    Ok(o)
}

fn is_aws(endpoint: &str) -> bool {
    let host = endpoint.split(':').next().unwrap_or(endpoint);
    host.ends_with("amazonaws.com") || host.ends_with("amazonaws.com.cn")
}

fn s3(c: &S3Config) -> Result<object_store::aws::AmazonS3, ConfigError> {
    install_ring_provider();
    let scheme = if c.insecure { "http" } else { "https" };
    let endpoint = c
        .endpoint
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let virtual_hosted = match c.bucket_lookup {
        BucketLookup::Auto => is_aws(endpoint),
        BucketLookup::VirtualHosted => true,
        BucketLookup::Path => false,
    };
    let url = if virtual_hosted {
        format!("{scheme}://{}.{endpoint}", c.bucket)
    } else {
        format!("{scheme}://{endpoint}")
    };
    let mut b = AmazonS3Builder::from_env()
        .with_bucket_name(&c.bucket)
        .with_endpoint(url)
        .with_virtual_hosted_style_request(virtual_hosted)
        .with_allow_http(c.insecure)
        .with_region(c.region.clone().unwrap_or_else(|| "us-east-1".into()))
        .with_retry(retry(c.max_retries))
        .with_client_options(client_options("S3", &c.http)?.with_allow_http(c.insecure));
    if let (Some(ak), Some(sk)) = (&c.access_key, &c.secret_key) {
        b = b.with_access_key_id(ak).with_secret_access_key(&sk.0);
    }
    if let Some(t) = &c.session_token {
        b = b.with_token(&t.0);
    }
    match &c.sse {
        None => {}
        Some(Sse::S3) => {
            let key: object_store::aws::AmazonS3ConfigKey = "aws_server_side_encryption"
                .parse()
                .map_err(|source| ConfigError::Build { kind: "S3", source })?;
            b = b.with_config(key, "AES256");
        }
        Some(Sse::Kms { key_id }) => b = b.with_sse_kms_encryption(key_id),
        Some(Sse::C { key_file }) => {
            let key = std::fs::read(key_file).map_err(|e| ConfigError::InvalidValue {
                kind: "S3",
                key: "sse_config.encryption_key".into(),
                reason: format!("cannot read {}: {e}", key_file.display()),
            })?;
            b = b.with_ssec_encryption(base64_encode(&key));
        }
    }
    b.build()
        .map_err(|source| ConfigError::Build { kind: "S3", source })
}

fn gcs(c: &GcsConfig) -> Result<object_store::gcp::GoogleCloudStorage, ConfigError> {
    install_ring_provider();
    let mut b = GoogleCloudStorageBuilder::from_env()
        .with_bucket_name(&c.bucket)
        .with_retry(retry(c.max_retries))
        .with_client_options(client_options("GCS", &c.http)?);
    if let Some(sa) = &c.service_account {
        b = b.with_service_account_key(&sa.0);
    }
    b.build().map_err(|source| ConfigError::Build {
        kind: "GCS",
        source,
    })
}

fn azure(c: &AzureConfig) -> Result<object_store::azure::MicrosoftAzure, ConfigError> {
    install_ring_provider();
    let endpoint = c.endpoint.trim_end_matches('/');
    let url = if endpoint.starts_with("http://") || endpoint.starts_with("https://") {
        endpoint.to_string()
    } else {
        format!("https://{}.{endpoint}", c.storage_account)
    };
    let mut b = MicrosoftAzureBuilder::from_env()
        .with_account(&c.storage_account)
        .with_container_name(&c.container)
        .with_endpoint(url.clone())
        .with_allow_http(url.starts_with("http://"))
        .with_retry(retry(c.max_retries))
        .with_client_options(client_options("AZURE", &c.http)?);
    if let Some(k) = &c.storage_account_key {
        b = b.with_access_key(&k.0);
    }
    if let Some(t) = &c.tenant_id {
        b = b.with_tenant_id(t);
    }
    if let Some(id) = &c.client_id {
        b = b.with_client_id(id);
    }
    if let Some(s) = &c.client_secret {
        b = b.with_client_secret(&s.0);
    }
    b.build().map_err(|source| ConfigError::Build {
        kind: "AZURE",
        source,
    })
}

/// Standard base64 with padding (the SSE-C key header encoding).
fn base64_encode(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(T[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(i.as_bytes()), o);
        }
    }

    #[test]
    fn aws_endpoints_are_recognised() {
        assert!(is_aws("s3.eu-west-1.amazonaws.com"));
        assert!(!is_aws("127.0.0.1:3900"));
    }
}
