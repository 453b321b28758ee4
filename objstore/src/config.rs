//! The Thanos objstore.yml format: `type:`, `config:` (provider keys with Thanos's names) and an
//! optional `prefix:`.

use crate::error::ConfigError;
use crate::fields::Fields;
use serde_json::Value;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A secret string that never shows up in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A parsed objstore configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjstoreConfig {
    pub provider: Provider,
    /// Path prefix inside the bucket under which every object lives.
    pub prefix: Option<String>,
}

/// One storage provider and its settings.
#[derive(Debug, Clone, PartialEq)]
pub enum Provider {
    Filesystem(FilesystemConfig),
    S3(S3Config),
    Gcs(GcsConfig),
    Azure(AzureConfig),
}

impl Provider {
    /// The `type:` name.
    pub fn kind(&self) -> &'static str {
        match self {
            Provider::Filesystem(_) => "FILESYSTEM",
            Provider::S3(_) => "S3",
            Provider::Gcs(_) => "GCS",
            Provider::Azure(_) => "AZURE",
        }
    }
}

/// `type: FILESYSTEM`: a local directory (testing, demos, the embedded default).
#[derive(Debug, Clone, PartialEq)]
pub struct FilesystemConfig {
    pub directory: PathBuf,
}

/// How S3 requests address the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BucketLookup {
    /// Virtual-hosted for AWS endpoints, path style elsewhere.
    #[default]
    Auto,
    VirtualHosted,
    Path,
}

/// Server-side encryption (`sse_config`).
#[derive(Debug, Clone, PartialEq)]
pub enum Sse {
    /// `type: SSE-S3`.
    S3,
    /// `type: SSE-KMS`, with the key id.
    Kms { key_id: String },
    /// `type: SSE-C`, with the path of a file holding the 32-byte key.
    C { key_file: PathBuf },
}

/// The subset of Thanos `http_config` that maps onto the HTTP client.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HttpOptions {
    pub idle_conn_timeout: Option<Duration>,
    pub response_header_timeout: Option<Duration>,
    pub insecure_skip_verify: bool,
    pub max_idle_conns_per_host: Option<usize>,
    /// PEM file of extra CA certificates (`tls_config.ca_file`).
    pub ca_file: Option<PathBuf>,
}

/// `type: S3`.
#[derive(Debug, Clone, PartialEq)]
pub struct S3Config {
    pub bucket: String,
    /// Host (and port) without scheme, as in Thanos (`s3.amazonaws.com`, `127.0.0.1:3900`).
    pub endpoint: String,
    pub region: Option<String>,
    pub access_key: Option<String>,
    pub secret_key: Option<Secret>,
    pub session_token: Option<Secret>,
    /// Plain HTTP instead of HTTPS.
    pub insecure: bool,
    pub bucket_lookup: BucketLookup,
    pub max_retries: Option<usize>,
    pub part_size: Option<u64>,
    pub disable_multipart: bool,
    pub sse: Option<Sse>,
    pub http: HttpOptions,
}

/// `type: GCS`.
#[derive(Debug, Clone, PartialEq)]
pub struct GcsConfig {
    pub bucket: String,
    /// Inline service-account JSON; when absent, `GOOGLE_APPLICATION_CREDENTIALS` and the
    /// metadata server are used.
    pub service_account: Option<Secret>,
    pub max_retries: Option<usize>,
    pub http: HttpOptions,
}

/// `type: AZURE`.
#[derive(Debug, Clone, PartialEq)]
pub struct AzureConfig {
    pub storage_account: String,
    pub storage_account_key: Option<Secret>,
    pub container: String,
    /// Endpoint suffix, `blob.core.windows.net` by default.
    pub endpoint: String,
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub max_retries: Option<usize>,
    pub http: HttpOptions,
}

/// Thanos S3 keys Skein accepts without acting on them.
const S3_IGNORED: &[&str] = &[
    "signature_version2",
    "aws_sdk_auth",
    "disable_dualstack",
    "put_user_metadata",
    "list_objects_version",
    "send_content_md5",
    "sts_endpoint",
    "trace",
];
const GCS_IGNORED: &[&str] = &["use_grpc", "grpc_conn_pool_size", "chunk_size_bytes"];
const AZURE_IGNORED: &[&str] = &[
    "storage_create_container",
    "user_assigned_id",
    "msi_resource",
    "reader_config",
    "pipeline_config",
];
const HTTP_IGNORED: &[&str] = &[
    "tls_handshake_timeout",
    "expect_continue_timeout",
    "max_idle_conns",
    "max_conns_per_host",
    "disable_compression",
];

impl ObjstoreConfig {
    /// A local directory bucket.
    pub fn filesystem(directory: impl Into<PathBuf>) -> Self {
        Self {
            provider: Provider::Filesystem(FilesystemConfig {
                directory: directory.into(),
            }),
            prefix: None,
        }
    }

    /// Reads and parses an objstore.yml file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_yaml(&text)
    }

    /// Parses objstore YAML. Only the first YAML document is used, as in Thanos.
    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        let first = first_document(text);
        let top: Value =
            serde_saphyr::from_str(first).map_err(|e| ConfigError::Yaml(e.to_string()))?;
        let mut top = match top {
            Value::Object(m) => m,
            Value::Null => return Err(ConfigError::MissingType),
            _ => return Err(ConfigError::Yaml("top level must be a mapping".into())),
        };
        let kind = match top.remove("type") {
            Some(Value::String(s)) if !s.is_empty() => s,
            None | Some(Value::Null) => return Err(ConfigError::MissingType),
            Some(other) => return Err(ConfigError::UnsupportedType(other.to_string())),
        };
        let config = top.remove("config");
        let prefix = match top.remove("prefix") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => {
                let p = s.trim_matches('/').to_string();
                (!p.is_empty()).then_some(p)
            }
            Some(_) => {
                return Err(ConfigError::InvalidValue {
                    kind: "objstore",
                    key: "prefix".into(),
                    reason: "expected a string".into(),
                });
            }
        };
        if let Some(key) = top.keys().next() {
            return Err(ConfigError::UnknownKey {
                kind: "objstore",
                key: key.clone(),
            });
        }
        let provider = match kind.as_str() {
            "FILESYSTEM" => {
                Provider::Filesystem(parse_filesystem(Fields::new("FILESYSTEM", config)?)?)
            }
            "S3" => Provider::S3(parse_s3(Fields::new("S3", config)?)?),
            "GCS" => Provider::Gcs(parse_gcs(Fields::new("GCS", config)?)?),
            "AZURE" => Provider::Azure(parse_azure(Fields::new("AZURE", config)?)?),
            _ => return Err(ConfigError::UnsupportedType(kind)),
        };
        Ok(Self { provider, prefix })
    }
}

/// The text before the first `---` document separator after the first document's content.
fn first_document(text: &str) -> &str {
    let mut seen_content = false;
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim_end();
        if t == "---" || t.starts_with("--- ") {
            if seen_content {
                return &text[..pos];
            }
        } else if !t.trim().is_empty() && !t.trim_start().starts_with('#') {
            seen_content = true;
        }
        pos += line.len();
    }
    text
}

fn parse_filesystem(mut f: Fields) -> Result<FilesystemConfig, ConfigError> {
    let directory = PathBuf::from(f.req_str("directory")?);
    f.finish(&[])?;
    Ok(FilesystemConfig { directory })
}

fn parse_http(f: Option<Fields>) -> Result<HttpOptions, ConfigError> {
    let Some(mut f) = f else {
        return Ok(HttpOptions::default());
    };
    let mut h = HttpOptions {
        idle_conn_timeout: f.opt_duration("idle_conn_timeout")?,
        response_header_timeout: f.opt_duration("response_header_timeout")?,
        insecure_skip_verify: f.opt_bool("insecure_skip_verify")?.unwrap_or(false),
        max_idle_conns_per_host: f
            .opt_u64("max_idle_conns_per_host")?
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        ca_file: None,
    };
    if let Some(mut tls) = f.opt_map("tls_config")? {
        h.ca_file = tls.opt_str("ca_file")?.map(PathBuf::from);
        if tls.opt_bool("insecure_skip_verify")? == Some(true) {
            h.insecure_skip_verify = true;
        }
        tls.finish(&["cert_file", "key_file", "server_name"])?;
    }
    f.finish(HTTP_IGNORED)?;
    Ok(h)
}

fn parse_retries(f: &mut Fields) -> Result<Option<usize>, ConfigError> {
    Ok(f.opt_u64("max_retries")?
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX)))
}

fn parse_s3(mut f: Fields) -> Result<S3Config, ConfigError> {
    let bucket = f.req_str("bucket")?;
    let endpoint = f.req_str("endpoint")?;
    let access_key = f.opt_str("access_key")?;
    let secret_key = f.opt_str("secret_key")?.map(Secret);
    match (&access_key, &secret_key) {
        (Some(_), None) => {
            return Err(ConfigError::MissingKey {
                kind: "S3",
                key: "secret_key".into(),
            });
        }
        (None, Some(_)) => {
            return Err(ConfigError::MissingKey {
                kind: "S3",
                key: "access_key".into(),
            });
        }
        _ => {}
    }
    let bucket_lookup = match f.opt_str("bucket_lookup_type")?.as_deref() {
        None | Some("auto") => BucketLookup::Auto,
        Some("virtual-hosted") => BucketLookup::VirtualHosted,
        Some("path") => BucketLookup::Path,
        Some(other) => {
            return Err(ConfigError::InvalidValue {
                kind: "S3",
                key: "bucket_lookup_type".into(),
                reason: format!("{other:?} is not one of auto, virtual-hosted, path"),
            });
        }
    };
    let sse = match f.opt_map("sse_config")? {
        None => None,
        Some(mut s) => {
            let t = s.opt_str("type")?;
            let key_id = s.opt_str("kms_key_id")?;
            let key_file = s.opt_str("encryption_key")?;
            s.finish(&["kms_encryption_context"])?;
            match t.as_deref() {
                None => None,
                Some("SSE-S3") => Some(Sse::S3),
                Some("SSE-KMS") => Some(Sse::Kms {
                    key_id: key_id.ok_or(ConfigError::MissingKey {
                        kind: "S3",
                        key: "sse_config.kms_key_id".into(),
                    })?,
                }),
                Some("SSE-C") => Some(Sse::C {
                    key_file: PathBuf::from(key_file.ok_or(ConfigError::MissingKey {
                        kind: "S3",
                        key: "sse_config.encryption_key".into(),
                    })?),
                }),
                Some(other) => {
                    return Err(ConfigError::InvalidValue {
                        kind: "S3",
                        key: "sse_config.type".into(),
                        reason: format!("{other:?} is not one of SSE-S3, SSE-KMS, SSE-C"),
                    });
                }
            }
        }
    };
    let cfg = S3Config {
        bucket,
        endpoint,
        region: f.opt_str("region")?,
        access_key,
        secret_key,
        session_token: f.opt_str("session_token")?.map(Secret),
        insecure: f.opt_bool("insecure")?.unwrap_or(false),
        bucket_lookup,
        max_retries: parse_retries(&mut f)?,
        part_size: f.opt_u64("part_size")?,
        disable_multipart: f.opt_bool("disable_multipart")?.unwrap_or(false),
        sse,
        http: parse_http(f.opt_map("http_config")?)?,
    };
    f.finish(S3_IGNORED)?;
    Ok(cfg)
}

fn parse_gcs(mut f: Fields) -> Result<GcsConfig, ConfigError> {
    let cfg = GcsConfig {
        bucket: f.req_str("bucket")?,
        service_account: f.opt_str("service_account")?.map(Secret),
        max_retries: parse_retries(&mut f)?,
        http: parse_http(f.opt_map("http_config")?)?,
    };
    f.finish(GCS_IGNORED)?;
    Ok(cfg)
}

/// Splits an Azure connection string (`AccountName=..;AccountKey=..;EndpointSuffix=..`).
fn connection_string(s: &str) -> Vec<(String, String)> {
    s.split(';')
        .filter_map(|part| part.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn parse_azure(mut f: Fields) -> Result<AzureConfig, ConfigError> {
    let conn = f
        .opt_str("storage_connection_string")?
        .map(|s| connection_string(&s))
        .unwrap_or_default();
    let from_conn = |k: &str| conn.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let storage_account = match f
        .opt_str("storage_account")?
        .or_else(|| from_conn("AccountName"))
    {
        Some(a) => a,
        None => {
            return Err(ConfigError::MissingKey {
                kind: "AZURE",
                key: "storage_account".into(),
            });
        }
    };
    let storage_account_key = f
        .opt_str("storage_account_key")?
        .or_else(|| from_conn("AccountKey"))
        .map(Secret);
    let cfg = AzureConfig {
        storage_account,
        storage_account_key,
        container: f.req_str("container")?,
        endpoint: f
            .opt_str("endpoint")?
            .or_else(|| from_conn("EndpointSuffix").map(|s| format!("blob.{s}")))
            .unwrap_or_else(|| "blob.core.windows.net".into()),
        tenant_id: f.opt_str("az_tenant_id")?,
        client_id: f.opt_str("client_id")?,
        client_secret: f.opt_str("client_secret")?.map(Secret),
        max_retries: parse_retries(&mut f)?,
        http: parse_http(f.opt_map("http_config")?)?,
    };
    f.finish(AZURE_IGNORED)?;
    Ok(cfg)
}
