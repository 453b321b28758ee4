//! [`Bucket`]: an object store with retries, metrics and path handling, the one handle the
//! shipper, the store and the tools use.

use crate::build::build_store;
use crate::config::{ObjstoreConfig, Provider};
use crate::error::{BucketError, ConfigError};
use crate::metrics::ObjstoreMetrics;
use crate::retry::{RetryPolicy, is_transient};
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use std::fmt;
use std::future::Future;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use tokio::io::AsyncReadExt;

/// Files larger than this are uploaded in parts of this size.
pub const DEFAULT_PART_SIZE: u64 = 32 << 20;

/// One object in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Full path inside the bucket (below its prefix).
    pub path: String,
    pub size: u64,
}

/// An object store plus retries and metrics. Cheap to clone.
#[derive(Clone)]
pub struct Bucket {
    store: Arc<dyn ObjectStore>,
    metrics: ObjstoreMetrics,
    retry: RetryPolicy,
    part_size: u64,
    name: String,
}

impl fmt::Debug for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bucket").field("name", &self.name).finish()
    }
}

impl fmt::Display for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

fn parse_path(path: &str) -> Result<ObjPath, BucketError> {
    ObjPath::parse(path).map_err(|e| BucketError::InvalidPath {
        path: path.to_string(),
        reason: e.to_string(),
    })
}

fn local_err(path: &Path) -> impl Fn(std::io::Error) -> BucketError + '_ {
    move |source| BucketError::Local {
        path: path.display().to_string(),
        source,
    }
}

impl Bucket {
    /// Wraps `store`; `name` is shown in logs.
    pub fn new(
        store: Arc<dyn ObjectStore>,
        name: impl Into<String>,
        metrics: ObjstoreMetrics,
    ) -> Self {
        Self {
            store,
            metrics,
            retry: RetryPolicy::default(),
            part_size: DEFAULT_PART_SIZE,
            name: name.into(),
        }
    }

    /// Builds the store of `cfg` and wraps it.
    pub fn from_config(
        cfg: &ObjstoreConfig,
        metrics: ObjstoreMetrics,
    ) -> Result<Self, ConfigError> {
        let store = build_store(cfg)?;
        let mut name = match &cfg.provider {
            Provider::Filesystem(c) => format!("FILESYSTEM:{}", c.directory.display()),
            Provider::S3(c) => format!("S3:{}", c.bucket),
            Provider::Gcs(c) => format!("GCS:{}", c.bucket),
            Provider::Azure(c) => format!("AZURE:{}/{}", c.storage_account, c.container),
        };
        if let Some(p) = &cfg.prefix {
            name = format!("{name}/{p}");
        }
        let mut b = Self::new(store, name, metrics);
        if let Provider::S3(c) = &cfg.provider {
            if c.disable_multipart {
                b.part_size = u64::MAX;
            } else if let Some(ps) = c.part_size.filter(|&p| p > 0) {
                // S3 parts are at least 5 MiB.
                b.part_size = ps.max(5 << 20);
            }
        }
        Ok(b)
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Size above which files are uploaded in parts (and the part size).
    pub fn with_part_size(mut self, bytes: u64) -> Self {
        self.part_size = bytes.max(1);
        self
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    pub fn metrics(&self) -> &ObjstoreMetrics {
        &self.metrics
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `f` with retries on transient errors, counting attempts, failures and time.
    async fn run<T, F, Fut>(&self, op: &'static str, path: &str, mut f: F) -> Result<T, BucketError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, object_store::Error>>,
    {
        let labels = ObjstoreMetrics::labels(op);
        let mut attempt: u32 = 0;
        loop {
            self.metrics.operations.get_or_create(&labels).inc();
            let start = Instant::now();
            match f().await {
                Ok(v) => {
                    self.metrics
                        .duration
                        .get_or_create(&labels)
                        .observe(start.elapsed().as_secs_f64());
                    return Ok(v);
                }
                // A missing object is an answer, not a failure.
                Err(object_store::Error::NotFound { .. }) => {
                    return Err(BucketError::NotFound(path.to_string()));
                }
                Err(e) => {
                    self.metrics.failures.get_or_create(&labels).inc();
                    attempt += 1;
                    if !is_transient(&e) || attempt >= self.retry.attempts.max(1) {
                        return Err(BucketError::Store {
                            op,
                            path: path.to_string(),
                            source: e,
                        });
                    }
                    let pause = self.retry.backoff(attempt - 1);
                    tracing::warn!(bucket = %self.name, op, path, attempt, error = %e, ?pause, "object storage operation failed; retrying");
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }

    fn count_bytes(&self, op: &str, n: u64) {
        self.metrics
            .bytes
            .get_or_create(&ObjstoreMetrics::labels(op))
            .inc_by(n);
    }

    /// The whole object.
    pub async fn get(&self, path: &str) -> Result<Bytes, BucketError> {
        let p = parse_path(path)?;
        let store = &self.store;
        let b = self
            .run("get", path, || async { store.get(&p).await?.bytes().await })
            .await?;
        self.count_bytes("get", b.len() as u64);
        Ok(b)
    }

    /// The whole object, or `None` when it does not exist.
    pub async fn get_opt(&self, path: &str) -> Result<Option<Bytes>, BucketError> {
        match self.get(path).await {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Bytes `range` of an object. A range past the end is an error.
    pub async fn get_range(&self, path: &str, range: Range<u64>) -> Result<Bytes, BucketError> {
        let p = parse_path(path)?;
        let store = &self.store;
        let r = range.clone();
        let b = self
            .run("get_range", path, || store.get_range(&p, r.clone()))
            .await?;
        if b.len() as u64 != range.end.saturating_sub(range.start) {
            self.metrics
                .failures
                .get_or_create(&ObjstoreMetrics::labels("get_range"))
                .inc();
            return Err(BucketError::Store {
                op: "get_range",
                path: path.to_string(),
                source: object_store::Error::Generic {
                    store: "bucket",
                    source: format!(
                        "short read: asked {}..{}, got {} bytes",
                        range.start,
                        range.end,
                        b.len()
                    )
                    .into(),
                },
            });
        }
        self.count_bytes("get_range", b.len() as u64);
        Ok(b)
    }

    /// Several ranges of one object; close ranges are fetched together.
    pub async fn get_ranges(
        &self,
        path: &str,
        ranges: &[Range<u64>],
    ) -> Result<Vec<Bytes>, BucketError> {
        let p = parse_path(path)?;
        let store = &self.store;
        let v = self
            .run("get_range", path, || store.get_ranges(&p, ranges))
            .await?;
        self.count_bytes("get_range", v.iter().map(|b| b.len() as u64).sum());
        Ok(v)
    }

    /// The object's size.
    pub async fn size(&self, path: &str) -> Result<u64, BucketError> {
        let p = parse_path(path)?;
        let store = &self.store;
        Ok(self.run("head", path, || store.head(&p)).await?.size)
    }

    /// Whether the object exists.
    pub async fn exists(&self, path: &str) -> Result<bool, BucketError> {
        match self.size(path).await {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Writes a whole object (atomically: readers see the old or the new content).
    pub async fn put(&self, path: &str, data: Bytes) -> Result<(), BucketError> {
        let p = parse_path(path)?;
        let store = &self.store;
        let n = data.len() as u64;
        self.run("put", path, || {
            store.put(&p, PutPayload::from(data.clone()))
        })
        .await?;
        self.count_bytes("put", n);
        Ok(())
    }

    /// Uploads a local file; large files go up in parts. Returns the size.
    pub async fn upload_file(&self, local: &Path, path: &str) -> Result<u64, BucketError> {
        let p = parse_path(path)?;
        let size = tokio::fs::metadata(local)
            .await
            .map_err(local_err(local))?
            .len();
        if size <= self.part_size {
            let data = Bytes::from(tokio::fs::read(local).await.map_err(local_err(local))?);
            let store = &self.store;
            self.run("upload", path, || {
                store.put(&p, PutPayload::from(data.clone()))
            })
            .await?;
        } else {
            let part = usize::try_from(self.part_size).unwrap_or(usize::MAX);
            self.run("upload", path, || self.multipart(local, &p, part))
                .await?;
        }
        self.count_bytes("upload", size);
        Ok(size)
    }

    async fn multipart(
        &self,
        local: &Path,
        p: &ObjPath,
        part: usize,
    ) -> Result<(), object_store::Error> {
        let io = |e: std::io::Error| object_store::Error::Generic {
            store: "local file",
            source: Box::new(e),
        };
        let mut file = tokio::fs::File::open(local).await.map_err(io)?;
        let upload = self.store.put_multipart(p).await?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, part);
        let mut buf = vec![0u8; part.min(8 << 20)];
        loop {
            w.wait_for_capacity(4).await?;
            let n = match file.read(&mut buf).await {
                Ok(n) => n,
                Err(e) => {
                    let _ = w.abort().await;
                    return Err(io(e));
                }
            };
            if n == 0 {
                break;
            }
            w.write(buf.get(..n).unwrap_or_default());
        }
        w.finish().await.map(|_| ())
    }

    /// Deletes an object; a missing object is not an error.
    pub async fn delete(&self, path: &str) -> Result<(), BucketError> {
        let p = parse_path(path)?;
        let store = &self.store;
        match self.run("delete", path, || store.delete(&p)).await {
            Err(e) if e.is_not_found() => Ok(()),
            r => r,
        }
    }

    /// Names of the "directories" directly below `prefix` (the bucket root when `None`).
    pub async fn list_dirs(&self, prefix: Option<&str>) -> Result<Vec<String>, BucketError> {
        let p = prefix.map(parse_path).transpose()?;
        let store = &self.store;
        let label = prefix.unwrap_or("");
        let res = match self
            .run("list", label, || store.list_with_delimiter(p.as_ref()))
            .await
        {
            Ok(r) => r,
            Err(e) if e.is_not_found() => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out: Vec<String> = res
            .common_prefixes
            .iter()
            .filter_map(|d| d.filename().map(str::to_string))
            .collect();
        out.sort();
        Ok(out)
    }

    /// Every object below `prefix`, recursively, sorted by path.
    pub async fn list_objects(&self, prefix: &str) -> Result<Vec<ObjectInfo>, BucketError> {
        let p = parse_path(prefix)?;
        let store = &self.store;
        let res = self
            .run("list", prefix, || {
                store
                    .list(Some(&p))
                    .map_ok(|m| ObjectInfo {
                        path: m.location.to_string(),
                        size: m.size,
                    })
                    .try_collect::<Vec<_>>()
            })
            .await;
        let mut out = match res {
            Ok(v) => v,
            Err(e) if e.is_not_found() => Vec::new(),
            Err(e) => return Err(e),
        };
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }
}
