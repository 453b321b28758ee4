//! Mutual TLS for Skein's gRPC links, with rustls (ring provider only).
//!
//! - [`material`]: PEM files (certificate chain, key, CA bundle) loaded and
//!   checked, and the rustls/tonic configs built from them.
//! - [`reload`]: [`TlsReloader`] re-reads the files when they change, keeps
//!   the last good material when a new one is broken, and counts both.
//! - [`server`]: a TLS accept loop whose streams feed tonic's
//!   `serve_with_incoming`, so new connections use the current material.
//! - [`identity`]: the node identity a certificate names (URI SAN), and
//!   signatures made with a node's key.
//! - [`devcerts`]: a development CA and node certificates (rcgen).

pub mod devcerts;
pub mod identity;
pub mod material;
pub mod reload;
pub mod server;

pub use material::{TlsError, TlsFiles, TlsMaterial};
pub use reload::TlsReloader;

/// Installs ring as the process's rustls provider. Call first thing in
/// `main`; later calls are harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
