//! `skein`: one binary for every Skein node.

mod api;
mod cli;
mod config;
mod filesd;
mod gossip;
mod grpc;
mod http;
mod logging;
mod members;
mod readiness;
mod run;
mod tools;
mod wan;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    skein_tls::install_crypto_provider();
    let cli = cli::Cli::parse();
    match cli.command {
        cli::Command::Node(args) => {
            let config = match args.resolve() {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("skein: {e}");
                    return ExitCode::from(2);
                }
            };
            if let Err(e) = logging::init(config.log_format, &config.log_level) {
                eprintln!("skein: {e}");
                return ExitCode::from(2);
            }
            match run::node(config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    eprintln!("skein: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        cli::Command::Members { url } => match members::run(&url) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("skein: {e:#}");
                ExitCode::FAILURE
            }
        },
        cli::Command::Tools(cmd) => match tools::run(cmd) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("skein: {e:#}");
                ExitCode::FAILURE
            }
        },
        cli::Command::Config(cli::ConfigCommand::Check { file }) => {
            match cli::NodeArgs::from_file(file.clone()).resolve() {
                Ok(c) => {
                    println!("{}: valid (roles: {:?})", file.display(), c.roles);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("skein: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}
