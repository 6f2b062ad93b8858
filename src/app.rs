//! Starting the service: open the event log, bind the listener, build the
//! HTTP server. `main` and the tests both go through `start`.
//!
//! Must never: hold business logic, or start serving before the log has
//! opened and verified its tail.

use std::net::{SocketAddr, TcpListener};

use actix_web::{web, App};

use crate::api::auth::TokenVerifier;
use crate::api::org::OrgState;
use crate::api::{self, AppState};
use crate::config::Config;
use crate::store::jetstream::{JetStreamError, JetStreamLog};
use crate::store::{EventLog, RocksLog, StoreError};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the event log in {0}: {1}")]
    Log(String, #[source] StoreError),
    #[error("cannot listen on {0}: {1}")]
    Bind(String, #[source] std::io::Error),
    #[error("token key {0}: {1}")]
    TokenKey(String, String),
    #[error("demo organisation: {0}")]
    Demo(String),
    #[error("keys and trust: {0}")]
    Keys(String),
    #[error("the JetStream log: {0}")]
    JetStream(#[source] JetStreamError),
    #[error("the transparency log: {0}")]
    Tlog(#[source] crate::tlog::TlogError),
    #[error("refusing to serve plain HTTP on {0}, beyond loopback: configure tls.cert and tls.key (VANTHU_TLS_CERT, VANTHU_TLS_KEY), or set allow_plain_http = true (VANTHU_ALLOW_PLAIN_HTTP) behind a TLS-terminating proxy")]
    PlainHttp(String),
    #[error("refusing to start outside development mode:\n  - {}\nConfigure keys_dir with your own token key, trust anchors and seals (docs/OPERATIONS.md), or pass --dev (VANTHU_DEV=true) for development.", .0.join("\n  - "))]
    Development(Vec<String>),
}

/// A started service: bound and ready to be awaited.
pub struct Service {
    /// The address actually bound (useful with port 0).
    pub addr: SocketAddr,
    /// `https` when TLS is configured, else `http`.
    pub scheme: &'static str,
    /// The event log the service writes to (or its local replica).
    pub log: RocksLog,
    /// The JetStream log whose replica `log` is, when that backend runs.
    jetstream: Option<std::sync::Arc<JetStreamLog>>,
    projections: std::sync::Arc<crate::projections::Projections>,
    /// The outbox's fold (its own runner, never rebuilt).
    outbox: std::sync::Arc<crate::projections::Projections>,
    /// The outbox's sender.
    sender: std::sync::Arc<crate::outbox::dispatch::Sender>,
    server: actix_web::dev::Server,
    /// The control socket (removed at shutdown).
    socket: std::path::PathBuf,
}

impl Service {
    /// Serves until SIGINT/SIGTERM; then stops accepting, finishes in-flight
    /// requests, stops and joins the projection runners, and closes the log
    /// (the writer ends after its group commit, memtables are flushed, the
    /// clean-shutdown marker is written, RocksDB closes).
    pub async fn run(self) -> std::io::Result<()> {
        let Service {
            log,
            jetstream,
            projections,
            outbox,
            sender,
            server,
            socket,
            ..
        } = self;
        let served = server.await;
        let _ = std::fs::remove_file(&socket);
        sender.stop().await;
        tracing::info!("stopped serving; stopping projections and closing the log");
        let stopped = std::sync::Arc::clone(&projections);
        tokio::task::spawn_blocking(move || {
            stopped.stop();
            outbox.stop();
        })
        .await
        .map_err(std::io::Error::other)?;
        drop(projections);
        if let Some(js) = jetstream {
            js.stop().await;
        }
        // Closed now, not when the last handle drops: tasks and worker
        // threads may hold handles past this point (blocking).
        tokio::task::spawn_blocking(move || log.close())
            .await
            .map_err(std::io::Error::other)?;
        served
    }
}

/// Opens the log in `config.data_dir` and binds `config.listen`. On an empty
/// organisation with `config.demo`, first records the demo organisation.
pub async fn start(config: &Config) -> Result<Service, StartError> {
    let dir = config.data_dir.display().to_string();
    crate::metrics::install();
    let log = RocksLog::open(&config.data_dir, config.log_options())
        .map_err(|e| StartError::Log(dir.clone(), e))?;
    let jetstream = match config.store.backend {
        crate::config::Backend::Rocksdb => None,
        crate::config::Backend::Jetstream => Some(std::sync::Arc::new(
            JetStreamLog::open(log.clone(), &config.store.jetstream.options())
                .await
                .map_err(StartError::JetStream)?,
        )),
    };
    let events: std::sync::Arc<dyn EventLog> = match &jetstream {
        Some(js) => js.clone(),
        None => std::sync::Arc::new(log.clone()),
    };
    let blobs: std::sync::Arc<dyn crate::store::BlobStore> = match &jetstream {
        Some(js) => std::sync::Arc::new(
            js.files()
                .await
                .map_err(|e| StartError::Log(dir.clone(), e))?,
        ),
        None => std::sync::Arc::new(log.clone()),
    };
    let bind = |e| StartError::Bind(config.listen.clone(), e);
    let listener = TcpListener::bind(&config.listen).map_err(bind)?;
    let addr = listener.local_addr().map_err(bind)?;
    let tls = match (&config.tls.cert, &config.tls.key) {
        (Some(cert), Some(key)) => {
            let (acceptor, reloading) =
                crate::tls::acceptor(cert, key).map_err(|e| StartError::Keys(e.to_string()))?;
            crate::tls::reload_on_sighup(reloading).map_err(bind)?;
            Some(acceptor)
        }
        (None, None) => None,
        _ => {
            return Err(StartError::Keys(
                "tls.cert and tls.key go together: set both or neither".into(),
            ))
        }
    };
    if tls.is_none() && !addr.ip().is_loopback() && !config.allow_plain_http {
        return Err(StartError::PlainHttp(addr.to_string()));
    }
    let (tokens, token_key) = token_verifier(config).await?;
    let (docs, mut trusted) = services(config)?;
    if let Some(key) = token_key {
        trusted.insert(0, key);
    }
    trusted.extend(tls_public_key(config));
    let log_key = keys_dir_log_key(config)?;
    trusted.push((
        format!("the log key {}", config.keys_dir.join(LOG_KEY).display()),
        crate::crypto::note::LogSigner::public_key(&log_key),
    ));
    let webhook_key = webhook_key(config)?;
    if let Some(key) = &webhook_key {
        trusted.push((
            format!(
                "the webhook key {}",
                config.keys_dir.join(WEBHOOK_KEY).display()
            ),
            ed25519_dalek::SigningKey::from_bytes(key.bytes())
                .verifying_key()
                .to_bytes(),
        ));
    }
    refuse_development_material(config, &trusted)?;
    let org = OrgState::load(&log).map_err(|e| StartError::Log(dir.clone(), e))?;
    if config.demo() && org.read(|o| o.agencies.is_empty()) {
        load_demo(config, &*events, &org).await?;
    }
    if config.dev {
        tracing::warn!(
            "development mode: the public development keys, the demo organisation and the adjustable clock are allowed; never in production"
        );
    }
    let crl_http = crate::outbound::client(std::time::Duration::from_secs(30), None)
        .map_err(|e| StartError::Keys(e.to_string()))?;
    // The pages' sign-in talks to the same SSO as the JWK Set.
    let sso_http = crate::outbound::client(
        std::time::Duration::from_secs(10),
        config.auth.jwks_ca.as_deref(),
    )
    .map_err(|e| StartError::Keys(e.to_string()))?;
    spawn_crl_refresh(&docs.crls, config.crl.refresh_seconds, crl_http);
    if let Some(jwks) = tokens.jwks() {
        spawn_jwks_refresh(jwks, config.auth.jwks_refresh_seconds);
    }
    let leadership: Option<std::sync::Arc<dyn crate::store::lease::Leadership>> = match &jetstream {
        Some(js) => Some(std::sync::Arc::new(
            js.leadership(format!("{}/{}", addr, uuid::Uuid::now_v7()))
                .await
                .map_err(|e| StartError::Log(dir.clone(), e))?,
        )),
        None => None,
    };
    let tlog =
        crate::tlog::Checkpoints::open(log.clone(), std::sync::Arc::new(log_key), leadership)
            .map_err(StartError::Tlog)?;
    let tlog = std::sync::Arc::new(tlog);
    tlog.spawn(std::time::Duration::from_millis(
        config.tlog.checkpoint_interval_ms,
    ));
    let projections = crate::projections::Projections::open(&log, crate::projections::all())
        .map_err(|e| StartError::Log(dir.clone(), e))?;
    projections.spawn().map_err(|e| {
        StartError::Log(dir.clone(), StoreError::Io("projection threads".into(), e))
    })?;
    let outbox = crate::projections::Projections::open(
        &log,
        vec![std::sync::Arc::new(crate::outbox::Outbox)],
    )
    .map_err(|e| StartError::Log(dir.clone(), e))?;
    outbox
        .spawn()
        .map_err(|e| StartError::Log(dir.clone(), StoreError::Io("the outbox thread".into(), e)))?;
    let peers = std::sync::Arc::new(
        crate::interchange::Peers::load(&config.interchange).map_err(StartError::Keys)?,
    );
    let composer: std::sync::Arc<std::sync::OnceLock<crate::outbox::dispatch::Composer>> =
        Default::default();
    let sender = {
        let table = outbox
            .table(crate::outbox::NAME)
            .expect("the outbox has its table")
            .clone();
        let (org, clock, tlog) = (org.clone(), docs.clock.clone(), tlog.clone());
        crate::outbox::dispatch::Sender::new(crate::outbox::dispatch::Env {
            fold: std::sync::Arc::clone(&outbox),
            table,
            org: Box::new(move || org.snapshot()),
            now: Box::new({
                let clock = clock.clone();
                move || clock.now()
            }),
            system_now: Box::new(move || clock.system_now()),
            sends: Box::new(move || tlog.leads()),
            key: webhook_key,
            http: crate::outbound::webhook_client(std::time::Duration::from_secs(
                config.webhooks.timeout_seconds.max(1),
            ))
            .map_err(|e| StartError::Keys(e.to_string()))?,
            policy: config.webhooks.policy(),
            calendar: docs.calendar.clone(),
            due_soon_days: docs.due_soon_days,
            axis: std::sync::Arc::new(crate::interchange::HttpAxis {
                http: crate::outbound::webhook_client(std::time::Duration::from_secs(
                    config.webhooks.timeout_seconds.max(1),
                ))
                .map_err(|e| StartError::Keys(e.to_string()))?,
                peers: std::sync::Arc::clone(&peers),
                timeout: std::time::Duration::from_secs(config.webhooks.timeout_seconds.max(1)),
                now: {
                    let clock = docs.clock.clone();
                    Box::new(move || clock.system_now().timestamp())
                },
            }),
            compose: std::sync::Arc::clone(&composer),
            marks: match &jetstream {
                Some(js) => Some(std::sync::Arc::new(
                    js.marks()
                        .await
                        .map_err(|e| StartError::Log(dir.clone(), e))?,
                )),
                None => None,
            },
        })
    };
    sender.spawn();
    let state = web::Data::new(AppState {
        log: log.clone(),
        events,
        blobs,
        org,
        tokens,
        docs,
        projections: std::sync::Arc::clone(&projections),
        tlog,
        org_backdate_window: chrono::Duration::days(i64::from(config.org_backdate_days)),
        backup_dir: config.backup_dir.clone(),
        ui: crate::ui::Pages::new(&config.ui_settings(), sso_http).map_err(StartError::Keys)?,
        outbox: std::sync::Arc::clone(&sender),
        peers,
    });
    {
        let state = state.clone();
        let _ = composer.set(Box::new(move |delivery| {
            let state = state.clone();
            Box::pin(async move { crate::api::interchange::package_for(&state, &delivery).await })
        }));
    }
    spawn_blob_collection(&state, config.blobs.collect_seconds);
    let ready_state = state.clone();
    let ready: crate::control::Readiness = std::sync::Arc::new(move || {
        crate::api::ops::readiness(&ready_state)
            .map_err(|p| serde_json::to_value(p).expect("a problem serialises"))
    });
    let socket = crate::control::spawn(&config.data_dir, log.clone(), ready).map_err(|e| {
        StartError::Log(dir.clone(), StoreError::Io("the control socket".into(), e))
    })?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let server = http_server(listener, addr, state, config.workers, tls).map_err(bind)?;
    stop_on_signals(server.handle()).map_err(bind)?;
    Ok(Service {
        addr,
        scheme,
        log,
        jetstream,
        projections,
        outbox,
        sender,
        server,
        socket,
    })
}

/// Reloads the CRL file when it changes and fetches the configured CRL
/// URLs, every `seconds`, for as long as the runtime lives.
fn spawn_crl_refresh(
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

/// The token verifier: the token key of `keys_dir` (optional when a JWK
/// Set is configured) and the JWK Set, loaded once before serving (a file
/// must load; a URL that does not answer yet is retried on schedule and
/// whenever a token needs it). Also the token key, named, for the
/// development-key check.
async fn token_verifier(
    config: &Config,
) -> Result<(TokenVerifier, Option<(String, [u8; 32])>), StartError> {
    let key_path = config.keys_dir.join("jwt/jwt.pub.pem");
    let key_err = |e: String| StartError::TokenKey(key_path.display().to_string(), e);
    let pem = match std::fs::read(&key_path) {
        Ok(pem) => Some(pem),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && config.auth.jwks.is_some() => None,
        Err(e) => return Err(key_err(e.to_string())),
    };
    let token_key = match &pem {
        Some(pem) => Some((
            format!("token key {}", key_path.display()),
            ed25519_public_key_pem(pem).map_err(key_err)?,
        )),
        None => None,
    };
    let jwks = match &config.auth.jwks {
        Some(source) => {
            let source = crate::jwks::Source::parse(source);
            let http = crate::outbound::client(
                std::time::Duration::from_secs(10),
                config.auth.jwks_ca.as_deref(),
            )
            .map_err(|e| StartError::TokenKey(source.to_string(), e.to_string()))?;
            let jwks = std::sync::Arc::new(crate::jwks::Jwks::new(source.clone(), http));
            let loaded = jwks.load().await;
            if let (crate::jwks::Source::File(_), Err(e)) = (&source, loaded) {
                return Err(StartError::TokenKey(source.to_string(), e));
            }
            Some(jwks)
        }
        None => None,
    };
    let tokens = TokenVerifier::new(pem.as_deref(), jwks, &config.auth.policy())
        .map_err(|e| key_err(e.to_string()))?;
    Ok((tokens, token_key))
}

/// Stops the server gracefully on SIGTERM or SIGINT, at once on SIGQUIT.
/// The handlers are installed before `start` returns, so before the service
/// says it is listening: a SIGTERM sent as soon as it says so is never met
/// by the default action (death by the signal, exit status 143).
fn stop_on_signals(handle: actix_web::dev::ServerHandle) -> std::io::Result<()> {
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

/// The HTTP/1.1 server: actix-web's app on actix-http, as `HttpServer`
/// builds it, but over [`crate::wire::ProblemIo`] connections so that the
/// HTTP layer's own error responses are problem documents too. Stops on
/// SIGINT/SIGTERM: no new connections, in-flight requests finish, idle
/// keep-alive connections close.
fn http_server(
    listener: TcpListener,
    addr: SocketAddr,
    state: web::Data<AppState>,
    workers: usize,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> std::io::Result<actix_web::dev::Server> {
    use actix_service::{fn_service, map_config, IntoServiceFactory, ServiceFactoryExt};
    // Signals are `stop_on_signals`'s: actix would install its handlers
    // only once the server is first polled, after `start` has returned.
    let mut builder = actix_server::Server::build().disable_signals();
    if workers > 0 {
        builder = builder.workers(workers);
    }
    let shutdown = builder.graceful_shutdown_signal();
    Ok(builder
        .listen("vanthu-http", listener, move || {
            let shutdown = shutdown.clone();
            let app = App::new()
                .wrap(actix_web::middleware::from_fn(crate::metrics::record_http))
                .wrap(actix_web::middleware::from_fn(api::request_id::assign))
                .configure(api::configure(state.clone()))
                .into_factory()
                .map_err(|e: actix_web::Error| e.error_response());
            let http = actix_http::HttpService::build()
                .graceful_shutdown_signal(move || {
                    let shutdown = shutdown.clone();
                    async move { shutdown.notified().await }
                })
                .local_addr(addr)
                .finish(map_config(app, |_| actix_web::dev::AppConfig::default()));
            let tls = tls.clone();
            fn_service(move |io: actix_rt::net::TcpStream| {
                let tls = tls.clone();
                async move {
                    let _ = io.set_nodelay(true);
                    let peer = io.peer_addr().ok();
                    let conn = match tls {
                        None => crate::tls::Conn::Plain(io),
                        Some(acceptor) => crate::tls::Conn::Tls(Box::new(
                            acceptor
                                .accept(io)
                                .await
                                .map_err(actix_http::error::DispatchError::Io)?,
                        )),
                    };
                    Ok((
                        crate::wire::ProblemIo::new(conn),
                        actix_http::Protocol::Http1,
                        peer,
                    ))
                }
            })
            .and_then(http)
        })?
        .run())
}

/// Collects uploads no document cites every `seconds`, for as long as the
/// runtime lives.
fn spawn_blob_collection(state: &web::Data<AppState>, seconds: u64) {
    let state = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(seconds.max(1)));
        loop {
            tick.tick().await;
            if let Err(p) = api::blobs::collect(&state).await {
                tracing::warn!(problem = ?p.detail, "blob collection failed; retried next time");
            }
        }
    });
}

/// Reloads the JWK Set every `seconds`, for as long as the runtime lives.
fn spawn_jwks_refresh(jwks: &std::sync::Arc<crate::jwks::Jwks>, seconds: u64) {
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

/// Keys the service trusts or signs with, each named, with its public key.
type Trusted = Vec<(String, [u8; 32])>;

/// The raw Ed25519 key of an SPKI PEM public key.
fn ed25519_public_key_pem(pem: &[u8]) -> Result<[u8; 32], String> {
    use ed25519_dalek::pkcs8::DecodePublicKey;
    let text = std::str::from_utf8(pem).map_err(|e| e.to_string())?;
    ed25519_dalek::VerifyingKey::from_public_key_pem(text)
        .map(|k| k.to_bytes())
        .map_err(|e| format!("not an Ed25519 public key: {e}"))
}

/// Outside development mode, every key the service trusts or signs with must
/// be the operator's own: the development keys' private halves are public.
/// `trusted` names each configured key with its public key.
fn refuse_development_material(
    config: &Config,
    trusted: &[(String, [u8; 32])],
) -> Result<(), StartError> {
    if config.dev {
        return Ok(());
    }
    // Each key once (every seal's chain repeats the issuing CA).
    let mut seen = std::collections::HashSet::new();
    let mut found: Vec<String> = trusted
        .iter()
        .filter(|(_, key)| crate::devkeys::is_development_key(key) && seen.insert(*key))
        .map(|(what, _)| format!("{what} is a development key (its private half is public)"))
        .collect();
    found.extend(config.development_settings());
    if found.is_empty() {
        Ok(())
    } else {
        Err(StartError::Development(found))
    }
}

/// Trust anchors and CRLs (`keys_dir/ca/root.pem`, `keys_dir/ca/crl.pem`),
/// agency seals (`keys_dir/seals/<AGENCY>.key|.pem` under `ca/issuing.pem`),
/// the working-day calendar and the clock; and every public key among them
/// that the service trusts or signs with, named.
fn services(config: &Config) -> Result<(crate::api::documents::Services, Trusted), StartError> {
    use crate::crypto::keystore::SealSigner;
    use crate::crypto::keystore::{FileKey, FileKeystore};
    use crate::crypto::pki::pem_blocks;
    let keys = &config.keys_dir;
    let err =
        |what: &std::path::Path, e: String| StartError::Keys(format!("{}: {e}", what.display()));
    let read = |p: &std::path::Path| std::fs::read_to_string(p).map_err(|e| err(p, e.to_string()));
    let root = keys.join("ca/root.pem");
    let anchors =
        pem_blocks(&read(&root)?, "CERTIFICATE").map_err(|e| err(&root, e.to_string()))?;
    let mut trusted = Vec::new();
    for der in &anchors {
        let info =
            crate::crypto::pki::parse_certificate(der).map_err(|e| err(&root, e.to_string()))?;
        trusted.push((
            format!("trust anchor {} in {}", info.subject, root.display()),
            info.public_key,
        ));
    }
    let crls = crate::crls::CrlStore::open(
        anchors.clone(),
        keys.join("ca/crl.pem"),
        config.crl.urls.clone(),
    )
    .map_err(|e| StartError::Keys(e.to_string()))?;
    let mut keystore = FileKeystore::default();
    let seals = keys.join("seals");
    let issuing = keys.join("ca/issuing.pem");
    if let Ok(dir) = std::fs::read_dir(&seals) {
        let mut names: Vec<_> = dir.filter_map(Result::ok).map(|e| e.path()).collect();
        names.sort();
        for key in names
            .iter()
            .filter(|p| p.extension().is_some_and(|x| x == "key"))
        {
            let cert = key.with_extension("pem");
            let agency = key.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            let seal =
                FileKey::load(key, &[&cert, &issuing]).map_err(|e| err(key, e.to_string()))?;
            for der in seal.chain() {
                let info = crate::crypto::pki::parse_certificate(der)
                    .map_err(|e| err(&cert, e.to_string()))?;
                trusted.push((
                    format!("seal of {agency}: certificate {}", info.subject),
                    info.public_key,
                ));
            }
            keystore.insert(agency, seal);
        }
    }
    let calendar = crate::domain::calendar::Calendar::try_vietnam()
        .map_err(|e| StartError::Keys(format!("the working-day calendar: {e}")))?;
    let services = crate::api::documents::Services {
        crls: std::sync::Arc::new(crls),
        keystore: Box::new(keystore),
        calendar,
        due_soon_days: config.due_soon_days,
        numbering: config.numbering.clone(),
        clock: std::sync::Arc::new(crate::clock::Clock::new(config.dev_clock)),
        blobs: crate::api::blobs::BlobPolicy::new(config),
        registers: Default::default(),
        documents: Default::default(),
    };
    Ok((services, trusted))
}

/// The configured TLS certificate's key, named, when it is an Ed25519 key
/// (so that the development TLS key is refused outside development mode).
fn tls_public_key(config: &Config) -> Option<(String, [u8; 32])> {
    let path = config.tls.cert.as_ref()?;
    let text = std::fs::read_to_string(path).ok()?;
    let first = crate::crypto::pki::pem_blocks(&text, "CERTIFICATE")
        .ok()?
        .into_iter()
        .next()?;
    let info = crate::crypto::pki::parse_certificate(&first).ok()?;
    Some((
        format!("the TLS certificate {}", path.display()),
        info.public_key,
    ))
}

/// Where the log key lives in `keys_dir`.
const LOG_KEY: &str = "log/log.key";
/// Webhook secrets are derived from this key (optional: without it no
/// webhook can be subscribed or sent).
const WEBHOOK_KEY: &str = "webhooks/webhooks.key";

fn webhook_key(config: &Config) -> Result<Option<crate::outbox::dispatch::SecretKey>, StartError> {
    let path = config.keys_dir.join(WEBHOOK_KEY);
    if !path.exists() {
        tracing::info!(path = %path.display(), "no webhook key: webhooks are off");
        return Ok(None);
    }
    crate::outbox::dispatch::SecretKey::load(&path)
        .map(Some)
        .map_err(|e| {
            StartError::Keys(format!(
                "{e} (32 random bytes, base64: `head -c 32 /dev/urandom | base64`)"
            ))
        })
}

/// The transparency log's key (`keys_dir/log/log.key`), named by `tlog.origin`.
fn keys_dir_log_key(config: &Config) -> Result<crate::crypto::note::LogKey, StartError> {
    crate::crypto::note::LogKey::load(&config.keys_dir.join(LOG_KEY), &config.tlog.origin)
        .map_err(|e| StartError::Keys(format!("{e} (generate one as for a seal: an Ed25519 PKCS#8 PEM key; see docs/TRANSPARENCY.md)")))
}

/// Records the demo organisation of `keys_dir/org.toml` as the first org events.
async fn load_demo(config: &Config, log: &dyn EventLog, org: &OrgState) -> Result<(), StartError> {
    let demo_err = |e: String| StartError::Demo(e);
    let demo = crate::devkeys::DemoOrg::load(&config.keys_dir.join("org.toml"))
        .map_err(|e| demo_err(e.to_string()))?;
    let manifest =
        crate::devkeys::Manifest::load(&config.keys_dir).map_err(|e| demo_err(e.to_string()))?;
    let events = demo
        .org_events(&manifest)
        .map_err(|e| demo_err(e.to_string()))?;
    let n = events.len();
    let metadata = crate::store::Metadata {
        actor: Some("vanthu-demo".into()),
        reason: Some("the demo organisation of keys-dev/org.toml (development mode)".into()),
        ..Default::default()
    };
    match org
        .record(log, events, &metadata, Some("demo-organisation-v1"))
        .await
    {
        Ok(_) => tracing::info!(events = n, "recorded the demo organisation"),
        // Another node of a shared log recorded it first (its events carry
        // its own instants, so its request differs from this one's).
        Err(_) if !org.read(|o| o.agencies.is_empty()) => {
            tracing::info!("another node recorded the demo organisation")
        }
        Err(p) => return Err(demo_err(p.detail.unwrap_or(p.title))),
    }
    Ok(())
}
