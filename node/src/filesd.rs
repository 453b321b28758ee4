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

fn valid(addr: &str) -> bool {
    addr.rsplit_once(':').is_some_and(|(h, p)| {
        !h.is_empty() && !h.contains(char::is_whitespace) && p.parse::<u16>().is_ok()
    })
}

/// Parses the endpoints of one file; an error names the offending entry.
pub fn parse(text: &str) -> Result<Vec<String>, String> {
    let trimmed = text.trim_start();
    let addrs: Vec<String> = if trimmed.starts_with('[') || trimmed.starts_with('-') {
        let groups: Vec<Group> = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
        groups.into_iter().flat_map(|g| g.targets).collect()
    } else {
        text.lines()
            .map(|l| l.split('#').next().unwrap_or("").trim())
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    };
    if let Some(bad) = addrs.iter().find(|a| !valid(a)) {
        return Err(format!("{bad:?} is not a host:port address"));
    }
    Ok(addrs)
}

fn load(path: &Path) -> Result<Vec<Candidate>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    Ok(parse(&text)?
        .into_iter()
        .map(|a| Candidate {
            address: a,
            server_name: None,
            node_id: format!("file:{}", path.display()),
        })
        .collect())
}

/// Feeds the endpoints of `files` to the store set, re-reading a file when
/// its modification time or size changes.
pub fn watch(files: Vec<PathBuf>, query: QueryHandle, every: Duration) {
    tokio::spawn(async move {
        let mut seen: Vec<Option<(SystemTime, u64)>> = vec![None; files.len()];
        let mut current: Vec<Vec<Candidate>> = vec![Vec::new(); files.len()];
        let mut tick = tokio::time::interval(every);
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
                match load(f) {
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
            parse("# stores\n10.0.0.1:10901\n\n store-1.eu1:443 # ingress\n").unwrap(),
            vec!["10.0.0.1:10901", "store-1.eu1:443"]
        );
        assert_eq!(
            parse("- targets: ['a:1', 'b:2']\n- targets: [c:3]\n").unwrap(),
            vec!["a:1", "b:2", "c:3"]
        );
        assert_eq!(parse(r#"[{"targets": ["a:1"]}]"#).unwrap(), vec!["a:1"]);
        let e = parse("a:1\nnot an address\n").unwrap_err();
        assert!(e.contains("not an address"), "{e}");
        assert!(parse("- nope: 1\n").is_err());
    }
}
