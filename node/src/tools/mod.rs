//! `skein tools ...`: operator tools that run and exit.

pub mod certs;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum ToolsCommand {
    /// Make a development CA and node certificates for mutual TLS (for
    /// tests and the demo; production certificates come from your PKI, for
    /// instance cert-manager).
    Certs(certs::CertsArgs),
}

pub fn run(cmd: ToolsCommand) -> anyhow::Result<()> {
    match cmd {
        ToolsCommand::Certs(a) => certs::run(a),
    }
}
