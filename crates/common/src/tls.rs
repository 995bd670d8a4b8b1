//! TLS set-up shared by every client and server: one rustls crypto provider (ring) per process.

/// Installs ring as the process-wide rustls crypto provider. Idempotent; call before building any
/// TLS client or server.
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Another thread may win the race; either way a ring provider is installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}
