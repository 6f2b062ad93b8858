//! The service's background tasks: CRL and JWK Set refreshes, the
//! collection of uploads no document cites, and the signal handlers that
//! stop the server.
//!
//! Must never: decide what to collect or trust (the services and `crls`
//! do), or block a runtime worker.

/// Reloads the CRL file when it changes and fetches the configured CRL
/// URLs, every `seconds`, for as long as the runtime lives.
pub(super) fn spawn_crl_refresh(
    crls: &std::sync::Arc<crate::crls::CrlStore>,
    seconds: u64,
    http: reqwest::Client,
) {
    let crls = std::sync::Arc::clone(crls);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(seconds.max(1)));
        tick.tick().await;
        loop {
            tick.tick().await;
            crls.refresh(&http).await;
        }
    });
}

/// Stops the server gracefully on SIGTERM or SIGINT, at once on SIGQUIT.
/// The handlers are installed before `start` returns, so before the service
/// says it is listening: a SIGTERM sent as soon as it says so is never met
/// by the default action (death by the signal, exit status 143).
pub(super) fn stop_on_signals(handle: actix_web::dev::ServerHandle) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut quit = signal(SignalKind::quit())?;
    tokio::spawn(async move {
        let (name, graceful) = tokio::select! {
            _ = term.recv() => ("SIGTERM", true),
            _ = int.recv() => ("SIGINT", true),
            _ = quit.recv() => ("SIGQUIT", false),
        };
        tracing::info!(signal = name, graceful, "stopping");
        handle.stop(graceful).await;
    });
    Ok(())
}

/// Collects uploads no document cites every `seconds`, for as long as the
/// runtime lives.
pub(super) fn spawn_blob_collection(core: &std::sync::Arc<crate::service::Core>, seconds: u64) {
    let core = std::sync::Arc::clone(core);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(seconds.max(1)));
        loop {
            tick.tick().await;
            if let Err(e) = crate::service::blobs::collect(&core).await {
                tracing::warn!(error = %e, "blob collection failed; retried next time");
            }
        }
    });
}

/// Reloads the JWK Set every `seconds`, for as long as the runtime lives.
pub(super) fn spawn_jwks_refresh(jwks: &std::sync::Arc<crate::jwks::Jwks>, seconds: u64) {
    let jwks = std::sync::Arc::clone(jwks);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(seconds.max(1)));
        tick.tick().await;
        loop {
            tick.tick().await;
            let _ = jwks.load().await;
        }
    });
}
