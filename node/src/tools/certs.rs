//! `skein tools certs`: a development CA (kept and reused from the output
//! directory) and one certificate per node, valid as server and client,
//! naming the node's identity `spiffe://<federation>/cluster/<cluster>/node/<name>`
//! (URI SAN) when its cluster is known. Keys are written 0600, a new output
//! directory 0700.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use skein_tls::devcerts::{DevCa, NodeCertSpec};

#[derive(Debug, Args)]
pub struct CertsArgs {
    /// Directory for ca.crt, ca.key and <name>.crt/.key per node. An
    /// existing CA there is reused, so nodes can be added later. Made 0700
    /// when created; every key file is 0600.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// A node certificate to issue: NAME[@CLUSTER][=SAN,SAN,...] (SANs are
    /// DNS names or IP addresses; NAME itself is always one). NAME is the
    /// node id (--node-id). With a cluster (here or --cluster) the
    /// certificate names the identity
    /// spiffe://<federation>/cluster/<CLUSTER>/node/<NAME>, which gossip
    /// (LAN-discovered stores, WAN) requires. Repeatable.
    #[arg(
        long = "node",
        value_name = "NAME[@CLUSTER][=SAN,...]",
        required = true
    )]
    pub nodes: Vec<String>,

    /// Cluster of the nodes given without @CLUSTER.
    #[arg(long, value_name = "CLUSTER")]
    pub cluster: Option<String>,

    /// Federation named in the identities (the nodes' --federation).
    #[arg(long, default_value = "skein")]
    pub federation: String,

    /// Validity of the node certificates (e.g. 90d, 1y). Default 1 year:
    /// development material that still expires; renew with this tool.
    #[arg(long, value_name = "DURATION", default_value = "1y", value_parser = parse_validity)]
    pub validity: Duration,

    /// Validity of a newly created CA. Default 10 years: nodes are re-issued
    /// under it many times.
    #[arg(long, value_name = "DURATION", default_value = "10y", value_parser = parse_validity)]
    pub ca_validity: Duration,

    /// Common name of a newly created CA.
    #[arg(long, default_value = "Skein development CA")]
    pub ca_name: String,
}

fn parse_validity(s: &str) -> Result<Duration, String> {
    crate::config::parse_duration("validity", s).map_err(|e| e.to_string())
}

/// One `--node` value.
#[derive(Debug, PartialEq, Eq)]
struct NodeArg {
    name: String,
    cluster: Option<String>,
    sans: Vec<String>,
}

/// Splits `NAME[@CLUSTER][=SAN,SAN]`.
fn parse_node(spec: &str) -> anyhow::Result<NodeArg> {
    let (head, sans) = match spec.split_once('=') {
        Some((n, s)) => (
            n,
            s.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
        ),
        None => (spec, vec![]),
    };
    let (name, cluster) = match head.split_once('@') {
        Some((n, c)) => (n.trim(), Some(c.trim())),
        None => (head.trim(), None),
    };
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        anyhow::bail!(
            "invalid --node {spec:?}: the name must be a plain file-safe name like node-1"
        );
    }
    if cluster.is_some_and(|c| c.is_empty() || c.len() > 128 || c.chars().any(char::is_control)) {
        anyhow::bail!("invalid --node {spec:?}: empty or unprintable cluster after @");
    }
    Ok(NodeArg {
        name: name.to_string(),
        cluster: cluster.map(String::from),
        sans,
    })
}

pub fn run(a: CertsArgs) -> anyhow::Result<()> {
    let nodes: Vec<NodeArg> = a
        .nodes
        .iter()
        .map(|s| parse_node(s))
        .collect::<Result<_, _>>()?;
    if a.federation.is_empty() || a.federation.len() > 128 {
        anyhow::bail!("--federation must be 1..=128 bytes");
    }
    let (ca, created) = DevCa::load_or_create_with(&a.out, &a.ca_name, a.ca_validity)?;
    println!(
        "{} CA {}",
        if created { "created" } else { "reusing" },
        a.out.join("ca.crt").display()
    );
    for n in nodes {
        let mut spec = NodeCertSpec::new(&n.name, &n.sans);
        spec.validity = a.validity;
        if let Some(cluster) = n.cluster.as_ref().or(a.cluster.as_ref()) {
            spec = spec.with_identity(&a.federation, cluster);
        }
        let (c, _) = ca.issue_node_to(&a.out, &spec)?;
        let identity = match &spec.identity {
            Some(id) => format!("identity {id}"),
            None => "NO identity (give NAME@CLUSTER or --cluster: gossip refuses it)".into(),
        };
        println!(
            "issued {} (SANs: {}{}{}; {identity}; valid {})",
            c.display(),
            n.name,
            if n.sans.is_empty() { "" } else { ", " },
            n.sans.join(", "),
            humantime::format_duration(a.validity)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        certs: CertsArgs,
    }

    fn args(list: &[&str]) -> CertsArgs {
        let mut v = vec!["certs"];
        v.extend(list);
        Cli::try_parse_from(v).unwrap().certs
    }

    #[test]
    fn node_specs() {
        assert_eq!(
            parse_node("n1").unwrap(),
            NodeArg {
                name: "n1".into(),
                cluster: None,
                sans: vec![]
            }
        );
        assert_eq!(
            parse_node("n1=127.0.0.2, n1.local").unwrap(),
            NodeArg {
                name: "n1".into(),
                cluster: None,
                sans: vec!["127.0.0.2".into(), "n1.local".into()]
            }
        );
        assert_eq!(
            parse_node("n1@eu1=127.0.0.2").unwrap(),
            NodeArg {
                name: "n1".into(),
                cluster: Some("eu1".into()),
                sans: vec!["127.0.0.2".into()]
            }
        );
        assert!(parse_node("../x").is_err());
        assert!(parse_node("=a").is_err());
        assert!(parse_node("n1@=a").is_err());
    }

    #[cfg(unix)]
    fn mode(p: &std::path::Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    fn read_cert(p: &std::path::Path) -> Vec<u8> {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject;
        CertificateDer::from_pem_file(p).unwrap().to_vec()
    }

    /// The files the tool writes, read back: modes, validity, CA path
    /// length, key usages, identity SAN.
    #[test]
    fn files_read_back() {
        use x509_parser::prelude::*;
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("certs");
        run(args(&[
            "--out",
            out.to_str().unwrap(),
            "--federation",
            "fed",
            "--cluster",
            "a",
            "--validity",
            "30d",
            "--node",
            "a0=127.0.0.5,a0.example",
            "--node",
            "b0@b",
        ]))
        .unwrap();
        #[cfg(unix)]
        {
            assert_eq!(mode(&out), 0o700, "output directory");
            assert_eq!(mode(&out.join("ca.key")), 0o600, "CA key");
            assert_eq!(mode(&out.join("a0.key")), 0o600, "node key");
            assert_eq!(mode(&out.join("b0.key")), 0o600, "node key");
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;

        let ca_der = read_cert(&out.join("ca.crt"));
        let (_, ca) = X509Certificate::from_der(&ca_der).unwrap();
        let bc = ca.basic_constraints().unwrap().unwrap().value;
        assert!(bc.ca);
        assert_eq!(bc.path_len_constraint, Some(0), "CA path length");
        let ca_days = (ca.validity().not_after.timestamp() - now) / 86400;
        assert!((3640..=3653).contains(&ca_days), "CA valid {ca_days} days");
        assert!(ca.validity().not_before.timestamp() < now);

        let der = read_cert(&out.join("a0.crt"));
        let (_, leaf) = X509Certificate::from_der(&der).unwrap();
        let days = (leaf.validity().not_after.timestamp() - now) / 86400;
        assert!((29..=30).contains(&days), "node valid {days} days");
        assert!(!leaf.is_ca());
        let eku = leaf.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && eku.client_auth);
        let facts = skein_tls::identity::CertFacts::parse(&der).unwrap();
        assert_eq!(
            facts.identities,
            [skein_tls::identity::NodeIdentity::new("fed", "a", "a0")]
        );
        assert!(facts.has_host("a0") && facts.has_host("a0.example"));
        assert!(facts.has_host("127.0.0.5"));
        let b = skein_tls::identity::CertFacts::parse(&read_cert(&out.join("b0.crt"))).unwrap();
        assert_eq!(b.cluster_in("fed").unwrap(), "b");

        // A second run reuses the CA; a key file left world-readable by
        // something else is narrowed again when rewritten.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let k = out.join("a0.key");
            std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o644)).unwrap();
            run(args(&["--out", out.to_str().unwrap(), "--node", "a0"])).unwrap();
            assert_eq!(mode(&k), 0o600);
            assert_eq!(read_cert(&out.join("ca.crt")), ca_der);
            // Without a cluster: no identity, as before this tool knew them.
            let f = skein_tls::identity::CertFacts::parse(&read_cert(&out.join("a0.crt"))).unwrap();
            assert!(f.identities.is_empty());
        }
    }

    #[test]
    fn bad_validity_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let r = run(args(&[
            "--out",
            tmp.path().join("c").to_str().unwrap(),
            "--validity",
            "1m",
            "--node",
            "n",
        ]));
        assert!(r.is_err());
        assert!(
            Cli::try_parse_from(["certs", "--out", "x", "--validity", "soon", "--node", "n"])
                .is_err()
        );
    }
}
