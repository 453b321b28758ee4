//! WAN gossip as a federation member receives it: `Deliver` calls (the `from` field, the
//! payload bounds, what is queued for chitchat), the caller's
//! certificate as `Deliver` reads it, catalog shards (unsigned, signed by anyone, and
//! signed validly around arbitrary entries) and announcement values.

use super::mode;
use prost::Message;
use skein_discovery::announcement::{KEY_LABELS, KEY_NODE, KEY_STORE};
use skein_discovery::seal::MAX_DATAGRAM;
use skein_discovery::wan::WanMetrics;
use skein_discovery::wan::catalog::{Publisher, Verify, VerifyCache, decode_peer, encode_signed};
use skein_discovery::wan::{CarrierSettings, CatalogEntry, GrpcCarrier, WanAddr};
use skein_discovery::{Announcement, Carrier, GossipMetrics};
use skein_proto::skein::gossip::v1::Datagram;
use skein_proto::skein::gossip::v1::wan_server::Wan;
use skein_tls::TlsMaterial;
use std::sync::OnceLock;

const FEDERATION: &str = "fuzz";

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime")
    })
}

/// A member's TLS material of a throwaway CA (node "q0" of cluster "eu1"), made once.
fn material() -> Option<&'static TlsMaterial> {
    static M: OnceLock<Option<(tempfile::TempDir, TlsMaterial)>> = OnceLock::new();
    M.get_or_init(|| {
        use skein_tls::devcerts::{DevCa, NodeCertSpec};
        skein_tls::install_crypto_provider();
        let dir = tempfile::tempdir().ok()?;
        let ca = DevCa::generate("fuzz").ok()?;
        let spec = NodeCertSpec::new("q0", &[]).with_identity(FEDERATION, "eu1");
        let (cert, key) = ca.issue_node_to(dir.path(), &spec).ok()?;
        let ca_path = dir.path().join("ca.crt");
        std::fs::write(&ca_path, &ca.cert_pem).ok()?;
        let m = TlsMaterial::load(&skein_tls::TlsFiles {
            cert,
            key,
            ca: ca_path,
        })
        .ok()?;
        Some((dir, m))
    })
    .as_ref()
    .map(|(_, m)| m)
}

/// Splits `b` at NUL bytes into at most `n` strings (lossy UTF-8, as JSON readers see text).
fn strings(b: &[u8], n: usize) -> Vec<String> {
    b.splitn(n, |&c| c == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

/// Mode (low 2 bits): 0 a `Deliver` call (protobuf `Datagram` as gRPC would decode it,
/// else the rest split into `from` and payload); 1 a caller certificate (DER); 2 catalog
/// shard values and announcement values; 3 catalog entries (JSON) signed validly by a
/// member of cluster eu1 and read back.
pub fn delivery(data: &[u8]) {
    let (m, rest) = mode(data);
    match m & 3 {
        0 => deliver(rest),
        1 => {
            if let Ok(facts) = skein_tls::identity::CertFacts::parse(rest) {
                let _ = facts.cluster_in(FEDERATION);
                let _ = facts.names_node(FEDERATION, "q0");
                let _ = facts.has_host("q0.eu1.example.com");
            }
        }
        2 => shards_and_announcement(rest),
        _ => signed_entries(rest),
    }
}

fn deliver(rest: &[u8]) {
    let dg = match Datagram::decode(rest) {
        Ok(d) => d,
        Err(_) => {
            let (n, tail) = mode(rest);
            let n = usize::from(n).min(tail.len());
            Datagram {
                from: String::from_utf8_lossy(&tail[..n]).into_owned(),
                payload: tail[n..].to_vec(),
            }
        }
    };
    let _ = WanAddr::parse(&dg.from);
    let Ok(me) = WanAddr::parse("127.0.0.1:9") else {
        return;
    };
    let (carrier, service) = GrpcCarrier::new(
        CarrierSettings::new(me),
        None,
        GossipMetrics::unregistered(),
        WanMetrics::unregistered(),
    );
    runtime().block_on(async {
        if service.deliver(tonic::Request::new(dg)).await.is_ok() {
            let (_, payload) = carrier
                .recv()
                .await
                .expect("an accepted datagram is queued");
            // Handed on to chitchat as it came (its envelope parser is private to it).
            assert!(!payload.is_empty() && payload.len() <= MAX_DATAGRAM);
        }
    });
}

fn shards_and_announcement(rest: &[u8]) {
    let values = strings(rest, 4);
    let keys: Vec<String> = (0..values.len())
        .map(|i| format!("skein:catalog/{i}"))
        .collect();
    let mut cache = VerifyCache::default();
    let d = decode_peer("q0", &keys, &values, Verify::Unchecked, &mut cache, 512);
    assert!(d.entries.len() <= 512);
    for e in &d.entries {
        assert!(
            e.validate().is_ok(),
            "decode_peer returned an invalid entry"
        );
    }
    if let Some(material) = material() {
        let verify = Verify::Signed {
            material,
            federation: FEDERATION,
        };
        let d = decode_peer("q0", &keys, &values, verify, &mut cache, 512);
        assert!(d.entries.iter().all(|e| e.cluster == "eu1"));
    }
    let get = |k: &str| match k {
        KEY_NODE => values.first().map(String::as_str),
        KEY_STORE => values.get(1).map(String::as_str),
        KEY_LABELS => values.get(2).map(String::as_str),
        _ => None,
    };
    if let Ok(a) = Announcement::from_key_values(get) {
        a.validate().expect("a parsed announcement is valid");
        let _ = CatalogEntry::from_announcement(&a);
    }
}

fn signed_entries(rest: &[u8]) {
    let Some(material) = material() else { return };
    let Ok(entries) = serde_json::from_slice::<Vec<CatalogEntry>>(rest) else {
        return;
    };
    let who = Publisher {
        node_id: "q0".into(),
        cluster: "eu1".into(),
        federation: FEDERATION.into(),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let Ok(values) = encode_signed(&entries, &who, material, now) else {
        return;
    };
    let keys: Vec<String> = (0..values.len())
        .map(|i| format!("skein:catalog/{i}"))
        .collect();
    let verify = Verify::Signed {
        material,
        federation: FEDERATION,
    };
    let d = decode_peer(
        "q0",
        &keys,
        &values,
        verify,
        &mut VerifyCache::default(),
        512,
    );
    for e in &d.entries {
        assert_eq!(e.cluster, "eu1", "only the signer's cluster is accepted");
        assert!(e.validate().is_ok());
    }
}

/// Valid inputs of every mode, made with the real encoders (for the seed corpus).
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let with = |mode: u8, body: &[u8]| {
        let mut v = vec![mode];
        v.extend_from_slice(body);
        v
    };
    let dg = Datagram {
        from: "q0.eu1.example.com:443".into(),
        payload: vec![0, 1, 2, 3],
    };
    out.push(("gen-deliver".into(), with(0, &dg.encode_to_vec())));
    if let Some(m) = material()
        && let Some(leaf) = m.chain().first()
    {
        out.push(("gen-cert".into(), with(1, leaf.as_ref())));
    }
    let entry = CatalogEntry {
        node_id: "s0".into(),
        cluster: "eu1".into(),
        address: "s0.eu1.example.com:10901".into(),
        tls_server_name: Some("s0.eu1.example.com".into()),
        min_time: 0,
        max_time: 1_700_000_000_000,
        label_sets: vec![
            [("cluster".to_string(), "eu1".to_string())]
                .into_iter()
                .collect(),
        ],
    };
    if let Ok(json) = serde_json::to_vec(&vec![entry.clone()]) {
        out.push(("gen-entries".into(), with(3, &json)));
    }
    let mut values: Vec<u8> = Vec::new();
    if let Ok(shards) = skein_discovery::wan::catalog::encode(std::slice::from_ref(&entry)) {
        values.extend(shards.join("\0").into_bytes());
    }
    if let Some(m) = material() {
        let who = Publisher {
            node_id: "q0".into(),
            cluster: "eu1".into(),
            federation: FEDERATION.into(),
        };
        if let Ok(shards) = encode_signed(&[entry], &who, m, 1_700_000_000_000) {
            out.push((
                "gen-signed-shard".into(),
                with(2, shards.join("\0").as_bytes()),
            ));
        }
    }
    out.push(("gen-shard".into(), with(2, &values)));
    let mut a = Announcement::new("s0", "eu1");
    a.store_external = Some("s0.eu1.example.com:10901".into());
    if let Ok(kv) = a.to_key_values() {
        let get = |k: &str| {
            kv.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let joined = [get(KEY_NODE), get(KEY_STORE), get(KEY_LABELS)].join("\0");
        out.push(("gen-announcement".into(), with(2, joined.as_bytes())));
    }
    out
}
