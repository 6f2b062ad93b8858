//! The document aggregate: one directive document's life as an event
//! stream, outgoing (drafted → routed → signed → issued → recalled |
//! replaced) and incoming per recipient agency (received → assigned →
//! replied → completed).
//!
//! `decide(state, command, ctx)` checks who may do what in which state and
//! returns the events to append; `evolve(state, event)` folds an event into
//! the state. Every rule of the lifecycle, authorisation included, is here;
//! the API only loads, calls and appends.
//!
//! - `values.rs`: what a draft is made of (urgency, confidentiality, recipients, …).
//! - `events.rs`: the events, the stored and versioned surface.
//! - `state.rs`: `Document` and `evolve`.
//! - `acceptance.rs`: `accept`, the one judgement of a submitted signature,
//!   returning the typed `AcceptedSignature` that `Command::Sign` carries.
//! - `command.rs`: `Command`, `Ctx`, `Decision`, errors, and `decide`, which
//!   dispatches to `outgoing.rs` (draft to replacement, signing and issue),
//!   `incoming.rs` (a recipient's receipt, assignment, reply, completion)
//!   and `arrived.rs` (a document another system issued: refusal, recall,
//!   and a reply that came by package).
//!
//! Must never: do I/O, read the clock (the instant comes in `Ctx`), take a
//! signature that `accept` did not accept, or allocate a
//! number other than the one the register stream's version says is next.

mod acceptance;
mod arrived;
mod command;
mod events;
mod incoming;
mod outgoing;
mod state;
mod values;

pub use super::authority::{payload_freshness, SIGNING_PAYLOAD_TTL};
pub use acceptance::{accept, judge_signature, AcceptedSignature, Rejection};
pub use arrived::{ask_back, reply_by_package, MAX_REASON};
pub use command::*;
pub use events::*;
pub use incoming::receipt_register;
pub use outgoing::{may_sign, plan_issue, IssuePlan};
pub use state::*;
pub use values::*;

use uuid::Uuid;

use super::authority::AuthorityVerdict;
use super::doctype::{self, DocType};
use super::numbering::{self, Direction, RegisterKey, Series};
use super::org::{Org, Position};
use super::signing::payload_matches;
use super::signing::{jws_sha256, ContentRef, SealPayload, SigningPayload};
use crate::crypto::verify::Report;

/// Prefix of document stream ids: `doc-{uuid}`.
pub const STREAM_PREFIX: &str = "doc-";

/// The stream id of document `id`.
pub fn stream_id(id: Uuid) -> String {
    format!("{STREAM_PREFIX}{id}")
}

/// Longest free text (titles, reasons, instructions) accepted.
pub const MAX_TEXT: usize = 2000;

#[cfg(test)]
mod tests;
