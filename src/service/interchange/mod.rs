//! The interchange's application logic (Decision 28/2018/QĐ-TTg): composing
//! an issued document's edXML package for a peer (`compose`), taking a
//! peer's package as an arrival (`arrive`), and taking its status messages
//! and recall requests (`status`). The HTTP door (`api::interchange`)
//! authenticates the peer, reads the body and maps [`Failure`] to
//! problems; everything after that is here.
//!
//! Must never: speak HTTP (no request, no problem), write anything for a
//! package or status that is refused, or retry a lost race other than
//! through `commands::append_racing`.

mod arrive;
mod compose;
mod status;

use std::sync::Arc;

pub use compose::{package_for, BUNDLE_ATTACHMENT, BUNDLE_TYPE};

use crate::clock::Clock;
use crate::domain::calendar::Calendar;
use crate::domain::org::Org;
use crate::interchange::edxml::{EdxmlError, Inbound};
use crate::interchange::{Arrived, Peers};
use crate::service::commands::RaceError;
use crate::store::{AppendError, BlobStore, EventLog, Metadata, NewEvent, StoreError};

/// What the interchange's services run against.
pub struct Env<'a> {
    /// This node's log: every read (on JetStream, the local replica).
    pub log: &'a dyn EventLog,
    /// Where appends go (`log` itself, or JetStream).
    pub events: &'a dyn EventLog,
    pub blobs: &'a dyn BlobStore,
    /// The organisation now (read again on every attempt).
    pub org: &'a (dyn Fn() -> Arc<Org> + Sync),
    pub clock: &'a Clock,
    pub calendar: &'a Calendar,
    /// Trust anchors and CRLs.
    pub crls: &'a crate::crls::CrlStore,
    pub peers: &'a Peers,
    /// The id of the request that brought it, recorded in every event.
    pub request_id: Option<String>,
}

/// Why a package or status message was not taken; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// It does not read as edXML (400), naming the field.
    #[error("the package is refused: {0}")]
    BadPackage(EdxmlError),
    /// It reads but cannot be taken (422), naming the field.
    #[error("{field}: {detail}")]
    Refused { field: String, detail: String },
    /// The peer may not speak for whom it names (403).
    #[error("{field}: {detail}")]
    Forbidden { field: String, detail: String },
    /// The status code does not fit the document's state (409, D14).
    #[error("{0}")]
    OutOfTurn(String),
    /// Another package already arrived under this DocumentId (409).
    #[error("another package already arrived under this DocumentId")]
    Replaced,
    /// Lost every race (409): `title` for the problem, `detail` what to do.
    #[error("{title}: {detail}")]
    KeptChanging {
        title: &'static str,
        detail: &'static str,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Append(AppendError),
    #[error("{0}")]
    Internal(String),
}

impl Failure {
    pub(crate) fn refused(field: &str, detail: impl Into<String>) -> Self {
        Failure::Refused {
            field: field.into(),
            detail: detail.into(),
        }
    }

    pub(crate) fn forbidden(field: &str, detail: impl Into<String>) -> Self {
        Failure::Forbidden {
            field: field.into(),
            detail: detail.into(),
        }
    }

    fn bad(field: &str, reason: impl Into<String>) -> Self {
        Failure::BadPackage(EdxmlError {
            field: field.into(),
            reason: reason.into(),
        })
    }

    /// A lost race (or the log's own refusal) of an append that answers
    /// `title` when the state kept changing.
    fn raced(e: RaceError<Failure>, title: &'static str, detail: &'static str) -> Self {
        match e {
            RaceError::Decided(f) => f,
            RaceError::KeptChanging(_) => Failure::KeptChanging { title, detail },
            RaceError::Append(e) => Failure::Append(e),
            RaceError::Store(e) => Failure::Store(e),
        }
    }
}

/// What was taken: `already` when it had been before (nothing written),
/// else the log position of the append; `body` is the answer.
#[derive(Debug)]
pub struct Taken {
    pub already: bool,
    pub position: Option<u64>,
    pub body: serde_json::Value,
}

impl Taken {
    fn already(body: serde_json::Value) -> Self {
        Self {
            already: true,
            position: None,
            body,
        }
    }

    fn appended(position: u64, body: serde_json::Value) -> Self {
        Self {
            already: false,
            position: Some(position),
            body,
        }
    }
}

/// Takes what authenticated peer `peer` posted: a document package (an
/// arrival) or a status message; `message_id` is its `webhook-id`.
pub async fn take(
    env: &Env<'_>,
    peer: &str,
    message_id: String,
    inbound: Inbound,
) -> Result<Taken, Failure> {
    match inbound {
        Inbound::Document(package) => arrive::arrive(env, peer, message_id, *package).await,
        Inbound::Status(status) => status::status_in(env, peer, *status).await,
    }
}

/// An event of `actor`'s, with the request's id.
fn logged(env: &Env<'_>, actor: &str, event_type: &str, payload: serde_json::Value) -> NewEvent {
    NewEvent::new(event_type, payload).with_metadata(Metadata {
        actor: Some(actor.to_owned()),
        request_id: env.request_id.clone(),
        ..Default::default()
    })
}

/// A document event of `actor`'s, with the request's id.
fn document_event(
    env: &Env<'_>,
    actor: &str,
    e: &crate::domain::document::DocumentEvent,
) -> NewEvent {
    let payload = serde_json::to_value(e).expect("events serialise");
    logged(env, actor, e.event_type(), payload)
}

/// The arrival recorded in `stream`, if any.
fn arrival(env: &Env<'_>, stream: &str) -> Result<Option<Arrived>, StoreError> {
    let records = env.log.read_stream(stream, 1, 1)?;
    Ok(records
        .first()
        .and_then(|r| serde_json::from_value(r.payload.clone()).ok()))
}
