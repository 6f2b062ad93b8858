//! The one way every document command goes (DESIGN §2): load the document →
//! answer a repeated idempotency key from its record → check the version
//! the caller pinned → take the register lock → build and decide the
//! command → one atomic append (the document's events, any register
//! number, any linked document's event, the idempotency record) → on a
//! race, decide again on a fresh state.
//!
//! Must never: write anything for a refused command, answer a replay with
//! anything but the first answer, or number a document outside the
//! register's stream version.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::clock::Clock;
use crate::crypto::keystore::{seal_compact, Keystore};
use crate::domain::access::may_read;
use crate::domain::calendar::Calendar;
use crate::domain::document::{
    self, decide, evolve, Command, Ctx, Decision, Document, DocumentEvent, DomainError,
    NUMBER_ALLOCATED,
};
use crate::domain::numbering::Policy;
use crate::domain::org::Org;
use crate::store::{
    AppendError, EventLog, ExpectedVersion, Metadata, NewEvent, StoreError, StreamAppend,
};

/// One lock per register around "read the register's version, append the
/// next number", so concurrent issues queue instead of conflicting.
#[derive(Default)]
pub struct RegisterLocks(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl RegisterLocks {
    fn get(&self, register: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(map.entry(register.to_owned()).or_default())
    }
}

/// What a command runs against.
pub struct Env<'a> {
    pub log: &'a dyn EventLog,
    /// The organisation now (read again on every attempt).
    pub org: &'a (dyn Fn() -> Arc<Org> + Sync),
    pub clock: &'a Clock,
    pub calendar: &'a Calendar,
    pub numbering: &'a Policy,
    pub locks: &'a RegisterLocks,
    /// Documents as last folded (`load::current`).
    pub documents: &'a crate::service::load::DocumentCache,
}

/// The version the caller last saw (HTTP `If-Match`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfMatch {
    /// No condition.
    Absent,
    /// Any current version (`*`): the document must exist.
    Any,
    Version(u64),
}

/// A repeatable request: the caller's key and what the request said.
#[derive(Debug, Clone)]
pub struct Idempotency {
    /// The stream recording the request (`request_stream`).
    pub stream: String,
    /// A digest of the request; a replay must match it.
    pub fingerprint: String,
}

impl Idempotency {
    pub fn new(actor: &str, key: &str, fingerprint: String) -> Self {
        Self {
            stream: request_stream(actor, key),
            fingerprint,
        }
    }
}

/// Who runs which command on which document, under what conditions.
pub struct Spec<'a> {
    pub actor: &'a str,
    pub document: Uuid,
    /// Whether the command may create the document (a draft).
    pub create: bool,
    pub if_match: IfMatch,
    pub idempotency: Option<Idempotency>,
    /// The id of the request that asked (recorded in every event's metadata).
    pub request_id: Option<&'a str>,
}

/// What a command did (or, replayed, what it did the first time).
#[derive(Debug)]
pub struct Outcome {
    /// The command created the document.
    pub created: bool,
    pub document: Document,
    /// The log position of the last record written.
    pub position: u64,
}

/// Why a command was not carried out; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum Failure<E> {
    #[error("no such document")]
    NotFound,
    #[error("only officials with a part in this document (its agency, the officials it was routed to, its recipients once issued) act on it")]
    NotAParty,
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("this idempotency key was used for a different request")]
    KeyReused,
    #[error("stream {0} changed while this command ran")]
    Conflict(String),
    /// Building the command refused it (the caller's own reason).
    #[error("{0}")]
    Refused(E),
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Append(AppendError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Builds the command from the state the rules will see.
pub type Make<'m, E> = dyn Fn(Option<&Document>, &Ctx<'_>) -> Result<Command, E> + Sync + 'm;

/// Which register a command numbers in, if any: the lock key.
pub type Lock<'l> = dyn Fn(Option<&Document>, &Ctx<'_>) -> Option<String> + Sync + 'l;

/// The stream recording an idempotent request of `actor` under `key`.
pub fn request_stream(actor: &str, key: &str) -> String {
    let h = Sha256::new()
        .chain_update(actor.as_bytes())
        .chain_update([0])
        .chain_update(key.as_bytes())
        .finalize();
    format!("req-{}", hex::encode(h))
}

/// What an idempotent request did, recorded with its effects.
#[derive(Debug, Serialize, Deserialize)]
struct RequestRecord {
    fingerprint: String,
    /// 201 when it created the document, else 200 (the HTTP status, kept
    /// as first recorded).
    status: u16,
    doc: Uuid,
    version: u64,
}

fn request_record(
    log: &dyn EventLog,
    stream: &str,
) -> Result<Option<(u64, RequestRecord)>, StoreError> {
    let Some(first) = log.read_stream(stream, 1, 1)?.into_iter().next() else {
        return Ok(None);
    };
    let rec = serde_json::from_value(first.payload).map_err(|e| StoreError::Corrupt {
        position: first.position,
        reason: format!("a request record does not decode: {e}"),
    })?;
    Ok(Some((first.position, rec)))
}

/// The document a recorded request acted on, if `idempotency` was used:
/// a replayed create lands on the same id.
pub fn recorded_document(
    log: &dyn EventLog,
    idempotency: &Idempotency,
) -> Result<Option<Uuid>, StoreError> {
    Ok(request_record(log, &idempotency.stream)?.map(|(_, r)| r.doc))
}

/// The first answer to a repeated request, if there was one.
fn replay<E>(log: &dyn EventLog, idempotency: &Idempotency) -> Result<Option<Outcome>, Failure<E>> {
    let Some((position, rec)) = request_record(log, &idempotency.stream)? else {
        return Ok(None);
    };
    if rec.fingerprint != idempotency.fingerprint {
        return Err(Failure::KeyReused);
    }
    let document = crate::service::load::document(log, rec.doc, Some(rec.version))?
        .ok_or(Failure::NotFound)?;
    Ok(Some(Outcome {
        created: rec.status == 201,
        document,
        position,
    }))
}

fn expected(version: u64) -> ExpectedVersion {
    match version {
        0 => ExpectedVersion::NoStream,
        v => ExpectedVersion::Exact(v),
    }
}

/// How often a command that lost a race on its register or document is
/// decided again before the caller gets 409.
pub const RACES: u32 = 32;

/// Before deciding again after losing race number `lost` on `stream`:
/// waits (a few seconds at most) until this node's log holds the version
/// the store said won, `actual` (on a replica, JetStream, the winner's
/// append may not be here yet, and a retry before it would read the same
/// stale version and lose again); then a random pause of up to
/// 2^`lost` ms (at most 256), so two nodes contending for one register
/// take turns rather than one starving.
async fn before_retry(
    log: &dyn EventLog,
    stream: &str,
    actual: Option<u64>,
    lost: u32,
) -> Result<(), StoreError> {
    if let Some(actual) = actual {
        for _ in 0..300 {
            if log.stream_version(stream)?.unwrap_or(0) >= actual {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
    let mut b = [0u8; 2];
    // Without the system's randomness, no pause: still correct, less fair.
    let random = getrandom::fill(&mut b).map_or(0, |()| u64::from(u16::from_be_bytes(b)));
    let pause = random % ((1u64 << lost.min(8)) + 1);
    tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
    Ok(())
}

/// Runs one command on `spec.document` end to end. `lock` names the
/// register the command numbers in (issue, receive), if any; it is held
/// from reading the register's version until the append is durable.
#[tracing::instrument(name = "command", skip_all, fields(document = %spec.document, actor = spec.actor))]
pub async fn run<E>(
    env: &Env<'_>,
    spec: Spec<'_>,
    lock: &Lock<'_>,
    make: &Make<'_, E>,
) -> Result<Outcome, Failure<E>> {
    let id = spec.document;
    let mut attempts = 0;
    loop {
        attempts += 1;
        // The document first, then the request record: the record is
        // written in the same batch as the document's events, so a state
        // that already shows a racing first attempt also shows its record
        // (checked the other way round, the attempt could commit in
        // between and this retry be refused by the state it left).
        let doc = crate::service::load::current(env.log, env.documents, id)?;
        if let Some(idem) = &spec.idempotency {
            if let Some(done) = replay(env.log, idem)? {
                return Ok(done);
            }
        }
        let org = (env.org)();
        let now = env.clock.now();
        match (&doc, spec.if_match) {
            (None, _) if !spec.create => return Err(Failure::NotFound),
            (Some(d), _) if !may_read(d, &org, spec.actor, now) => {
                // Refused before anything about the document (state, version) shows.
                return Err(Failure::NotAParty);
            }
            // RFC 9110 §13.1.1: If-Match is false when there is no current
            // representation, `*` included.
            (None, IfMatch::Any | IfMatch::Version(_)) => {
                return Err(Failure::PreconditionFailed(
                    "If-Match names a version, but the document does not exist yet".into(),
                ))
            }
            (Some(d), IfMatch::Version(want)) if want != d.version => {
                return Err(Failure::PreconditionFailed(format!(
                    "If-Match is version {want}, the document is at version {}",
                    d.version
                )));
            }
            _ => {}
        }
        let ctx = Ctx {
            org: &org,
            actor: spec.actor,
            now,
            calendar: env.calendar,
            numbering: env.numbering,
        };
        let guard = match lock(doc.as_ref(), &ctx) {
            Some(register) => Some(env.locks.get(&register).lock_owned().await),
            None => None,
        };
        let cmd = make(doc.as_ref(), &ctx).map_err(Failure::Refused)?;
        let certificate = match &cmd {
            Command::Sign(accepted) => Some(accepted.certificate().to_owned()),
            _ => None,
        };
        let Decision {
            events,
            register,
            linked,
        } = decide(doc.as_ref(), cmd, &ctx)?;
        let meta = Metadata {
            actor: Some(spec.actor.to_owned()),
            correlation_id: Some(id),
            request_id: spec.request_id.map(str::to_owned),
            certificate,
            ..Default::default()
        };
        let to_new = |e: &DocumentEvent| {
            NewEvent::new(
                e.event_type(),
                serde_json::to_value(e).expect("document events serialise"),
            )
            .with_metadata(meta.clone())
        };
        let version = doc.as_ref().map_or(0, |d| d.version);
        let own: Vec<NewEvent> = events.iter().map(to_new).collect();
        // What the command's first event causes elsewhere (the register's
        // number, the linked document's event, the request record) names
        // it as its cause; the first event's cause is the request itself.
        let caused = Metadata {
            causation_id: own.first().map(|e| e.id),
            ..meta.clone()
        };
        let mut appends = vec![StreamAppend::new(
            document::stream_id(id),
            expected(version),
            own,
        )];
        if let Some((key, allocated)) = &register {
            appends.push(StreamAppend::new(
                key.stream_id(),
                expected(allocated.number - 1),
                vec![NewEvent::new(
                    NUMBER_ALLOCATED,
                    serde_json::to_value(allocated).expect("register events serialise"),
                )
                .with_metadata(caused.clone())],
            ));
        }
        if let Some((other, other_version, event)) = &linked {
            // Exactly the version the rules saw, so two documents cannot
            // claim the same reply.
            appends.push(StreamAppend::new(
                document::stream_id(*other),
                ExpectedVersion::Exact(*other_version),
                vec![to_new(event).with_metadata(caused.clone())],
            ));
        }
        let created = version == 0;
        if let Some(idem) = &spec.idempotency {
            let record = RequestRecord {
                fingerprint: idem.fingerprint.clone(),
                status: if created { 201 } else { 200 },
                doc: id,
                version: version + events.len() as u64,
            };
            appends.push(StreamAppend::new(
                idem.stream.clone(),
                ExpectedVersion::NoStream,
                vec![NewEvent::new(
                    "request.accepted.v1",
                    serde_json::to_value(&record).expect("request records serialise"),
                )
                .with_metadata(caused.clone())],
            ));
        }
        let pinned = matches!(spec.if_match, IfMatch::Version(_));
        let appended = match env.log.append(appends, None).await {
            Ok(a) => a,
            // Raced by another command on the register, or on the document
            // when the caller did not pin a version: decide again on the
            // fresh state. The rules see everything the other command did,
            // so a retry is as safe as a first attempt; commands of
            // different recipient agencies do not depend on each other.
            Err(AppendError::WrongExpectedVersion { stream, actual, .. })
                if attempts < RACES
                    && (register
                        .as_ref()
                        .is_some_and(|(k, _)| k.stream_id() == stream)
                        || (!pinned && stream == document::stream_id(id))) =>
            {
                drop(guard);
                before_retry(env.log, &stream, actual, attempts).await?;
                continue;
            }
            Err(AppendError::WrongExpectedVersion { stream, .. }) => {
                drop(guard);
                if let Some(idem) = &spec.idempotency {
                    // A retry that raced its first attempt: answer from the record.
                    if let Some(done) = replay(env.log, idem)? {
                        return Ok(done);
                    }
                }
                if pinned && stream == document::stream_id(id) {
                    return Err(Failure::PreconditionFailed(
                        "the document changed since the version in If-Match".into(),
                    ));
                }
                return Err(Failure::Conflict(stream));
            }
            Err(e) => return Err(Failure::Append(e)),
        };
        drop(guard);
        let document = events.iter().fold(doc, evolve).ok_or(Failure::NotFound)?;
        return Ok(Outcome {
            created,
            document,
            position: appended.last_position,
        });
    }
}

/// What one attempt of a racing append decided on the state it read.
pub enum Attempt<T> {
    /// Write these, atomically (each at the version the attempt saw).
    Append(Vec<StreamAppend>),
    /// Nothing to write: the answer.
    Done(T),
}

/// How a racing append ended.
pub enum Raced<T> {
    Appended(crate::store::Appended),
    Done(T),
}

/// Why a racing append ended without writing.
#[derive(Debug, thiserror::Error)]
pub enum RaceError<E> {
    /// The attempt refused (the caller's own reason).
    #[error("{0}")]
    Decided(E),
    /// Lost [`RACES`] races in a row, the last on this stream.
    #[error("stream {0} kept changing")]
    KeptChanging(String),
    #[error(transparent)]
    Append(AppendError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Appends what `attempt` decides, deciding again on a race: the same race
/// handling as [`run`]'s (wait until this node's log holds the winner,
/// then a random pause, up to [`RACES`] tries), for appends that are not
/// document commands (the interchange's arrivals, statuses, recalls and
/// reply links). `attempt` reads its state afresh from the log each time;
/// every stream it appends to must carry the version it saw.
pub async fn append_racing<T, E>(
    log: &dyn EventLog,
    mut attempt: impl FnMut() -> Result<Attempt<T>, E>,
) -> Result<Raced<T>, RaceError<E>> {
    let mut lost = 0;
    loop {
        let appends = match attempt().map_err(RaceError::Decided)? {
            Attempt::Done(answer) => return Ok(Raced::Done(answer)),
            Attempt::Append(appends) => appends,
        };
        match log.append(appends, None).await {
            Ok(appended) => return Ok(Raced::Appended(appended)),
            Err(AppendError::WrongExpectedVersion { stream, actual, .. }) => {
                lost += 1;
                if lost >= RACES {
                    return Err(RaceError::KeptChanging(stream));
                }
                before_retry(log, &stream, actual, lost).await?;
            }
            Err(e) => return Err(RaceError::Append(e)),
        }
    }
}

/// The next number in `register` (its stream version + 1).
pub fn next_number(log: &dyn EventLog, register: &str) -> Result<u64, StoreError> {
    Ok(log.stream_version(register)?.unwrap_or(0) + 1)
}

/// Why an issue command could not be built.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("the document has no signature")]
    Unsigned,
    #[error("the seal of {agency} could not be applied: {reason}")]
    Seal { agency: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The issue command for `doc`: the plan, the register's next number, and
/// the agency's seal over the document, its number and the organisation's
/// history as of now (`OrgState::sealed_digest`). Blocking (it reads the
/// log and calls the seal signer): the HTTP edge runs it on a blocking
/// thread before the register's lock is taken (`api::documents::ahead`).
pub fn issue(
    log: &dyn EventLog,
    keystore: &dyn Keystore,
    org: &crate::service::org::OrgState,
    doc: &Document,
    ctx: &Ctx<'_>,
) -> Result<Command, IssueError> {
    let plan = document::plan_issue(doc, ctx)?;
    let number = next_number(log, &plan.register.stream_id())?;
    let (org_version, org_sha256) = org.sealed_digest(log)?;
    let seal_payload = plan
        .seal_payload(doc, number, &org_sha256)
        .ok_or(IssueError::Unsigned)?;
    let seal = keystore
        .seal(&doc.agency)
        .and_then(|s| seal_compact(s, &seal_payload.canonical(), ctx.now.timestamp()))
        .map_err(|e| IssueError::Seal {
            agency: doc.agency.clone(),
            reason: e.to_string(),
        })?;
    Ok(Command::Issue {
        plan,
        number,
        seal,
        seal_payload,
        org_version,
    })
}

/// The register `issue` numbers in: its lock key.
pub fn issue_register(doc: Option<&Document>, ctx: &Ctx<'_>) -> Option<String> {
    doc.and_then(|d| document::plan_issue(d, ctx).ok())
        .map(|p| p.register.stream_id())
}

#[cfg(test)]
#[path = "commands_tests.rs"]
mod tests;
