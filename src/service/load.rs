//! Loading from the log: a document (its events decoded and folded) and
//! the organisation's history.
//!
//! Must never: judge who may read what it loads (`domain::access` does), or
//! hide a record that does not decode (that is corruption, reported).

use uuid::Uuid;

use crate::domain::document::{self, fold, Document, DocumentEvent};
use crate::domain::org::{OrgEvent, STREAM as ORG_STREAM};
use crate::store::{EventLog, StoreError};

/// The document's events, decoded, each with its log position.
pub fn events(log: &dyn EventLog, id: Uuid) -> Result<Vec<(u64, DocumentEvent)>, StoreError> {
    let records = log.read_stream(&document::stream_id(id), 1, usize::MAX)?;
    records
        .into_iter()
        .map(|r| {
            serde_json::from_value(r.payload)
                .map(|e| (r.position, e))
                .map_err(|e| StoreError::Corrupt {
                    position: r.position,
                    reason: format!("a document event does not decode: {e}"),
                })
        })
        .collect()
}

/// The document as of `version` (all of it when `None`); `None` if it does
/// not exist.
pub fn document(
    log: &dyn EventLog,
    id: Uuid,
    version: Option<u64>,
) -> Result<Option<Document>, StoreError> {
    let events = events(log, id)?;
    let n = version.map_or(events.len(), |v| (v as usize).min(events.len()));
    Ok(fold(events[..n].iter().map(|(_, e)| e)))
}

/// Every event of the `org` stream, decoded, and the stream's version.
pub fn org_history(log: &dyn EventLog) -> Result<(Vec<OrgEvent>, u64), StoreError> {
    let records = log.read_stream(ORG_STREAM, 1, usize::MAX)?;
    let version = records.last().map_or(0, |r| r.version);
    let events = records
        .into_iter()
        .map(|r| {
            serde_json::from_value(r.payload).map_err(|e| StoreError::Corrupt {
                position: r.position,
                reason: format!("an org event does not decode: {e}"),
            })
        })
        .collect::<Result<_, _>>()?;
    Ok((events, version))
}
