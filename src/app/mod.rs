//! The composition root: the one place that reads `Config` and wires the
//! service: open the event log, keys and trust (`keys`), the organisation,
//! projections, the outbox and its sender, the background tasks (`tasks`),
//! bind the listener and build the HTTP server (`server`). `main` and the
//! tests both go through `start`.
//!
//! Must never: hold business logic, or start serving before the log has
//! opened and verified its tail.

mod keys;
mod server;
mod tasks;

use std::net::{SocketAddr, TcpListener};

use actix_web::web;

use crate::config::Config;
use crate::http::AppState;
use crate::service::org::OrgState;
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
    crate::http::metrics::install();
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
            let (acceptor, reloading) = crate::http::tls::acceptor(cert, key)
                .map_err(|e| StartError::Keys(e.to_string()))?;
            crate::http::tls::reload_on_sighup(reloading).map_err(bind)?;
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
    let (tokens, token_key) = keys::token_verifier(config).await?;
    let (docs, mut trusted) = keys::services(config)?;
    if let Some(key) = token_key {
        trusted.insert(0, key);
    }
    trusted.extend(keys::tls_public_key(config));
    let log_key = keys::keys_dir_log_key(config)?;
    trusted.push((
        format!(
            "the log key {}",
            config.keys_dir.join(keys::LOG_KEY).display()
        ),
        crate::crypto::note::LogSigner::public_key(&log_key),
    ));
    let webhook_key = keys::webhook_key(config)?;
    if let Some(key) = &webhook_key {
        trusted.push((
            format!(
                "the webhook key {}",
                config.keys_dir.join(keys::WEBHOOK_KEY).display()
            ),
            ed25519_dalek::SigningKey::from_bytes(key.bytes())
                .verifying_key()
                .to_bytes(),
        ));
    }
    keys::refuse_development_material(config, &trusted)?;
    let org = OrgState::load(&log).map_err(|e| StartError::Log(dir.clone(), e))?;
    if config.demo() && org.read(|o| o.agencies.is_empty()) {
        keys::load_demo(config, &*events, &org).await?;
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
    tasks::spawn_crl_refresh(&docs.crls, config.crl.refresh_seconds, crl_http);
    if let Some(jwks) = tokens.jwks() {
        tasks::spawn_jwks_refresh(jwks, config.auth.jwks_refresh_seconds);
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
        core: std::sync::Arc::new(crate::service::Core {
            log: log.clone(),
            events,
            blobs,
            org,
            docs,
            projections: std::sync::Arc::clone(&projections),
            tlog,
        }),
        tokens,
        org_backdate_window: chrono::Duration::days(i64::from(config.org_backdate_days)),
        backup_dir: config.backup_dir.clone(),
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
    tasks::spawn_blob_collection(&state.core, config.blobs.collect_seconds);
    let ready_state = state.clone();
    let ready: crate::control::Readiness = std::sync::Arc::new(move || {
        crate::api::ops::readiness(&ready_state)
            .map_err(|p| serde_json::to_value(p).expect("a problem serialises"))
    });
    let socket = crate::control::spawn(&config.data_dir, log.clone(), ready).map_err(|e| {
        StartError::Log(dir.clone(), StoreError::Io("the control socket".into(), e))
    })?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let pages = web::Data::new(
        crate::ui::Pages::new(&config.ui_settings(), sso_http).map_err(StartError::Keys)?,
    );
    let server =
        server::http_server(listener, addr, state, pages, config.workers, tls).map_err(bind)?;
    tasks::stop_on_signals(server.handle()).map_err(bind)?;
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
