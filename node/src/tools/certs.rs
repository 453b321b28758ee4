//! `skein tools certs`: a development CA (kept and reused from the output
//! directory) and one certificate per node, valid as server and client.

use std::path::PathBuf;

use clap::Args;
use skein_tls::devcerts::DevCa;

#[derive(Debug, Args)]
pub struct CertsArgs {
    /// Directory for ca.crt, ca.key and <name>.crt/.key per node. An
    /// existing CA there is reused, so nodes can be added later.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// A node certificate to issue: NAME, or NAME=SAN,SAN,... (DNS names or
    /// IP addresses). NAME itself is always a SAN. Repeatable.
    #[arg(long = "node", value_name = "NAME[=SAN,...]", required = true)]
    pub nodes: Vec<String>,

    /// Common name of a newly created CA.
    #[arg(long, default_value = "Skein development CA")]
    pub ca_name: String,
}

/// Splits `NAME=SAN,SAN` into the name and its SANs.
fn parse_node(spec: &str) -> anyhow::Result<(String, Vec<String>)> {
    let (name, sans) = match spec.split_once('=') {
        Some((n, s)) => (
            n,
            s.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect(),
        ),
        None => (spec, vec![]),
    };
    let name = name.trim();
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        anyhow::bail!(
            "invalid --node {spec:?}: the name must be a plain file-safe name like node-1"
        );
    }
    Ok((
        name.to_string(),
        sans.into_iter().map(String::from).collect(),
    ))
}

pub fn run(a: CertsArgs) -> anyhow::Result<()> {
    let nodes: Vec<_> = a
        .nodes
        .iter()
        .map(|s| parse_node(s))
        .collect::<Result<_, _>>()?;
    let (ca, created) = DevCa::load_or_create(&a.out, &a.ca_name)?;
    println!(
        "{} CA {}",
        if created { "created" } else { "reusing" },
        a.out.join("ca.crt").display()
    );
    for (name, sans) in nodes {
        let (c, _) = ca.issue_to(&a.out, &name, &sans)?;
        println!(
            "issued {} (SANs: {name}{}{})",
            c.display(),
            if sans.is_empty() { "" } else { ", " },
            sans.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_specs() {
        assert_eq!(parse_node("n1").unwrap(), ("n1".into(), vec![]));
        assert_eq!(
            parse_node("n1=127.0.0.2, n1.local").unwrap(),
            ("n1".into(), vec!["127.0.0.2".into(), "n1.local".into()])
        );
        assert!(parse_node("../x").is_err());
        assert!(parse_node("=a").is_err());
    }
}
