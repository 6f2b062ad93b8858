//! The one way every document command goes: load, replay a repeated
//! `Idempotency-Key`, check `If-Match`, take the register lock, decide, one
//! atomic append, retry on a fresh state when raced.
//!
//! Must never: write anything for a refused request, or answer a replay
//! with anything but the first answer.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::api::auth::Caller;
use crate::api::problem::{from_append, from_domain, Kind, Problem};
use crate::api::AppState;
use crate::domain::access::{may_read, view};
use crate::domain::document::{
    self, decide, evolve, Command, Ctx, Decision, Document, DocumentEvent, NUMBER_ALLOCATED,
};
use crate::store::{AppendError, ExpectedVersion, Metadata, NewEvent, StoreError, StreamAppend};

use super::*;

/// `If-Match: "N"`: the version the client last saw (`*` means any).
pub(super) fn if_match(req: &HttpRequest) -> Result<Option<u64>, Problem> {
    let Some(v) = req.headers().get(actix_web::http::header::IF_MATCH) else {
        return Ok(None);
    };
    let s = v.to_str().unwrap_or("").trim();
    if s == "*" {
        return Ok(None);
    }
    let n = s
        .trim_start_matches("W/")
        .trim_matches('"')
        .parse::<u64>()
        .map_err(|_| {
            precondition_failed(format!("If-Match {s:?} is not a version this API issued"))
        })?;
    Ok(Some(n))
}

pub(super) fn precondition_failed(detail: String) -> Problem {
    Problem::new(
        Kind::PreconditionFailed,
        "The document changed since the version in If-Match",
    )
    .with_detail(detail)
}

/// The stream recording an idempotent request of `caller` under `key`.
pub(super) fn request_stream(caller: &str, key: &str) -> String {
    let h = Sha256::new()
        .chain_update(caller.as_bytes())
        .chain_update([0])
        .chain_update(key.as_bytes())
        .finalize();
    format!("req-{}", hex::encode(h))
}

/// What an idempotent request did, recorded with its effects.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct RequestRecord {
    pub(super) fingerprint: String,
    pub(super) status: u16,
    pub(super) doc: Uuid,
    pub(super) version: u64,
}

pub(super) fn fingerprint(req: &HttpRequest, body: &[u8]) -> String {
    hex::encode(
        Sha256::new()
            .chain_update(req.method().as_str().as_bytes())
            .chain_update([0])
            .chain_update(req.path().as_bytes())
            .chain_update([0])
            .chain_update(body)
            .finalize(),
    )
}

pub(super) fn respond(
    state: &AppState,
    who: &str,
    status: StatusCode,
    doc: &Document,
    position: u64,
) -> HttpResponse {
    let now = state.docs.clock.now();
    let doc = state.org.read(|org| view(doc, org, who, now));
    let mut r = HttpResponse::build(status);
    r.insert_header(("ETag", format!("\"{}\"", doc.version)))
        .insert_header(("Vanthu-Position", position.to_string()));
    if status == StatusCode::CREATED {
        r.insert_header(("Location", format!("/v1/documents/{}", doc.id)));
    }
    r.json(&doc)
}

/// Answers a replayed request from its record, if there is one.
pub(super) fn replay(
    state: &AppState,
    who: &str,
    stream: &str,
    fp: &str,
) -> Result<Option<HttpResponse>, Problem> {
    let records = state.log.read_stream(stream, 1, 1).map_err(internal)?;
    let Some(first) = records.into_iter().next() else {
        return Ok(None);
    };
    let rec: RequestRecord = serde_json::from_value(first.payload).map_err(|e| {
        internal(StoreError::Corrupt {
            position: first.position,
            reason: format!("a request record does not decode: {e}"),
        })
    })?;
    if rec.fingerprint != fp {
        return Err(Problem::new(
            Kind::IdempotencyKeyReused,
            "This Idempotency-Key was used for a different request",
        )
        .with_detail("replay the original request unchanged, or use a new key"));
    }
    let doc = load(state, rec.doc, Some(rec.version))?.ok_or_else(Problem::not_found)?;
    let status = StatusCode::from_u16(rec.status).unwrap_or(StatusCode::OK);
    Ok(Some(respond(state, who, status, &doc, first.position)))
}

/// The request's parts every command needs.
pub(super) struct Request<'a> {
    pub(super) state: &'a AppState,
    pub(super) caller: &'a Caller,
    pub(super) req: &'a HttpRequest,
    pub(super) body: &'a [u8],
}

pub(super) type Make<'m> = dyn Fn(Option<&Document>, &Ctx<'_>) -> Result<Command, Problem> + 'm;

/// Which register a command numbers in, if any: the lock key.
pub(super) type Lock<'l> = dyn Fn(Option<&Document>, &Ctx<'_>) -> Option<String> + 'l;

/// Runs one command on document `id` end to end. `lock` names the register
/// the command numbers in (issue, receive), if any; it is held from reading
/// the register's version until the append is durable.
pub(super) async fn execute(
    r: Request<'_>,
    id: Uuid,
    create: bool,
    lock: &Lock<'_>,
    make: &Make<'_>,
) -> Result<HttpResponse, Problem> {
    let st = r.state;
    let key = crate::api::idempotency_key(r.req)?;
    let fp = fingerprint(r.req, r.body);
    let req_stream = key.as_deref().map(|k| request_stream(&r.caller.id, k));
    let expected = if_match(r.req)?;
    let mut attempts = 0;
    loop {
        attempts += 1;
        // The document first, then the request record: the record is
        // written in the same batch as the document's events, so a state
        // that already shows a racing first attempt also shows its record
        // (checked the other way round, the attempt could commit in
        // between and this retry be refused by the state it left).
        let doc = load(st, id, None)?;
        if let Some(s) = &req_stream {
            if let Some(resp) = replay(st, &r.caller.id, s, &fp)? {
                return Ok(resp);
            }
        }
        let org = st.org.read(Clone::clone);
        let now = st.docs.clock.now();
        let readable = doc
            .as_ref()
            .is_some_and(|d| may_read(d, &org, &r.caller.id, now));
        if doc.is_none() && !create {
            return Err(Problem::not_found().with_detail("no such document"));
        }
        if doc.is_some() && !readable {
            // Refused before anything about the document (state, version) shows.
            return Err(Problem::forbidden(
                "only officials with a part in this document (its agency, the officials it was routed to, its recipients once issued) act on it",
            ));
        }
        if doc.is_none()
            && r.req
                .headers()
                .contains_key(actix_web::http::header::IF_MATCH)
        {
            // RFC 9110 §13.1.1: If-Match is false when there is no current
            // representation, `*` included.
            return Err(precondition_failed(
                "If-Match names a version, but the document does not exist yet".into(),
            ));
        }
        if let (Some(want), Some(d)) = (expected, &doc) {
            if want != d.version {
                return Err(precondition_failed(format!(
                    "If-Match is version {want}, the document is at version {}",
                    d.version
                )));
            }
        }
        let ctx = Ctx {
            org: &org,
            actor: &r.caller.id,
            now,
            calendar: &st.docs.calendar,
            numbering: &st.docs.numbering,
        };
        let guard = match lock(doc.as_ref(), &ctx) {
            Some(register) => Some(st.docs.register_lock(&register).lock_owned().await),
            None => None,
        };
        let cmd = make(doc.as_ref(), &ctx)?;
        let certificate = match &cmd {
            Command::Sign(accepted) => Some(accepted.certificate().to_owned()),
            _ => None,
        };
        let Decision {
            events,
            register,
            linked,
        } = decide(doc.as_ref(), cmd, &ctx).map_err(from_domain)?;
        let meta = Metadata {
            actor: Some(r.caller.id.clone()),
            correlation_id: Some(id),
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
        let mut appends = vec![StreamAppend::new(
            document::stream_id(id),
            match version {
                0 => ExpectedVersion::NoStream,
                v => ExpectedVersion::Exact(v),
            },
            events.iter().map(to_new).collect(),
        )];
        if let Some((key, allocated)) = &register {
            let number = allocated.number;
            appends.push(StreamAppend::new(
                key.stream_id(),
                match number - 1 {
                    0 => ExpectedVersion::NoStream,
                    v => ExpectedVersion::Exact(v),
                },
                vec![NewEvent::new(
                    NUMBER_ALLOCATED,
                    serde_json::to_value(allocated).expect("register events serialise"),
                )
                .with_metadata(meta.clone())],
            ));
        }
        if let Some((other, other_version, event)) = &linked {
            // Exactly the version the rules saw, so two documents cannot
            // claim the same reply.
            appends.push(StreamAppend::new(
                document::stream_id(*other),
                ExpectedVersion::Exact(*other_version),
                vec![to_new(event)],
            ));
        }
        let status = if version == 0 {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        let new_version = version + events.len() as u64;
        if let Some(s) = &req_stream {
            let record = RequestRecord {
                fingerprint: fp.clone(),
                status: status.as_u16(),
                doc: id,
                version: new_version,
            };
            appends.push(StreamAppend::new(
                s.clone(),
                ExpectedVersion::NoStream,
                vec![NewEvent::new(
                    "request.accepted.v1",
                    serde_json::to_value(&record).expect("request records serialise"),
                )
                .with_metadata(meta.clone())],
            ));
        }
        let appended = match st.log.append(appends, None).await {
            Ok(a) => a,
            // Raced by another command on the register, or on the document
            // when the client did not pin a version (If-Match): decide again
            // on the fresh state. The rules see everything the other command
            // did, so a retry is as safe as a first attempt; commands of
            // different recipient agencies do not depend on each other.
            Err(AppendError::WrongExpectedVersion { stream, .. })
                if attempts < 8
                    && (register
                        .as_ref()
                        .is_some_and(|(k, _)| k.stream_id() == stream)
                        || (expected.is_none() && stream == document::stream_id(id))) =>
            {
                drop(guard);
                continue;
            }
            Err(AppendError::WrongExpectedVersion { stream, .. }) => {
                drop(guard);
                if let Some(s) = &req_stream {
                    // A retry that raced its first attempt: answer from the record.
                    if let Some(resp) = replay(st, &r.caller.id, s, &fp)? {
                        return Ok(resp);
                    }
                }
                if expected.is_some() && stream == document::stream_id(id) {
                    return Err(precondition_failed(
                        "the document changed since the version in If-Match".into(),
                    ));
                }
                return Err(
                    Problem::new(Kind::Conflict, "Changed concurrently; reload and retry")
                        .with_detail(format!("stream {stream} changed while this request ran")),
                );
            }
            Err(e) => return Err(from_append(e)),
        };
        drop(guard);
        let doc = events
            .iter()
            .fold(doc, evolve)
            .ok_or_else(Problem::not_found)?;
        return Ok(respond(
            st,
            &r.caller.id,
            status,
            &doc,
            appended.last_position,
        ));
    }
}

/// The next number in `register` (its stream version + 1).
pub(super) fn next_number(state: &AppState, register: &str) -> Result<u64, Problem> {
    Ok(state
        .log
        .stream_version(register)
        .map_err(internal)?
        .unwrap_or(0)
        + 1)
}

/// The recipient agency a recipient-side command is for: the one named, or
/// the caller's only agency among the document's recipients.
pub(super) fn recipient_agency(
    named: Option<String>,
    doc: Option<&Document>,
    ctx: &Ctx<'_>,
) -> Result<String, Problem> {
    if let Some(a) = named {
        return Ok(a);
    }
    let recipients: Vec<&str> = doc
        .and_then(|d| d.issue.as_ref())
        .map(|i| i.recipients.iter().map(|r| r.agency.as_str()).collect())
        .unwrap_or_default();
    let mine: Vec<String> = ctx
        .org
        .positions_at(ctx.actor, ctx.now)
        .iter()
        .map(|a| a.agency.clone())
        .filter(|a| recipients.contains(&a.as_str()))
        .collect();
    match mine.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(Problem::rule("name the recipient agency in `agency`")),
    }
}
