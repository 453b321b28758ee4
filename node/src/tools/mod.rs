//! `skein tools ...`: operator tools that run and exit.

pub mod bucket;
pub mod certs;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum ToolsCommand {
    /// Make a development CA and node certificates for mutual TLS (for
    /// tests and the demo; production certificates come from your PKI, for
    /// instance cert-manager).
    Certs(certs::CertsArgs),
    /// Inspect a bucket of blocks: ls, inspect, verify.
    Bucket(bucket::BucketArgs),
    /// Print a new random gossip key (base64, 32 bytes) for a keyring file.
    /// Rotation: add it as the last line everywhere, then move it to the
    /// first line everywhere, then remove the old key.
    GossipKey,
}

pub fn run(cmd: ToolsCommand) -> anyhow::Result<()> {
    match cmd {
        ToolsCommand::Certs(a) => certs::run(a),
        ToolsCommand::Bucket(a) => bucket::run(a),
        ToolsCommand::GossipKey => {
            println!("{}", skein_discovery::Keyring::generate_key());
            Ok(())
        }
    }
}
