//! The storage invariant: every finished local block is in the bucket
//! exactly once and whole (every index/chunk file with its local size,
//! meta.json present, external labels of the replica that owns it), and
//! no block in the bucket is partial or unknown.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use crate::s3::S3;

/// A finished block in a Prometheus data dir.
#[derive(Clone, Debug)]
pub struct LocalBlock {
    pub ulid: String,
    /// (path relative to the block, size) of index and chunk files
    pub files: Vec<(String, u64)>,
}

/// A replica's finished blocks with its external labels.
#[derive(Clone, Debug)]
pub struct Replica {
    pub cluster: String,
    pub replica: String,
    pub blocks: Vec<LocalBlock>,
}

fn is_ulid(s: &str) -> bool {
    s.len() == 26 && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Blocks (directories named by a ULID holding meta.json) under `dir`.
pub fn local_blocks(dir: &Path) -> Vec<LocalBlock> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let p = e.path();
        if !is_ulid(&name) || !p.join("meta.json").is_file() {
            continue;
        }
        let mut files = Vec::new();
        if let Ok(m) = std::fs::metadata(p.join("index")) {
            files.push(("index".to_string(), m.len()));
        }
        if let Ok(rd) = std::fs::read_dir(p.join("chunks")) {
            for c in rd.flatten() {
                if let Ok(m) = c.metadata() {
                    files.push((
                        format!("chunks/{}", c.file_name().to_string_lossy()),
                        m.len(),
                    ));
                }
            }
        }
        files.sort();
        out.push(LocalBlock { ulid: name, files });
    }
    out.sort_by(|a, b| a.ulid.cmp(&b.ulid));
    out
}

/// Summary of an audit.
#[derive(Clone, Debug, Default)]
pub struct Audit {
    pub problems: Vec<String>,
    pub local_blocks: usize,
    pub bucket_blocks: usize,
}

/// Compares the bucket with the replicas' blocks.
pub async fn audit(s3: &S3, client: &reqwest::Client, replicas: &[Replica]) -> Audit {
    let mut a = Audit::default();
    let objects = match s3.list(client).await {
        Ok(o) => o,
        Err(e) => {
            a.problems.push(format!("cannot list the bucket: {e}"));
            return a;
        }
    };
    let mut bucket: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for (key, size) in objects {
        let Some((block, rest)) = key.split_once('/') else {
            continue;
        };
        if is_ulid(block) {
            bucket
                .entry(block.to_string())
                .or_default()
                .insert(rest.to_string(), size);
        }
    }
    a.bucket_blocks = bucket.len();
    let mut known = BTreeSet::new();
    let mut seen_ranges: BTreeMap<(String, String, i64, i64), String> = BTreeMap::new();
    for r in replicas {
        for b in &r.blocks {
            a.local_blocks += 1;
            known.insert(b.ulid.clone());
            let Some(files) = bucket.get(&b.ulid) else {
                a.problems.push(format!(
                    "block {} of {}/{} is not in the bucket",
                    b.ulid, r.cluster, r.replica
                ));
                continue;
            };
            for (f, size) in &b.files {
                match files.get(f) {
                    Some(s) if s == size => {}
                    Some(s) => a.problems.push(format!(
                        "{}/{f}: {s} bytes in the bucket, {size} locally",
                        b.ulid
                    )),
                    None => a
                        .problems
                        .push(format!("{}/{f} missing in the bucket", b.ulid)),
                }
            }
            if !files.contains_key("meta.json") {
                continue;
            }
            match meta(s3, client, &b.ulid).await {
                Ok((labels, min, max)) => {
                    let want = [
                        ("cluster".to_string(), r.cluster.clone()),
                        ("replica".to_string(), r.replica.clone()),
                    ];
                    if want.iter().any(|(k, v)| labels.get(k) != Some(v)) {
                        a.problems.push(format!(
                            "{}/meta.json labels {labels:?}, want cluster={} replica={}",
                            b.ulid, r.cluster, r.replica
                        ));
                    }
                    let key = (r.cluster.clone(), r.replica.clone(), min, max);
                    if let Some(other) = seen_ranges.insert(key, b.ulid.clone()) {
                        a.problems.push(format!(
                            "blocks {other} and {} of {}/{} cover the same range (duplicate upload)",
                            b.ulid, r.cluster, r.replica
                        ));
                    }
                }
                Err(e) => a.problems.push(format!("{}/meta.json: {e}", b.ulid)),
            }
        }
    }
    for (ulid, files) in &bucket {
        if !files.contains_key("meta.json") {
            a.problems
                .push(format!("partial block {ulid} in the bucket (no meta.json)"));
        }
        if !known.contains(ulid) {
            a.problems
                .push(format!("block {ulid} in the bucket belongs to no replica"));
        }
    }
    a
}

/// External labels and time range from a bucket meta.json.
async fn meta(
    s3: &S3,
    client: &reqwest::Client,
    ulid: &str,
) -> Result<(BTreeMap<String, String>, i64, i64), String> {
    let body = s3.object(client, &format!("{ulid}/meta.json")).await?;
    let v: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    let labels = v
        .pointer("/thanos/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let min = v.get("minTime").and_then(Value::as_i64).unwrap_or(0);
    let max = v.get("maxTime").and_then(Value::as_i64).unwrap_or(0);
    Ok((labels, min, max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_only_finished_ulid_blocks() {
        let d = tempfile::tempdir().unwrap();
        let b = d.path().join("01ARZ3NDEKTSV4RRFFQ69G5FAV");
        std::fs::create_dir_all(b.join("chunks")).unwrap();
        std::fs::write(b.join("meta.json"), "{}").unwrap();
        std::fs::write(b.join("index"), "12345").unwrap();
        std::fs::write(b.join("chunks/000001"), "123").unwrap();
        let partial = d.path().join("01ARZ3NDEKTSV4RRFFQ69G5FAW");
        std::fs::create_dir_all(&partial).unwrap();
        std::fs::create_dir_all(d.path().join("wal")).unwrap();
        let blocks = local_blocks(d.path());
        assert_eq!(blocks.len(), 1);
        assert_eq!(
            blocks[0].files,
            vec![("chunks/000001".into(), 3), ("index".into(), 5)]
        );
    }
}
