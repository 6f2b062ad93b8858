//! Documents over HTTP: `/v1/documents` and the commands on one document
//! (revisions, routes, returns, opinions, signatures, issue, recall,
//! replacement, receipts, assignments, deadline extensions, replies,
//! completions), the signing payload and the
//! offline bundle.
//!
//! Every command goes the same way (DESIGN §2): authenticate → answer a
//! replayed `Idempotency-Key` from the log → load the document → check
//! `If-Match` → `domain::document::decide` → one atomic append of the
//! document's events, any register number, any linked document's event and
//! the idempotency record → respond with `ETag` and `Vanthu-Position`.
//!
//! - `pipeline.rs`: that way, once (`execute`), with If-Match, replay and
//!   register locks.
//! - `dto.rs`: the request bodies; `commands.rs`: one handler per command;
//!   `reads.rs`: the document, its events and its signing payload;
//!   `evidence.rs`: the bundle and the files.
//!
//! Must never: decide a rule itself (they are `domain::document`'s), write
//! anything for a refused request, or number a document outside the
//! register's stream version.

mod commands;
mod dto;
pub(crate) mod evidence;
mod pipeline;
mod reads;

pub use commands::*;
pub use dto::*;
pub use evidence::*;
use pipeline::*;
pub use reads::*;

use std::sync::Arc;

use utoipa_actix_web::service_config::ServiceConfig;

use crate::clock::Clock;
use crate::crypto::keystore::Keystore;
use crate::domain::numbering::Policy;

use super::loading::{load, load_readable, parse_id};
use super::problem::from_store as internal;

/// What document commands need besides the log and the organisation.
pub struct Services {
    /// Trust anchors and CRLs (reloaded and fetched in the background).
    pub crls: Arc<crate::crls::CrlStore>,
    pub keystore: Box<dyn Keystore>,
    pub calendar: crate::domain::calendar::Calendar,
    /// "Due soon" means within this many working days.
    pub due_soon_days: u32,
    pub numbering: Policy,
    pub clock: std::sync::Arc<Clock>,
    /// Document files: size limit, quota, collection.
    pub blobs: super::blobs::BlobPolicy,
    /// One lock per agency around "read the register's version, append the
    /// next number", so concurrent issues queue instead of conflicting.
    pub registers: crate::service::commands::RegisterLocks,
    /// Documents as last folded, for commands (`service::load::current`).
    pub documents: crate::service::load::DocumentCache,
}

/// Registers the document routes (and their OpenAPI paths).
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(get)
        .service(events)
        .service(signing_payload)
        .service(bundle)
        .service(content)
        .configure(commands::routes);
}
