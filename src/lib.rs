//! vanthu: the backend of a provincial document-management and e-signature
//! system. Every document is an event stream in an append-only,
//! tamper-evident log on RocksDB; projections serve inboxes, deadlines and
//! registers; signatures are judged by the signer's authority at the instant
//! they were made.
//!
//! # Layout
//! - [`config`]: one `Config` from defaults, a TOML file and `VANTHU_*` variables.
//! - [`store`]: the event log (the only code that touches RocksDB's log families).
//! - [`api`]: the actix-web application: routes, problem responses.
//! - [`app`]: starting the service (open the log, bind, serve).
//! - [`wire`]: each TCP connection, so the HTTP layer's own errors are problem+json too.
//! - [`service`]: the command pipeline over the `store::EventLog` trait.
//! - [`bundle`]: an issued document's evidence and its offline verification.
//! - [`crypto`]: JWS, X.509 chains and CRLs, verification reports.
//! - [`domain`]: pure rules: the organisation's history, signing authority.
//! - [`devkeys`]: the demo organisation and the development keys' public halves
//!   (generating them, the benchmarks and the demo are the `dev/` crate's).
//! - [`admin`]: `vanthu admin init`, the first admin on a stopped store;
//!   [`control`]: the data directory's socket for `vanthu backup` on a running service.
//! - [`tlog`]: the transparency log's checkpoint signer (the tree is `store::tree`);
//!   [`monitor`]: `vanthu log monitor`, the auditor's check of a running log.
//! - [`crls`]: revocation lists, reloaded and fetched, with their status.
//! - [`metrics`]: `GET /metrics` for Prometheus: the recorder, names, HTTP middleware, scrape-time gauges.
//! - [`jwks`]: token keys from a JWK Set (the province's SSO), reloaded.
//! - [`tls`]: HTTPS with rustls, the certificate reloaded on SIGHUP.
//! - [`outbound`]: the HTTP clients for CRL URLs, the JWK Set and the demo (rustls on ring).
//! - [`projections`]: read models folded from the log; [`clock`]: the one clock.
//!
//! `docs/ARCHITECTURE.md` is the full map.
//!
//! Dependencies point one way: `api → store`; `store` knows nothing of documents.
//!
//! Must never: let an import point back up (the store into the domain, the
//! domain into the API), touch RocksDB outside `store`, or do I/O in
//! `domain` (`tests/it/tidy.rs` checks these).

pub mod admin;
pub mod api;
pub mod app;
pub mod bundle;
pub mod clock;
pub mod config;
pub mod control;
pub mod crls;
pub mod crypto;
pub mod devkeys;
pub mod domain;
pub mod http;
pub mod interchange;
pub mod jwks;
pub mod monitor;
pub mod outbound;
pub mod outbox;
pub mod projections;
pub mod service;
pub mod store;
pub mod tlog;
pub mod ui;
pub mod webhooks;
