//! An append validated and canonicalised before any backend sees it
//! (`Prepared`): the limits on streams, events and record size, canonical
//! payload bytes, the content and event-id fingerprints, and the answer an
//! earlier durable append gives a retry (`replay_by_ids`, `replay_from`).
//! Both the RocksDB writer and the JetStream log use it, so both refuse and
//! replay the same appends.
//!
//! Must never: write anything, or judge an append against stream heads
//! (that is the writer's, with its batch in view).

use std::collections::HashSet;

use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::codec::{self, keys, PreEncoded};
use super::rocks::{cf, Db, CF_IDS, CF_LOG};
use super::{
    AppendError, Appended, ExpectedVersion, StoreError, StreamAppend, StreamAppended,
    MAX_APPEND_BYTES, MAX_EVENTS_PER_APPEND, MAX_RECORD_BYTES,
};

/// An append validated and canonicalised on the caller's thread.
pub(super) struct Prepared {
    pub(super) streams: Vec<PreparedStream>,
    /// Explicit idempotency key, if any.
    pub(super) key: Option<String>,
    /// Streams, types and payloads, in order.
    pub(super) content_fp: [u8; 32],
    /// `content_fp` and every event id, in order.
    pub(super) ids_fp: [u8; 32],
    pub(super) event_count: usize,
    pub(super) bytes: usize,
}

pub(super) struct PreparedStream {
    pub(super) stream: String,
    pub(super) expected: ExpectedVersion,
    pub(super) events: Vec<PreEncoded>,
}

impl Prepared {
    pub(super) fn new(streams: Vec<StreamAppend>, key: Option<&str>) -> Result<Self, AppendError> {
        if let Some(k) = key {
            codec::validate_idempotency_key(k)?;
        }
        if streams.is_empty() {
            return Err(AppendError::Invalid(
                "an append needs at least one stream".into(),
            ));
        }
        let mut seen_streams = HashSet::new();
        let mut seen_ids = HashSet::new();
        let mut bytes = 0usize;
        let mut event_count = 0usize;
        let mut out = Vec::with_capacity(streams.len());
        for s in streams {
            codec::validate_stream_id(&s.stream)?;
            if !seen_streams.insert(s.stream.clone()) {
                return Err(AppendError::Invalid(format!(
                    "stream {} appears twice in one append",
                    s.stream
                )));
            }
            if s.events.is_empty() {
                return Err(AppendError::Invalid(format!(
                    "no events for stream {}",
                    s.stream
                )));
            }
            if let ExpectedVersion::Exact(0) = s.expected {
                return Err(AppendError::Invalid(
                    "versions start at 1; use NoStream for a new stream".into(),
                ));
            }
            let mut events = Vec::with_capacity(s.events.len());
            for e in s.events {
                if !seen_ids.insert(e.id) {
                    return Err(AppendError::Invalid(format!(
                        "event id {} appears twice",
                        e.id
                    )));
                }
                let pre = PreEncoded::new(e.id, &e.event_type, &e.payload, &e.metadata)?;
                let longest = pre.max_encoded_len(&s.stream);
                if longest > MAX_RECORD_BYTES {
                    return Err(AppendError::Invalid(format!(
                        "event {} would make a record of up to {longest} bytes; a log record is at most {MAX_RECORD_BYTES} bytes (its entry in a tile bundle has a 16-bit length). Upload long content as a file and cite it by digest",
                        e.id
                    )));
                }
                bytes += pre.payload.len() + pre.metadata.len();
                event_count += 1;
                events.push(pre);
            }
            out.push(PreparedStream {
                stream: s.stream,
                expected: s.expected,
                events,
            });
        }
        if event_count > MAX_EVENTS_PER_APPEND {
            return Err(AppendError::Invalid(format!(
                "{event_count} events in one append; at most {MAX_EVENTS_PER_APPEND}"
            )));
        }
        if bytes > MAX_APPEND_BYTES {
            return Err(AppendError::Invalid(format!(
                "{bytes} bytes in one append; at most {MAX_APPEND_BYTES}"
            )));
        }
        let content_fp = fingerprint(out.iter().flat_map(|s| {
            s.events.iter().map(|e| {
                (
                    s.stream.as_str(),
                    e.event_type.as_str(),
                    e.payload.as_slice(),
                )
            })
        }));
        let mut h = Sha256::new();
        h.update(content_fp);
        for s in &out {
            for e in &s.events {
                h.update(e.event_id.as_bytes());
            }
        }
        Ok(Self {
            streams: out,
            key: key.map(str::to_owned),
            content_fp,
            ids_fp: h.finalize().into(),
            event_count,
            bytes,
        })
    }

    /// SHA-256 over the append's streams, types and canonical payloads.
    pub(super) fn content_fingerprint(&self) -> [u8; 32] {
        self.content_fp
    }

    pub(super) fn event_count(&self) -> usize {
        self.event_count
    }

    pub(super) fn first_event_id(&self) -> Uuid {
        // `new` refuses appends without events, so there is a first one.
        self.streams[0].events[0].event_id
    }

    pub(super) fn event_ids(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.streams
            .iter()
            .flat_map(|s| s.events.iter().map(|e| e.event_id))
    }
}

/// An earlier append found under a dedup key.
pub(super) struct Prior {
    pub(super) appended: Appended,
    pub(super) fingerprint: [u8; 32],
}

pub(super) fn replayed(appended: Appended) -> Appended {
    Appended {
        replayed: true,
        ..appended
    }
}

/// Rebuilds an append's outcome from its records (consecutive, request
/// order, the first at `first`).
pub(super) fn summarise(records: &[codec::Record], first: u64) -> Appended {
    let mut streams: Vec<StreamAppended> = Vec::new();
    for r in records {
        match streams.last_mut() {
            Some(s) if s.stream == r.stream => s.last_version = r.version,
            _ => streams.push(StreamAppended {
                stream: r.stream.clone(),
                first_version: r.version,
                last_version: r.version,
            }),
        }
    }
    Appended {
        first_position: first,
        last_position: first + records.len().max(1) as u64 - 1,
        streams,
        replayed: false,
    }
}

/// The durable append stored under dedup key `key` (an `ids` entry:
/// first position, event count, fingerprint), rebuilt from its records.
pub(super) fn stored_prior(db: &Db, key: &[u8]) -> Result<Option<Prior>, StoreError> {
    let Some(v) = db.get_pinned_cf(&cf(db, CF_IDS), key)? else {
        return Ok(None);
    };
    if v.len() != 44 {
        return Err(StoreError::Corrupt {
            position: 0,
            reason: format!("a dedup entry has {} bytes, not 44", v.len()),
        });
    }
    let first = keys::parse_position(&v[..8])?;
    let count = u32::from_be_bytes(v[8..12].try_into().expect("4 bytes")) as u64;
    let fingerprint: [u8; 32] = v[12..44].try_into().expect("32 bytes");
    let log = cf(db, CF_LOG);
    let mut records = Vec::with_capacity(count as usize);
    for pos in first..first + count {
        match db.get_pinned_cf(&log, keys::position(pos))? {
            Some(bytes) => records.push(codec::decode(&bytes)?),
            None => break,
        }
    }
    if records.len() as u64 != count {
        return Err(StoreError::Corrupt {
            position: first,
            reason: format!("a dedup entry covers {count} events but fewer exist"),
        });
    }
    Ok(Some(Prior {
        appended: summarise(&records, first),
        fingerprint,
    }))
}

impl Prepared {
    /// What an earlier durable append whose first event has this one's
    /// first id means for this one: its outcome (replayed) when it carried
    /// the very same events, `DuplicateEventId` otherwise, or nothing.
    pub(super) fn replay_by_ids(&self, db: &Db) -> Result<Option<Appended>, AppendError> {
        let first = self.first_event_id();
        match stored_prior(db, &keys::first_event(&first))? {
            Some(prior) if prior.fingerprint == self.ids_fp => Ok(Some(replayed(prior.appended))),
            Some(prior) => Err(AppendError::DuplicateEventId {
                id: first,
                position: prior.appended.first_position,
            }),
            None => Ok(None),
        }
    }

    /// What an earlier durable append under the same idempotency key means
    /// for this one: its outcome (replayed), a conflict, or nothing.
    pub(super) fn replay_from(&self, db: &Db) -> Result<Option<Appended>, AppendError> {
        let Some(key) = &self.key else {
            return Ok(None);
        };
        match stored_prior(db, &keys::dedup(key))? {
            Some(prior) if prior.fingerprint == self.content_fp => {
                Ok(Some(replayed(prior.appended)))
            }
            Some(_) => Err(AppendError::IdempotencyConflict { key: key.clone() }),
            None => Ok(None),
        }
    }
}

/// Content fingerprint of an append: streams, types and canonical payloads,
/// in order (ids, metadata and expected versions excluded, so a client's
/// retry with fresh ids still matches).
pub(super) fn fingerprint<'a>(
    items: impl Iterator<Item = (&'a str, &'a str, &'a [u8])>,
) -> [u8; 32] {
    let mut h = Sha256::new();
    for (stream, event_type, payload) in items {
        for part in [stream.as_bytes(), event_type.as_bytes(), payload] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
    }
    h.finalize().into()
}
