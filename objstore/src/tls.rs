//! TLS for the cloud clients uses rustls with the ring crypto provider only; it is installed as
//! the process default before the first client is built (reqwest is compiled without a provider
//! of its own, so aws-lc-rs is never linked).

use std::sync::Once;

static INSTALL: Once = Once::new();

/// Installs ring as the process-wide rustls provider unless some provider already is.
pub fn install_ring_provider() {
    INSTALL.call_once(|| {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            // Losing a race with another installer is fine: a provider is then in place.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
    });
}
