//! Loading from the log: a document (its events decoded and folded) and
//! the organisation's history; and the cache of folded documents that makes
//! a command's cost independent of its stream's length.
//!
//! Must never: judge who may read what it loads (`domain::access` does), or
//! hide a record that does not decode (that is corruption, reported).

use std::collections::HashMap;
use std::sync::Mutex;

use uuid::Uuid;

use crate::domain::document::{self, evolve, fold, Document, DocumentEvent};
use crate::domain::org::{OrgEvent, STREAM as ORG_STREAM};
use crate::store::{EventLog, StoreError};

/// The document's events, decoded, each with its log position.
pub fn events(log: &dyn EventLog, id: Uuid) -> Result<Vec<(u64, DocumentEvent)>, StoreError> {
    events_from(log, id, 1)
}

/// The document's events from `version` on, decoded, each with its position.
fn events_from(
    log: &dyn EventLog,
    id: Uuid,
    version: u64,
) -> Result<Vec<(u64, DocumentEvent)>, StoreError> {
    let records = log.read_stream(&document::stream_id(id), version, usize::MAX)?;
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

/// Documents as last folded, with their version (`Document::version` is
/// the stream's version: one per event). The log is append-only, so a
/// document folded up to version v stays right up to v for ever: a command
/// takes it and reads only the events after v, instead of the whole stream
/// (a document may gather thousands of events over a year). Bounded in
/// bytes ([`CACHED_BYTES`]); an entry that is missing or behind costs a
/// longer read, never a wrong state.
#[derive(Default)]
pub struct DocumentCache {
    folded: Mutex<Folded>,
}

#[derive(Default)]
struct Folded {
    /// Each document with what it costs (its JSON size, a fair measure of
    /// its heap, plus the slot).
    docs: HashMap<Uuid, (Document, usize)>,
    bytes: usize,
}

/// Most bytes the folded documents may take; past it the cache starts over
/// with a new table. A document larger than a sixteenth of it is not kept.
pub const CACHED_BYTES: usize = 32 << 20;

impl DocumentCache {
    fn get(&self, id: Uuid) -> Option<Document> {
        let map = self.folded.lock().unwrap_or_else(|p| p.into_inner());
        map.docs.get(&id).map(|(d, _)| d.clone())
    }

    fn put(&self, doc: &Document) {
        let mut map = self.folded.lock().unwrap_or_else(|p| p.into_inner());
        if map
            .docs
            .get(&doc.id)
            .is_some_and(|(d, _)| d.version >= doc.version)
        {
            return;
        }
        let cost = json_len(doc) + std::mem::size_of::<(Uuid, Document, usize)>();
        if cost > CACHED_BYTES / 16 {
            if let Some((_, was)) = map.docs.remove(&doc.id) {
                map.bytes -= was;
            }
            return;
        }
        let was = map.docs.get(&doc.id).map_or(0, |(_, c)| *c);
        if map.bytes - was + cost > CACHED_BYTES {
            *map = Folded::default();
        }
        let was = map
            .docs
            .insert(doc.id, (doc.clone(), cost))
            .map_or(0, |(_, c)| c);
        map.bytes = map.bytes - was + cost;
    }
}

/// The length of `value`'s JSON, counted without building it.
fn json_len<T: serde::Serialize>(value: &T) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// The document now, from `cache` and the events after what it holds;
/// the same state `document(log, id, None)` folds from the whole stream.
pub fn current(
    log: &dyn EventLog,
    cache: &DocumentCache,
    id: Uuid,
) -> Result<Option<Document>, StoreError> {
    let held = cache.get(id);
    let from = held.as_ref().map_or(1, |d| d.version + 1);
    let later = events_from(log, id, from)?;
    let doc = later.iter().map(|(_, e)| e).fold(held, evolve);
    if let Some(d) = &doc {
        cache.put(d);
    }
    Ok(doc)
}

/// Every event of the `org` stream, decoded, and the stream's version.
pub fn org_history(log: &dyn EventLog) -> Result<(Vec<OrgEvent>, u64), StoreError> {
    org_events_after(log, 0)
}

/// The `org` stream's events after `version`, decoded, and the stream's
/// version (`version` when there are none).
pub fn org_events_after(
    log: &dyn EventLog,
    version: u64,
) -> Result<(Vec<OrgEvent>, u64), StoreError> {
    let records = log.read_stream(ORG_STREAM, version + 1, usize::MAX)?;
    let version = records.last().map_or(version, |r| r.version);
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

/// Why a caller could not read a document.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Not a document id at all.
    #[error("no such document")]
    NotAnId,
    /// No such document, or not one the caller may know exists (never 403).
    #[error("no such document")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A document id from a path (not found if it is not one).
pub fn parse_id(raw: &str) -> Result<Uuid, ReadError> {
    Uuid::parse_str(raw).map_err(|_| ReadError::NotAnId)
}

/// Document `raw_id` now, if `who` may read it (`domain::access::may_read`).
pub fn readable(core: &super::Core, who: &str, raw_id: &str) -> Result<Document, ReadError> {
    let id = parse_id(raw_id)?;
    let doc = document(&core.log, id, None)?.ok_or(ReadError::NotFound)?;
    let now = core.docs.clock.now();
    if !core
        .org
        .read(|org| crate::domain::access::may_read(&doc, org, who, now))
    {
        return Err(ReadError::NotFound);
    }
    Ok(doc)
}

/// Whether `who` may read document `id` now (false if there is none).
pub fn readable_by(core: &super::Core, who: &str, id: Uuid) -> Result<bool, StoreError> {
    let Some(doc) = document(&core.log, id, None)? else {
        return Ok(false);
    };
    let now = core.docs.clock.now();
    Ok(core
        .org
        .read(|org| crate::domain::access::may_read(&doc, org, who, now)))
}

/// The audit trail of a document the caller may read: every event in
/// order, for those who see its drafting (404 for the others).
pub fn trail(
    core: &super::Core,
    who: &str,
    doc: &document::Document,
) -> Result<Vec<serde_json::Value>, ReadError> {
    let now = core.docs.clock.now();
    if !core
        .org
        .read(|org| crate::domain::access::sees_drafting(doc, org, who, now))
    {
        // The audit trail is the issuing agency's (and the officials involved).
        return Err(ReadError::NotFound);
    }
    let records = core
        .log
        .read_stream(&document::stream_id(doc.id), 1, usize::MAX)?;
    Ok(records
        .into_iter()
        .map(|r| {
            serde_json::json!({
                "position": r.position,
                "version": r.version,
                "type": r.event_type,
                "recorded_at": r.recorded_at,
                "actor": r.metadata.actor,
                "payload": r.payload,
            })
        })
        .collect())
}
