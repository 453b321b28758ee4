//! Buckets for the storage tests (a local FILESYSTEM directory or a Garage S3
//! bucket, both described by a Thanos objstore.yml) and `skein tools bucket`
//! run against them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::garage::GarageServer;
use crate::process::run_with_timeout;
use crate::skein::skein_bin;

/// How long one `skein tools bucket` command may take.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(60);

/// A bucket and its objstore.yml.
#[derive(Debug)]
pub struct TestBucket {
    /// `FILESYSTEM` or `S3 (Garage)`, for messages.
    pub kind: &'static str,
    /// The objstore.yml every node and tool is given.
    pub config_file: PathBuf,
    /// The bucket's root directory (FILESYSTEM buckets only).
    pub fs_root: Option<PathBuf>,
    scratch: PathBuf,
    // Kept alive while the bucket is used.
    _garage: Option<GarageServer>,
}

/// One line of `skein tools bucket ls`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedBlock {
    pub id: String,
    /// `complete`, `partial`, `marked-for-deletion` or `bad-meta`.
    pub state: String,
    pub line: String,
}

/// What `skein tools bucket verify` said.
#[derive(Debug, Clone)]
pub struct VerifyOutcome {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl TestBucket {
    /// A FILESYSTEM bucket rooted at `work_dir/<name>`.
    pub fn filesystem(work_dir: &Path, name: &str) -> anyhow::Result<Self> {
        let root = work_dir.join(name);
        std::fs::create_dir_all(&root)?;
        let config_file = work_dir.join(format!("{name}-objstore.yml"));
        std::fs::write(
            &config_file,
            format!(
                "type: FILESYSTEM\nconfig:\n  directory: \"{}\"\n",
                root.display()
            ),
        )?;
        Ok(Self {
            kind: "FILESYSTEM",
            config_file,
            fs_root: Some(root),
            scratch: work_dir.to_path_buf(),
            _garage: None,
        })
    }

    /// A bucket on a fresh Garage node, or `Ok(None)` when Garage is not
    /// installed outside CI (see [`GarageServer::start`]).
    pub fn garage(work_dir: &Path) -> anyhow::Result<Option<Self>> {
        let Some(g) = GarageServer::start(work_dir)? else {
            return Ok(None);
        };
        let config_file = work_dir.join("garage-objstore.yml");
        std::fs::write(&config_file, g.objstore_yaml())?;
        Ok(Some(Self {
            kind: "S3 (Garage)",
            config_file,
            fs_root: None,
            scratch: work_dir.to_path_buf(),
            _garage: Some(g),
        }))
    }

    /// Run `skein tools bucket --objstore.config-file <cfg> <args>`; returns
    /// (success, stdout, stderr).
    fn tool(&self, args: &[&str]) -> anyhow::Result<(bool, String, String)> {
        let mut cmd = Command::new(skein_bin()?);
        cmd.args(["tools", "bucket", "--objstore.config-file"])
            .arg(&self.config_file)
            .args(args)
            .env("NO_COLOR", "1");
        let out = run_with_timeout(cmd, TOOL_TIMEOUT, &self.scratch)
            .with_context(|| format!("skein tools bucket {args:?}"))?;
        Ok((
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }

    /// `skein tools bucket ls`, parsed.
    pub fn ls(&self) -> anyhow::Result<Vec<ListedBlock>> {
        let (ok, out, err) = self.tool(&["ls"])?;
        if !ok {
            bail!("skein tools bucket ls failed:\n{out}\n{err}");
        }
        Ok(parse_ls(&out))
    }

    /// `skein tools bucket verify [ids]`.
    pub fn verify(&self, ids: &[&str]) -> anyhow::Result<VerifyOutcome> {
        let mut args = vec!["verify"];
        args.extend_from_slice(ids);
        let (ok, stdout, stderr) = self.tool(&args)?;
        Ok(VerifyOutcome { ok, stdout, stderr })
    }

    /// Every block of the bucket as (ULID, complete = has meta.json): read from
    /// the directory for FILESYSTEM buckets, from `skein tools bucket ls`
    /// otherwise.
    pub fn block_states(&self) -> anyhow::Result<Vec<(String, bool)>> {
        if self.fs_root.is_some() {
            return self.fs_block_dirs();
        }
        Ok(self
            .ls()?
            .into_iter()
            .map(|b| (b.id, b.state != "partial"))
            .collect())
    }

    /// The block dirs directly under the FILESYSTEM root: (ULID, has meta.json).
    /// Fails for other bucket kinds.
    pub fn fs_block_dirs(&self) -> anyhow::Result<Vec<(String, bool)>> {
        let Some(root) = &self.fs_root else {
            bail!("{} bucket has no local directory", self.kind);
        };
        let mut out = Vec::new();
        for e in std::fs::read_dir(root)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if is_ulid(&name) && e.file_type()?.is_dir() {
                let complete = e.path().join("meta.json").is_file();
                out.push((name, complete));
            }
        }
        out.sort();
        Ok(out)
    }
}

/// Whether `s` looks like a ULID (26 Crockford base32 characters).
pub fn is_ulid(s: &str) -> bool {
    s.len() == 26
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b.is_ascii_uppercase() && !b"ILOU".contains(&b)))
}

/// Parse `skein tools bucket ls` output: one block per line starting with its
/// ULID; the state is `partial`/`bad-meta` right after the id, a bracketed
/// `[marked-for-deletion]` at the end, else `complete`.
pub fn parse_ls(out: &str) -> Vec<ListedBlock> {
    out.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let id = words.next().filter(|w| is_ulid(w))?;
            let second = words.next().unwrap_or_default();
            let state = if second == "partial" || second == "bad-meta" {
                second.to_string()
            } else if line.trim_end().ends_with(']') {
                line.rsplit('[')
                    .next()
                    .unwrap_or_default()
                    .trim_end_matches(']')
                    .to_string()
            } else {
                "complete".to_string()
            };
            Some(ListedBlock {
                id: id.to_string(),
                state,
                line: line.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ls_lines() {
        let out = "01M8AKSX9HNR34G68KSG9YZEH9  2026-11-25T10:00:00Z  2026-11-25T12:00:00Z  2.00h  series=1 samples=2 chunks=1  level=1 resolution=0 source=sidecar  {cluster=\"eu1\"}\n\
                   01M8AKSXEH9S9WZWH97XRXCQ58  partial\n\
                   01M8AKSXHKME5KTDH3YY7AQFYE  2026-11-25T10:00:00Z  2026-11-25T12:00:00Z  2.00h  series=1 samples=2 chunks=1  level=1 resolution=0 source=-  {}  [marked-for-deletion]\n\
                   3 block(s)\n";
        let got = parse_ls(out);
        let states: Vec<&str> = got.iter().map(|b| b.state.as_str()).collect();
        assert_eq!(states, ["complete", "partial", "marked-for-deletion"]);
        assert_eq!(got[1].id, "01M8AKSXEH9S9WZWH97XRXCQ58");
        assert!(!is_ulid("3"));
        assert!(!is_ulid("01M8AKSXHKME5KTDH3YY7AQFYI"));
    }
}
