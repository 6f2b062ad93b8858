//! Loading a document from the log: its events decoded and folded, and
//! whether a caller may read it (`domain::access::may_read`). The command
//! handlers, the reads and the blob checks all load documents here.
//!
//! Must never: decide a rule itself, or answer 403 where the caller may not
//! know the document exists (that is 404).

use uuid::Uuid;

use super::auth::Caller;
use super::problem::{from_store as internal, Problem};
use super::AppState;
use crate::domain::access::may_read;
use crate::domain::document::{Document, DocumentEvent};

/// A document id from a path (404 if it is not one).
pub fn parse_id(raw: &str) -> Result<Uuid, Problem> {
    Uuid::parse_str(raw).map_err(|_| Problem::not_found().with_detail("no such document"))
}

/// The document's events, decoded.
pub fn load_events(state: &AppState, id: Uuid) -> Result<Vec<(u64, DocumentEvent)>, Problem> {
    crate::service::load::events(&state.log, id).map_err(internal)
}

/// The document as of `version` (all of it when `None`).
pub fn load(state: &AppState, id: Uuid, version: Option<u64>) -> Result<Option<Document>, Problem> {
    crate::service::load::document(&state.log, id, version).map_err(internal)
}

pub fn load_readable(state: &AppState, caller: &Caller, raw_id: &str) -> Result<Document, Problem> {
    let id = parse_id(raw_id)?;
    let doc = load(state, id, None)?.ok_or_else(Problem::not_found)?;
    let now = state.docs.clock.now();
    if !state.org.read(|org| may_read(&doc, org, &caller.id, now)) {
        // Not 403: whether the document exists is not the caller's business.
        return Err(Problem::not_found());
    }
    Ok(doc)
}

/// Whether `who` may read document `id` now (false if there is none).
pub fn readable_by(state: &AppState, who: &str, id: Uuid) -> Result<bool, Problem> {
    let Some(doc) = load(state, id, None)? else {
        return Ok(false);
    };
    let now = state.docs.clock.now();
    Ok(state.org.read(|org| may_read(&doc, org, who, now)))
}
