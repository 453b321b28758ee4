//! A watched file of StoreAPI endpoints, beside gossip and static stores.
//!
//! Formats: one `host:port` per line (`#` comments), or Thanos/Prometheus
//! file SD (YAML or JSON): a list of `{targets: [host:port, ...]}`. The
//! file is re-read when it changes; a file that does not parse keeps the
//! previous endpoints and logs why.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Deserialize;
use skein_actors::query::{Candidate, QueryHandle};

#[derive(Deserialize)]
struct Group {
    targets: Vec<String>,
}

/// The endpoints of one file: the `host:port` ones, and the entries
/// refused (with why) that are not (a scheme, a path, no port...).
#[derive(Debug, Default, PartialEq)]
pub struct Parsed {
    pub addrs: Vec<String>,
    pub refused: Vec<String>,
}

/// Parses the endpoints of one file. A file that is not readable as either
/// format is an error; an entry that is not `host:port` is refused alone
/// (the rest stay usable).
pub fn parse(text: &str) -> Result<Parsed, String> {
    let trimmed = text.trim_start();
    let entries: Vec<String> = if trimmed.starts_with('[') || trimmed.starts_with('-') {
        let groups: Vec<Group> = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
        groups.into_iter().flat_map(|g| g.targets).collect()
    } else {
        text.lines()
            .map(|l| l.split('#').next().unwrap_or("").trim())
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    };
    let mut out = Parsed::default();
    for e in entries {
        match skein_actors::query::client::check_store_address(&e) {
            Ok(()) => out.addrs.push(e),
            Err(why) => out.refused.push(why),
        }
    }
    Ok(out)
}

fn load(path: &Path, query: &QueryHandle) -> Result<Vec<Candidate>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let parsed = parse(&text)?;
    for why in &parsed.refused {
        tracing::error!(file = %path.display(), error = %why, "store endpoint refused; the file's other endpoints are used");
        query.metrics().store_address_rejected("file");
    }
    Ok(parsed
        .addrs
        .into_iter()
        .map(|a| Candidate {
            address: a,
            server_name: None,
            node_id: format!("file:{}", path.display()),
            // Listed by the operator: trusted as configured.
            promise: None,
        })
        .collect())
}

/// Feeds the endpoints of `files` to the store set, re-reading a file when
/// its modification time or size changes.
pub fn watch(files: Vec<PathBuf>, query: QueryHandle, every: Duration) {
    tokio::spawn(async move {
        let mut seen: Vec<Option<(SystemTime, u64)>> = vec![None; files.len()];
        let mut current: Vec<Vec<Candidate>> = vec![Vec::new(); files.len()];
        // tokio's interval panics on zero; a tiny one would spin.
        let mut tick = tokio::time::interval(skein_actors::interval::loop_interval(every));
        loop {
            tick.tick().await;
            let mut changed = false;
            for (i, f) in files.iter().enumerate() {
                let stamp = std::fs::metadata(f)
                    .ok()
                    .and_then(|m| Some((m.modified().ok()?, m.len())));
                if stamp == seen[i] {
                    continue;
                }
                seen[i] = stamp;
                match load(f, &query) {
                    Ok(c) => {
                        tracing::info!(file = %f.display(), stores = c.len(), "store endpoints file read");
                        current[i] = c;
                        changed = true;
                    }
                    Err(e) => tracing::error!(
                        file = %f.display(),
                        error = %e,
                        "store endpoints file not usable; keeping its previous endpoints"
                    ),
                }
            }
            if changed {
                query.set_source("file", current.iter().flatten().cloned().collect());
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_file_sd_formats() {
        assert_eq!(
            parse("# stores\n10.0.0.1:10901\n\n store-1.eu1:443 # ingress\n")
                .unwrap()
                .addrs,
            vec!["10.0.0.1:10901", "store-1.eu1:443"]
        );
        assert_eq!(
            parse("- targets: ['a:1', 'b:2']\n- targets: [c:3]\n")
                .unwrap()
                .addrs,
            vec!["a:1", "b:2", "c:3"]
        );
        assert_eq!(
            parse(r#"[{"targets": ["a:1"]}]"#).unwrap().addrs,
            vec!["a:1"]
        );
        assert!(parse("- nope: 1\n").is_err());
    }

    #[test]
    fn bad_entries_are_refused_alone() {
        let p = parse("a:1\nnot an address\nhttp://evil:80\nhost:2/path\n[::1]:3\n").unwrap();
        assert_eq!(p.addrs, vec!["a:1", "[::1]:3"]);
        assert_eq!(p.refused.len(), 3, "{:?}", p.refused);
        assert!(p.refused[1].contains("scheme"), "{:?}", p.refused);
        let p = parse("- targets: ['https://x:1', 'y:2']\n").unwrap();
        assert_eq!(p.addrs, vec!["y:2"]);
        assert_eq!(p.refused.len(), 1);
    }
}
