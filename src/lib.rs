//! vanthu: the backend of a provincial document-management and e-signature
//! system. Every document is an event stream in an append-only,
//! tamper-evident log on RocksDB; projections serve inboxes, deadlines and
//! registers; signatures are judged by the signer's authority at the instant
//! they were made.
//!
//! # Layout
//! From the top down; a module imports only modules below it
//! (`tests/it/tidy.rs` holds the table, `docs/ARCHITECTURE.md` draws it).
//! - [`app`]: the composition root: reads [`config`], opens the log, keys and
//!   trust, wires the services, the background tasks and the HTTP server.
//! - [`config`]: the settings: defaults, a TOML file, `VANTHU_*` variables.
//! - [`ui`]: the pages for clerks and leaders (server-rendered, Vietnamese).
//! - [`api`]: the JSON routes: request bodies, service failures → problems.
//! - [`http`]: the edge both doors share: `AppState`, tokens → `Caller`, the
//!   problem table, request ids, metrics, connection framing, TLS.
//! - [`admin`]: `vanthu admin init`, the first admin on a stopped store.
//! - [`service`]: the application: the command pipeline, loading, the
//!   organisation's state, files, evidence bundles, the interchange's intake.
//! - [`outbox`]: what must leave the building: webhook deliveries and
//!   packages to other systems, from the log, sent with retries.
//! - [`interchange`]: edXML packages (QCVN 102), the peers, the transport seam.
//! - [`projections`]: read models folded from the log, and their runner.
//! - [`tlog`], [`bundle`], [`crls`], [`jwks`], [`webhooks`], [`monitor`],
//!   [`control`], [`devkeys`], [`outbound`], [`clock`]: adapters with one
//!   concern each (checkpoints, offline evidence, revocation lists, SSO keys,
//!   Standard Webhooks signatures, `vanthu log monitor`, the data directory's
//!   socket, the demo organisation, outbound HTTP clients, the one clock).
//! - [`domain`]: pure rules: documents, the organisation's history, signing
//!   authority, who may read what, calendars, numbering.
//! - [`crypto`]: bytes in, verdicts out: JWS, X.509 chains and CRLs, the
//!   Merkle tree, signed notes.
//! - [`store`]: the event log (RocksDB, or NATS JetStream with a RocksDB
//!   replica); it knows nothing of documents.
//!
//! Must never: let an import point back up (the table in `tests/it/tidy.rs`
//! fails the build's tests when one does), touch RocksDB outside `store`, or
//! do I/O in `domain`.

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
