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
//!   `ahead.rs`: signatures and issue, whose costly part runs ahead off the
//!   workers;
//!   `reads.rs`: the document, its events and its signing payload;
//!   `evidence.rs`: the bundle and the files.
//!
//! Must never: decide a rule itself (they are `domain::document`'s), write
//! anything for a refused request, or number a document outside the
//! register's stream version.

mod ahead;
mod commands;
mod dto;
pub(crate) mod evidence;
mod pipeline;
mod reads;

pub use ahead::*;
pub use commands::*;
pub use dto::*;
pub use evidence::*;
use pipeline::*;
pub use reads::*;

use utoipa_actix_web::service_config::ServiceConfig;

use crate::http::problem::{from_store as internal, Problem};
use crate::http::AppState;
use crate::service::load::{parse_id, readable};

/// The document as of `version` (all of it when `None`).
fn load(
    state: &AppState,
    id: uuid::Uuid,
    version: Option<u64>,
) -> Result<Option<crate::domain::document::Document>, Problem> {
    crate::service::load::document(&state.log, id, version).map_err(internal)
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
