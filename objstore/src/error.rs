//! Errors of the object-storage layer.

use thiserror::Error;

/// Why an objstore configuration could not be used.
#[derive(Error, Debug)]
pub enum ConfigError {
    #[error("cannot read objstore config {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("objstore config is not valid YAML: {0}")]
    Yaml(String),
    #[error("objstore config: missing top-level key `type`")]
    MissingType,
    #[error(
        "objstore config: unsupported `type: {0}` (supported: FILESYSTEM, S3, GCS, AZURE; names are upper case)"
    )]
    UnsupportedType(String),
    #[error("objstore config ({kind}): missing required key `{key}`")]
    MissingKey { kind: &'static str, key: String },
    #[error("objstore config ({kind}): unknown key `{key}`")]
    UnknownKey { kind: &'static str, key: String },
    #[error("objstore config ({kind}): key `{key}`: {reason}")]
    InvalidValue {
        kind: &'static str,
        key: String,
        reason: String,
    },
    #[error("objstore config ({kind}): cannot build the client: {source}")]
    Build {
        kind: &'static str,
        source: object_store::Error,
    },
}

/// Why a bucket operation failed.
#[derive(Error, Debug)]
pub enum BucketError {
    #[error("object {0} not found")]
    NotFound(String),
    #[error("object store {op} {path}: {source}")]
    Store {
        op: &'static str,
        path: String,
        source: object_store::Error,
    },
    #[error("local file {path}: {source}")]
    Local {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid block {block}: {reason}")]
    InvalidBlock { block: String, reason: String },
    #[error("invalid object path {path}: {reason}")]
    InvalidPath { path: String, reason: String },
}

impl BucketError {
    /// Whether the error says the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, BucketError::NotFound(_))
    }
}
