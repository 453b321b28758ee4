//! The live membership view: `/api/v1/members` on a node with gossip, and
//! `skein members`, which prints it.

use std::sync::Arc;

use actix_web::{HttpResponse, web};
use serde_json::{Value, json};
use skein_discovery::{Membership, Peer};

fn peer_json(p: &Peer) -> Value {
    let a = &p.announcement;
    json!({
        "nodeId": p.node_id,
        "generation": p.generation,
        "gossipAddress": p.gossip_addr.to_string(),
        "cluster": a.cluster,
        "roles": a.roles.iter().map(|r| r.as_str().to_string()).collect::<Vec<_>>(),
        "storeInternal": a.store_internal,
        "storeExternal": a.store_external,
        "tlsServerName": a.tls_server_name,
        "labelSets": a.external_labels,
        "minTime": a.min_time,
        "maxTime": a.max_time,
        "version": a.build_version,
    })
}

/// `GET /api/v1/members`: this node and its live, ready peers.
pub async fn handler(m: web::Data<Arc<Membership>>) -> HttpResponse {
    let peers: Vec<Value> = m.peers().iter().map(peer_json).collect();
    HttpResponse::Ok().json(json!({
        "status": "success",
        "data": {
            "self": {
                "nodeId": m.self_id().node_id.to_string(),
                "gossipAddress": m.gossip_addr().to_string(),
                "pool": m.pool_id(),
            },
            "peers": peers,
        }
    }))
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Renders the `/api/v1/members` answer as a table.
pub fn render(body: &Value) -> anyhow::Result<String> {
    let data = body
        .get("data")
        .ok_or_else(|| anyhow::anyhow!("answer has no `data`: {body}"))?;
    let me = &data["self"];
    let mut out = format!(
        "pool {}  self {} ({})\n",
        text(&me["pool"]),
        text(&me["nodeId"]),
        text(&me["gossipAddress"])
    );
    let rows: Vec<[String; 6]> = data["peers"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    let roles = p["roles"]
                        .as_array()
                        .map(|r| r.iter().map(text).collect::<Vec<_>>().join(","))
                        .unwrap_or_default();
                    let labels = p["labelSets"]
                        .as_array()
                        .map(|sets| {
                            sets.iter()
                                .map(|s| {
                                    s.as_object()
                                        .map(|o| {
                                            o.iter()
                                                .map(|(k, v)| format!("{k}={}", text(v)))
                                                .collect::<Vec<_>>()
                                                .join(",")
                                        })
                                        .unwrap_or_default()
                                })
                                .collect::<Vec<_>>()
                                .join(" ")
                        })
                        .unwrap_or_default();
                    [
                        text(&p["nodeId"]),
                        text(&p["cluster"]),
                        roles,
                        text(&p["storeInternal"]),
                        text(&p["storeExternal"]),
                        if labels.is_empty() {
                            "-".into()
                        } else {
                            labels
                        },
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    let header = ["NODE", "CLUSTER", "ROLES", "STOREAPI", "EXTERNAL", "LABELS"];
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    out.push_str(&line(&header.map(String::from)));
    out.push('\n');
    for r in &rows {
        out.push_str(&line(r));
        out.push('\n');
    }
    out.push_str(&format!("{} live peer(s)\n", rows.len()));
    Ok(out)
}

/// `skein members --url URL`.
pub fn run(url: &str) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let target = format!("{}/api/v1/members", url.trim_end_matches('/'));
    let body: Value = rt.block_on(async {
        let resp = reqwest::Client::new()
            .get(&target)
            .timeout(std::time::Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("cannot reach {target}: {e}"))?;
        let status = resp.status();
        let bytes = resp.bytes().await?;
        if status == reqwest::StatusCode::NOT_FOUND {
            anyhow::bail!(
                "{target}: 404; is gossip enabled on that node (--gossip.listen-address)?"
            );
        }
        if !status.is_success() {
            anyhow::bail!("{target}: HTTP {status}");
        }
        serde_json::from_slice::<Value>(&bytes)
            .map_err(|e| anyhow::anyhow!("{target}: not JSON: {e}"))
    })?;
    print!("{}", render(&body)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_table() {
        let body = json!({"status":"success","data":{
            "self":{"nodeId":"q1","gossipAddress":"127.0.0.4:7946","pool":"skein/eu1"},
            "peers":[{"nodeId":"sc1","cluster":"eu1","roles":["sidecar"],"storeInternal":"127.0.0.2:10901",
                      "storeExternal":null,"labelSets":[{"cluster":"eu1","replica":"0"}]}]}});
        let t = render(&body).unwrap();
        assert!(t.contains("pool skein/eu1  self q1"), "{t}");
        assert!(
            t.contains("sc1") && t.contains("cluster=eu1,replica=0"),
            "{t}"
        );
        assert!(t.contains("1 live peer(s)"), "{t}");
        assert!(render(&json!({"oops":1})).is_err());
    }
}
