//! The organisation as folded from the `org` stream ([`OrgState`]): read
//! by every request, changed by admins' events (validated by `domain::org`,
//! appended, applied in one serialised step), and caught up from the log
//! when another node of a JetStream log recorded a change.
//!
//! Must never: decide an organisation rule (that is `domain::org`'s), mutate
//! the shared organisation in place (a change replaces the `Arc`), or speak HTTP.

use std::sync::{Arc, RwLock};

use crate::domain::org::{Org, OrgError, OrgEvent, STREAM};
use crate::store::{
    AppendError, EventLog, ExpectedVersion, Metadata, NewEvent, RocksLog, StoreError, StreamAppend,
};

/// Why an organisation change was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum OrgFailure {
    /// The change breaks a rule of `domain::org`.
    #[error("{0}")]
    Rule(OrgError),
    /// The log refused or failed the append.
    #[error(transparent)]
    Append(AppendError),
}

/// The organisation as folded from the `org` stream, and that stream's version.
#[derive(Default)]
pub struct OrgState {
    /// The organisation now, shared: a command takes the `Arc`, a change
    /// replaces it (never mutated in place).
    current: RwLock<(Arc<Org>, u64)>,
    /// Serialises changes: validate, append, apply.
    write: tokio::sync::Mutex<()>,
    /// The log read again when its `org` stream moved without this state:
    /// a change recorded through another node of a JetStream log.
    log: Option<RocksLog>,
    /// The seal's digest of the history and the `org` version it covers
    /// ([`OrgState::sealed_digest`]), kept until the stream moves.
    sealed: std::sync::Mutex<Option<(u64, String)>>,
}

impl OrgState {
    /// Reads the whole `org` stream.
    pub fn load(log: &RocksLog) -> Result<Arc<Self>, StoreError> {
        let (events, version) = crate::service::load::org_history(log)?;
        let mut org = Org::default();
        for event in &events {
            org.apply(event);
        }
        Ok(Arc::new(Self {
            current: RwLock::new((Arc::new(org), version)),
            write: Default::default(),
            log: Some(log.clone()),
            sealed: Default::default(),
        }))
    }

    /// Runs `f` on the current organisation.
    pub fn read<T>(&self, f: impl FnOnce(&Org) -> T) -> T {
        f(&self.snapshot())
    }

    /// The current organisation, to hold across an await (no copy).
    pub fn snapshot(&self) -> Arc<Org> {
        self.versioned().0
    }

    /// The current organisation and the `org` stream version it folds.
    fn versioned(&self) -> (Arc<Org>, u64) {
        let (org, version) = self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match &self.log {
            Some(log) => self.catch_up(log, org, version),
            None => (org, version),
        }
    }

    /// `org` at `version`, with what the log's `org` stream has after it
    /// applied (a point read when nothing moved). A log that cannot be
    /// read leaves the organisation as it was: every write path reads the
    /// log again and fails there.
    fn catch_up(&self, log: &RocksLog, org: Arc<Org>, version: u64) -> (Arc<Org>, u64) {
        match log.stream_version(STREAM) {
            Ok(Some(v)) if v > version => {}
            _ => return (org, version),
        }
        let Ok((events, now)) = crate::service::load::org_events_after(log, version) else {
            return (org, version);
        };
        let mut next = (*org).clone();
        for e in &events {
            next.apply(e);
        }
        let next = Arc::new(next);
        let mut cur = self.current.write().unwrap_or_else(|e| e.into_inner());
        if cur.1 < now {
            *cur = (Arc::clone(&next), now);
        }
        (next, now)
    }

    /// What an issue's seal attests of the organisation: the `org` version
    /// and SHA-256 of its authority-relevant history up to it
    /// (`signing::org_sha256` of `signing::sealed_org` at the current seal
    /// version). The history is read from `log` once per version of the
    /// stream, not once per issue. Blocking: call it off the async workers.
    pub fn sealed_digest(&self, log: &dyn EventLog) -> Result<(u64, String), StoreError> {
        use crate::domain::signing::{org_sha256, sealed_org, SEAL_VERSION};
        let now = log.stream_version(STREAM)?.unwrap_or(0);
        let mut cached = self.sealed.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(hit) = cached.as_ref().filter(|(v, _)| *v == now) {
            return Ok(hit.clone());
        }
        let (events, version) = crate::service::load::org_history(log)?;
        let sealed = sealed_org(SEAL_VERSION, &events).expect("the current seal version");
        let digest = (version, org_sha256(&sealed));
        *cached = Some(digest.clone());
        Ok(digest)
    }

    /// Validates, appends and applies events, in one serialised step; every
    /// event carries `metadata` (who, and why where it needs saying).
    pub async fn record(
        &self,
        log: &dyn EventLog,
        events: Vec<OrgEvent>,
        metadata: &Metadata,
        idempotency_key: Option<&str>,
    ) -> Result<crate::store::Appended, OrgFailure> {
        let _guard = self.write.lock().await;
        let to_append = |version: u64| {
            let expected = match version {
                0 => ExpectedVersion::NoStream,
                v => ExpectedVersion::Exact(v),
            };
            let new: Vec<NewEvent> = events
                .iter()
                .map(|e| {
                    let payload = serde_json::to_value(e).expect("org events serialise");
                    NewEvent::new(e.event_type(), payload).with_metadata(metadata.clone())
                })
                .collect();
            vec![StreamAppend::new(STREAM, expected, new)]
        };
        // A retry of an append that already happened is answered before the
        // rules are checked again (the first attempt changed what they see).
        if let Some(key) = idempotency_key {
            let done = log
                .replay_of(to_append(0), key)
                .map_err(OrgFailure::Append)?;
            if let Some(done) = done {
                return Ok(done);
            }
        }
        let (base, version) = self.versioned();
        let mut next = (*base).clone();
        for e in &events {
            next.validate(e).map_err(OrgFailure::Rule)?;
            next.apply(e);
        }
        let appended = log
            .append(to_append(version), idempotency_key)
            .await
            .map_err(OrgFailure::Append)?;
        let written = appended.streams[0].last_version;
        let mut cur = self.current.write().unwrap_or_else(|e| e.into_inner());
        if !appended.replayed && cur.1 < written {
            *cur = (Arc::new(next), written);
        }
        Ok(appended)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agency(code: &str) -> OrgEvent {
        OrgEvent::AgencyCreated {
            code: code.into(),
            name: format!("Agency {code}"),
            parent: None,
            collegial: false,
        }
    }

    /// D15: an issue's seal attests the organisation's history through
    /// `sealed_digest`, which equals the digest of the whole history read
    /// afresh, follows every change, and names the version it covers.
    #[tokio::test]
    async fn the_sealed_digest_is_the_historys_and_follows_changes() {
        use crate::domain::signing::{org_sha256, sealed_org, SEAL_VERSION};
        let dir = tempfile::tempdir().unwrap();
        let log = RocksLog::open(dir.path(), Default::default()).unwrap();
        let state = OrgState::load(&log).unwrap();
        let afresh = |log: &RocksLog| {
            let (events, version) = crate::service::load::org_history(log).unwrap();
            (
                version,
                org_sha256(&sealed_org(SEAL_VERSION, &events).unwrap()),
            )
        };
        assert_eq!(state.sealed_digest(&log).unwrap(), afresh(&log));
        for (i, code) in ["UBND", "SNV", "STTTT"].into_iter().enumerate() {
            state
                .record(&log, vec![agency(code)], &Metadata::default(), None)
                .await
                .unwrap();
            let digest = state.sealed_digest(&log).unwrap();
            assert_eq!(digest.0, i as u64 + 1);
            assert_eq!(digest, afresh(&log));
            // Asked again with nothing new: the same answer.
            assert_eq!(state.sealed_digest(&log).unwrap(), digest);
        }
    }
}
