//! HTTP clients for the service's own outbound calls: CRLs from their
//! distribution points, the SSO's JWK Set, the demo's requests. One place
//! builds them, with TLS by rustls on the `ring` provider (the one the rest
//! of vanthu's cryptography already uses), the platform's trust store, and
//! optionally the roots of a private CA (a provincial SSO's).
//!
//! Must never: build a client without a timeout, or turn certificate
//! verification off.

use std::time::Duration;

/// Makes `ring` rustls's process-wide provider (once; a provider installed
/// before stays). Every reqwest client needs one: vanthu does not build
/// reqwest's default (aws-lc) provider.
pub fn install_tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}: {1}")]
    Roots(String, String),
    #[error("building the HTTP client: {0}")]
    Build(#[from] reqwest::Error),
}

/// A client with `timeout` per request, trusting the platform's roots and
/// the certificates in the PEM file `extra_roots` (if given).
pub fn client(
    timeout: Duration,
    extra_roots: Option<&std::path::Path>,
) -> Result<reqwest::Client, ClientError> {
    build(reqwest::Client::builder(), timeout, extra_roots)
}

/// A client for webhook receivers: as [`client`], and redirects are not
/// followed (a receiver answers where it was registered, or fails).
pub fn webhook_client(timeout: Duration) -> Result<reqwest::Client, ClientError> {
    build(
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()),
        timeout,
        None,
    )
}

fn build(
    builder: reqwest::ClientBuilder,
    timeout: Duration,
    extra_roots: Option<&std::path::Path>,
) -> Result<reqwest::Client, ClientError> {
    install_tls_provider();
    let mut builder = builder.timeout(timeout);
    if let Some(path) = extra_roots {
        let err = |e: String| ClientError::Roots(path.display().to_string(), e);
        let pem = std::fs::read(path).map_err(|e| err(e.to_string()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| err(e.to_string()))?;
        if certs.is_empty() {
            return Err(err("no PEM certificate in the file".into()));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    Ok(builder.build()?)
}
