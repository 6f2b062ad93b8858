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
//! Must never: decide a rule itself (they are `domain::document`'s), write
//! anything for a refused request, or number a document outside the
//! register's stream version.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::auth::Caller;
use super::problem::{from_append, from_domain, Kind, Problem};
use super::AppState;
use crate::bundle::{Bundle, Signed as BundleSigned, FORMAT};
use crate::clock::Clock;
use crate::crypto::keystore::{seal_compact, Keystore};
use crate::domain::access::{may_cite, may_read, sees_drafting, view};
use crate::domain::authority::{judge, SigningAct};
use crate::domain::document::{
    self, decide, evolve, Command, Ctx, DeadlineScope, Decision, Document, DocumentEvent, Draft,
    OpinionKind, Recipient, Rejection, RoutePurpose, NUMBER_ALLOCATED,
};
use crate::domain::numbering::Policy;
use crate::domain::org::{Authority, OrgEvent};
use crate::domain::signing::{org_sha256, ContentRef};
use crate::store::{AppendError, ExpectedVersion, Metadata, NewEvent, StoreError, StreamAppend};

/// One lock per register around "read the register's version, append the
/// next number", so concurrent issues queue instead of conflicting.
#[derive(Default)]
pub struct RegisterLocks(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

/// What document commands need besides the log and the organisation.
pub struct Services {
    /// Trust anchors and CRLs (reloaded and fetched in the background).
    pub crls: Arc<crate::crls::CrlStore>,
    pub keystore: Box<dyn Keystore>,
    pub calendar: crate::domain::calendar::Calendar,
    /// "Due soon" means within this many working days.
    pub due_soon_days: u32,
    pub numbering: Policy,
    pub clock: Clock,
    /// Document files: size limit, quota, collection.
    pub blobs: super::blobs::BlobPolicy,
    /// One lock per agency around "read the register's version, append the
    /// next number", so concurrent issues queue instead of conflicting.
    pub registers: RegisterLocks,
}

impl Services {
    fn register_lock(&self, agency: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.registers.0.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(map.entry(agency.to_owned()).or_default())
    }
}

// ---------------------------------------------------------------- helpers

use super::problem::from_store as internal;

use super::loading::{load, load_readable, parse_id};

/// `If-Match: "N"`: the version the client last saw (`*` means any).
fn if_match(req: &HttpRequest) -> Result<Option<u64>, Problem> {
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

fn precondition_failed(detail: String) -> Problem {
    Problem::new(
        Kind::PreconditionFailed,
        "The document changed since the version in If-Match",
    )
    .with_detail(detail)
}

/// The stream recording an idempotent request of `caller` under `key`.
fn request_stream(caller: &str, key: &str) -> String {
    let h = Sha256::new()
        .chain_update(caller.as_bytes())
        .chain_update([0])
        .chain_update(key.as_bytes())
        .finalize();
    format!("req-{}", hex::encode(h))
}

/// What an idempotent request did, recorded with its effects.
#[derive(Debug, Serialize, Deserialize)]
struct RequestRecord {
    fingerprint: String,
    status: u16,
    doc: Uuid,
    version: u64,
}

fn fingerprint(req: &HttpRequest, body: &[u8]) -> String {
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

fn respond(
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
fn replay(
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
struct Request<'a> {
    state: &'a AppState,
    caller: &'a Caller,
    req: &'a HttpRequest,
    body: &'a [u8],
}

type Make<'m> = dyn Fn(Option<&Document>, &Ctx<'_>) -> Result<Command, Problem> + 'm;

/// Which register a command numbers in, if any: the lock key.
type Lock<'l> = dyn Fn(Option<&Document>, &Ctx<'_>) -> Option<String> + 'l;

/// Runs one command on document `id` end to end. `lock` names the register
/// the command numbers in (issue, receive), if any; it is held from reading
/// the register's version until the append is durable.
async fn execute(
    r: Request<'_>,
    id: Uuid,
    create: bool,
    lock: &Lock<'_>,
    make: &Make<'_>,
) -> Result<HttpResponse, Problem> {
    let st = r.state;
    let key = super::idempotency_key(r.req)?;
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
fn next_number(state: &AppState, register: &str) -> Result<u64, Problem> {
    Ok(state
        .log
        .stream_version(register)
        .map_err(internal)?
        .unwrap_or(0)
        + 1)
}

/// The recipient agency a recipient-side command is for: the one named, or
/// the caller's only agency among the document's recipients.
fn recipient_agency(
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

// ---------------------------------------------------------------- bodies

/// `POST /v1/documents`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DraftRequest {
    /// Issuing agency; default: the author's agency.
    #[serde(default)]
    pub agency: Option<String>,
    /// Default: the author's unit.
    #[serde(default)]
    pub drafting_unit: Option<String>,
    pub doc_type: String,
    pub title: String,
    pub content: Vec<ContentRef>,
    #[serde(default)]
    pub urgency: document::Urgency,
    #[serde(default)]
    pub confidentiality: document::Confidentiality,
    #[serde(default)]
    pub recipients: Vec<Recipient>,
}

impl DraftRequest {
    fn draft(&self) -> Draft {
        draft_of(
            &self.doc_type,
            &self.title,
            &self.content,
            self.urgency,
            self.confidentiality,
            &self.recipients,
        )
    }
}

/// The domain's draft from a request's fields (type codes are upper-case).
fn draft_of(
    doc_type: &str,
    title: &str,
    content: &[ContentRef],
    urgency: document::Urgency,
    confidentiality: document::Confidentiality,
    recipients: &[Recipient],
) -> Draft {
    Draft {
        doc_type: doc_type.to_ascii_uppercase(),
        title: title.to_owned(),
        content: content.to_vec(),
        urgency,
        confidentiality,
        recipients: recipients.to_vec(),
    }
}

/// `POST …/revisions`: the whole editable draft, plus a note.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevisionRequest {
    pub doc_type: String,
    pub title: String,
    pub content: Vec<ContentRef>,
    #[serde(default)]
    pub urgency: document::Urgency,
    #[serde(default)]
    pub confidentiality: document::Confidentiality,
    #[serde(default)]
    pub recipients: Vec<Recipient>,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteRequest {
    pub to: String,
    pub purpose: RoutePurpose,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonRequest {
    pub reason: String,
}

/// `POST …/opinions`: ask (`from` + `question`) or answer (`opinion` + `comment`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpinionRequest {
    #[serde(default)]
    pub from: Option<Vec<String>>,
    #[serde(default)]
    pub question: Option<String>,
    #[serde(default)]
    pub opinion: Option<OpinionKind>,
    #[serde(default)]
    pub comment: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignatureRequest {
    /// Compact JWS over the canonical signing payload.
    pub jws: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmptyRequest {}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplacementRequest {
    pub replacement: Uuid,
    pub reason: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiptRequest {
    #[serde(default)]
    pub agency: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignmentRequest {
    #[serde(default)]
    pub agency: Option<String>,
    pub lead: String,
    #[serde(default)]
    pub coordinating: Vec<String>,
    #[serde(default)]
    pub fyi: Vec<String>,
    #[serde(default)]
    pub handler: Option<String>,
    pub instruction: String,
    #[serde(default)]
    pub deadline: Option<NaiveDate>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtensionRequest {
    /// The recipient agency whose deadline moves.
    #[serde(default)]
    pub agency: Option<String>,
    pub scope: DeadlineScope,
    pub new: NaiveDate,
    pub reason: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyRequest {
    #[serde(default)]
    pub agency: Option<String>,
    #[serde(default)]
    pub unit: Option<String>,
    /// The issued reply document.
    pub reply: Uuid,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompletionRequest {
    #[serde(default)]
    pub agency: Option<String>,
    #[serde(default)]
    pub unit: Option<String>,
}

// ---------------------------------------------------------------- handlers

/// Content a draft may cite (`domain::access::may_cite`): a file the
/// caller uploaded (marked in use, so collection leaves it alone), one the
/// document being revised already cites, or one that a document the caller
/// may read cites. Knowing a hash is not enough: an unknown blob and
/// someone else's answer alike, so nothing shows whether the other exists.
fn check_blobs(
    state: &AppState,
    caller: &str,
    content: &[ContentRef],
    current: Option<&Document>,
) -> Result<(), Problem> {
    let now = state.docs.clock.now();
    for c in content {
        let in_current =
            current.is_some_and(|d| d.draft.content.iter().any(|x| x.sha256 == c.sha256));
        let uploaded = || {
            state
                .log
                .touch_blob_upload(&c.sha256, caller, now.timestamp())
                .map_err(internal)
        };
        let readable_citer = || super::blobs::cited_by_readable(state, caller, &c.sha256);
        if !may_cite(in_current, uploaded, readable_citer)? {
            return Err(Problem::rule(format!(
                "content {:?}: no blob {} that you uploaded or that a document you may read cites; upload it with POST /v1/blobs first",
                c.name, c.sha256
            )));
        }
    }
    Ok(())
}

/// `POST /v1/documents`: a new draft.
#[utoipa::path(post, path = "/v1/documents", request_body = DraftRequest,
    responses((status = 201, description = "The new draft; Location, ETag, Vanthu-Position"),
              (status = 400), (status = 401), (status = 403), (status = 413), (status = 415), (status = 422)))]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let body = super::body::read_body(payload, super::JSON_LIMIT).await?;
    let request: DraftRequest = super::body::parse_json(&req, &body)?;
    check_blobs(&state, &caller.id, &request.content, None)?;
    let id = match super::idempotency_key(&req)? {
        // A replayed create must land on the same id: derive it from the key.
        Some(k) => {
            let stream = request_stream(&caller.id, &k);
            let records = state.log.read_stream(&stream, 1, 1).map_err(internal)?;
            match records.first() {
                Some(r) => serde_json::from_value::<RequestRecord>(r.payload.clone())
                    .map(|rec| rec.doc)
                    .unwrap_or_else(|_| Uuid::now_v7()),
                None => Uuid::now_v7(),
            }
        }
        None => Uuid::now_v7(),
    };
    let r = Request {
        state: &state,
        caller: &caller,
        req: &req,
        body: &body,
    };
    execute(r, id, true, &|_, _| None, &|_, ctx| {
        let agency = match &request.agency {
            Some(a) => a.clone(),
            None => {
                let mine: Vec<String> = ctx
                    .org
                    .positions_at(ctx.actor, ctx.now)
                    .iter()
                    .map(|a| a.agency.clone())
                    .collect();
                match mine.as_slice() {
                    [one] => one.clone(),
                    [] => {
                        return Err(Problem::forbidden(format!(
                            "{} holds no position and cannot draft",
                            ctx.actor
                        )))
                    }
                    _ => return Err(Problem::rule("name the issuing agency in `agency`")),
                }
            }
        };
        Ok(Command::Draft {
            id,
            agency,
            drafting_unit: request.drafting_unit.clone(),
            draft: request.draft(),
        })
    })
    .await
}

/// `GET /v1/documents/{id}`: the document view with its `version`.
#[utoipa::path(get, path = "/v1/documents/{id}", params(("id" = Uuid, Path)),
    responses((status = 200, description = "The document; ETag = version"), (status = 401), (status = 404)))]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let doc = load_readable(&state, &caller, &id)?;
    Ok(HttpResponse::Ok()
        .insert_header(("ETag", format!("\"{}\"", doc.version)))
        .json(
            state
                .org
                .read(|org| view(&doc, org, &caller.id, state.docs.clock.now())),
        ))
}

/// `GET /v1/documents/{id}/events`: the audit trail.
#[utoipa::path(get, path = "/v1/documents/{id}/events", params(("id" = Uuid, Path)),
    responses((status = 200, description = "Every event of the document, in order"), (status = 401), (status = 404)))]
pub async fn events(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let doc = load_readable(&state, &caller, &id)?;
    let now = state.docs.clock.now();
    if !state
        .org
        .read(|org| sees_drafting(&doc, org, &caller.id, now))
    {
        // The audit trail is the issuing agency's (and the officials involved).
        return Err(Problem::not_found());
    }
    let records = state
        .log
        .read_stream(&document::stream_id(doc.id), 1, usize::MAX)
        .map_err(internal)?;
    let trail: Vec<_> = records
        .into_iter()
        .map(|r| {
            json!({
                "position": r.position,
                "version": r.version,
                "type": r.event_type,
                "recorded_at": r.recorded_at,
                "actor": r.metadata.actor,
                "payload": r.payload,
            })
        })
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header(("ETag", format!("\"{}\"", doc.version)))
        .json(json!({ "document": doc.id, "version": doc.version, "events": trail })))
}

macro_rules! command {
    ($name:ident, $path:literal, $body:ty, |$b:ident, $doc:ident, $ctx:ident, $state:ident| $make:expr) => {
        command!($name, $path, $body, |_d, _c| None, |$b, $doc, $ctx, $state| $make);
    };
    ($name:ident, $path:literal, $body:ty, |$ld:ident, $lctx:ident| $lock:expr, |$b:ident, $doc:ident, $ctx:ident, $state:ident| $make:expr) => {
        #[doc = concat!("`POST ", $path, "`.")]
        #[utoipa::path(post, path = $path, request_body = $body, params(("id" = Uuid, Path)),
            responses((status = 200, description = "The document after the command; ETag, Vanthu-Position"),
                      (status = 400), (status = 401), (status = 403), (status = 404), (status = 409),
                      (status = 412), (status = 413), (status = 415), (status = 422)))]
        pub async fn $name(
            state: web::Data<AppState>,
            caller: Caller,
            req: HttpRequest,
            id: web::Path<String>,
            payload: web::Payload,
        ) -> Result<HttpResponse, Problem> {
            let id = parse_id(&id)?;
            let body = super::body::read_body(payload, super::JSON_LIMIT).await?;
            let $b: $body = super::body::parse_json(&req, &body)?;
            let $state: &AppState = &state;
            let r = Request { state: $state, caller: &caller, req: &req, body: &body };
            #[allow(unused_variables)]
            let lock = |$ld: Option<&Document>, $lctx: &Ctx<'_>| -> Option<String> { $lock };
            execute(r, id, false, &lock, &|$doc: Option<&Document>, $ctx: &Ctx<'_>| -> Result<Command, Problem> { $make }).await
        }
    };
}

command!(
    revise,
    "/v1/documents/{id}/revisions",
    RevisionRequest,
    |b, doc, ctx, st| {
        check_blobs(st, ctx.actor, &b.content, doc)?;
        Ok(Command::Revise {
            draft: draft_of(
                &b.doc_type,
                &b.title,
                &b.content,
                b.urgency,
                b.confidentiality,
                &b.recipients,
            ),
            note: b.note.clone(),
        })
    }
);

command!(
    route,
    "/v1/documents/{id}/routes",
    RouteRequest,
    |b, _doc, _ctx, _st| {
        Ok(Command::Route {
            to: b.to.clone(),
            purpose: b.purpose,
            note: b.note.clone(),
        })
    }
);

command!(
    return_,
    "/v1/documents/{id}/returns",
    ReasonRequest,
    |b, _doc, _ctx, _st| {
        Ok(Command::Return {
            reason: b.reason.clone(),
        })
    }
);

command!(
    opinion,
    "/v1/documents/{id}/opinions",
    OpinionRequest,
    |b, _doc, _ctx, _st| {
        match (&b.from, &b.question, b.opinion, &b.comment) {
        (Some(from), Some(q), None, None) => Ok(Command::RequestOpinion {
            from: from.clone(),
            question: q.clone(),
        }),
        (None, None, Some(opinion), comment) => Ok(Command::GiveOpinion {
            opinion,
            comment: comment.clone().unwrap_or_default(),
        }),
        _ => Err(Problem::bad_request(
            "send either {from, question} to ask for opinions or {opinion, comment} to give one",
        )),
    }
    }
);

command!(
    sign,
    "/v1/documents/{id}/signatures",
    SignatureRequest,
    |b, doc, ctx, st| {
        let doc = doc.ok_or_else(Problem::not_found)?;
        check_signature(st, doc, ctx, &b.jws)
    }
);

command!(
    issue,
    "/v1/documents/{id}/issue",
    EmptyRequest,
    |d, ctx| d
        .and_then(|d| document::plan_issue(d, ctx).ok())
        .map(|p| p.register.stream_id()),
    |_b, doc, ctx, st| {
        let doc = doc.ok_or_else(Problem::not_found)?;
        let plan = document::plan_issue(doc, ctx).map_err(from_domain)?;
        let number = next_number(st, &plan.register.stream_id())?;
        let (org_events, org_version) = org_history(st)?;
        let seal_payload = plan
            .seal_payload(doc, number, org_sha256(&org_events))
            .ok_or_else(|| Problem::rule("the document has no signature"))?;
        let seal =
            st.docs
                .keystore
                .seal(&doc.agency)
                .and_then(|s| seal_compact(s, &seal_payload.canonical(), ctx.now.timestamp()))
                .map_err(|e| {
                    tracing::error!(error = %e, agency = %doc.agency, "sealing failed");
                    Problem::new(Kind::SealUnavailable, "The agency seal is not available")
                        .with_detail(format!(
                            "the seal of {} could not be applied; retry later",
                            doc.agency
                        ))
                })?;
        Ok(Command::Issue {
            plan,
            number,
            seal,
            seal_payload,
            org_version,
        })
    }
);

command!(
    recall,
    "/v1/documents/{id}/recall",
    ReasonRequest,
    |b, _doc, _ctx, _st| {
        Ok(Command::Recall {
            reason: b.reason.clone(),
        })
    }
);

command!(
    replace,
    "/v1/documents/{id}/replacement",
    ReplacementRequest,
    |b, _doc, ctx, st| {
        let replacement = load(st, b.replacement, None)?
            .filter(|d| may_read(d, ctx.org, ctx.actor, ctx.now))
            .ok_or_else(|| Problem::rule(format!("no document {}", b.replacement)))?;
        Ok(Command::Replace {
            replacement: Box::new(replacement),
            reason: b.reason.clone(),
        })
    }
);

command!(
    receive,
    "/v1/documents/{id}/receipts",
    ReceiptRequest,
    |d, ctx| {
        let doc = d?;
        let agency = recipient_agency(b.agency.clone(), Some(doc), ctx).ok()?;
        // Only a real recipient's register: the key space stays bounded.
        document::receipt_register(doc, &agency, ctx.now)
            .ok()
            .map(|r| r.stream_id())
    },
    |b, doc, ctx, st| {
        let doc = doc.ok_or_else(Problem::not_found)?;
        let agency = recipient_agency(b.agency.clone(), Some(doc), ctx)?;
        let register = document::receipt_register(doc, &agency, ctx.now).map_err(from_domain)?;
        let number = next_number(st, &register.stream_id())?;
        Ok(Command::Receive {
            agency,
            register,
            number,
        })
    }
);

command!(
    assign,
    "/v1/documents/{id}/assignments",
    AssignmentRequest,
    |b, doc, ctx, _st| {
        Ok(Command::Assign {
            agency: recipient_agency(b.agency.clone(), doc, ctx)?,
            lead: b.lead.clone(),
            coordinating: b.coordinating.clone(),
            fyi: b.fyi.clone(),
            handler: b.handler.clone(),
            instruction: b.instruction.clone(),
            deadline: b.deadline,
        })
    }
);

command!(
    extend,
    "/v1/documents/{id}/deadline-extensions",
    ExtensionRequest,
    |b, doc, ctx, _st| {
        let agency = match (&b.agency, b.scope) {
            (Some(a), _) => a.clone(),
            (None, DeadlineScope::Handling) => recipient_agency(None, doc, ctx)?,
            (None, DeadlineScope::Reply) => {
                return Err(Problem::rule(
                    "name the recipient agency whose reply deadline moves",
                ))
            }
        };
        Ok(Command::ExtendDeadline {
            agency,
            scope: b.scope,
            new: b.new,
            reason: b.reason.clone(),
        })
    }
);

command!(
    reply,
    "/v1/documents/{id}/replies",
    ReplyRequest,
    |b, doc, ctx, st| {
        let reply = load(st, b.reply, None)?
            .filter(|d| may_read(d, ctx.org, ctx.actor, ctx.now))
            .ok_or_else(|| Problem::rule(format!("no document {}", b.reply)))?;
        Ok(Command::Reply {
            agency: recipient_agency(b.agency.clone(), doc, ctx)?,
            unit: b.unit.clone(),
            reply: Box::new(reply),
        })
    }
);

command!(
    complete,
    "/v1/documents/{id}/completions",
    CompletionRequest,
    |b, doc, ctx, _st| {
        Ok(Command::Complete {
            agency: recipient_agency(b.agency.clone(), doc, ctx)?,
            unit: b.unit.clone(),
        })
    }
);

/// The organisation's events so far and the `org` stream's version.
fn org_history(state: &AppState) -> Result<(Vec<OrgEvent>, u64), Problem> {
    super::org::history(&state.log).map_err(internal)
}

/// Verifies a submitted personal signature at `ctx.now` and turns it into
/// a `Sign` command; a signature that fails is refused with its report.
fn check_signature(
    st: &AppState,
    doc: &Document,
    ctx: &Ctx<'_>,
    jws_text: &str,
) -> Result<Command, Problem> {
    let trust = &st.docs.crls.snapshot().trust;
    match document::accept(ctx.org, doc, ctx.actor, jws_text, trust, ctx.now) {
        Ok(accepted) => Ok(Command::Sign(accepted)),
        Err(Rejection::NotNow(e)) => Err(from_domain(e)),
        Err(Rejection::Failed { report, authority }) => {
            let failed = report
                .checks
                .iter()
                .find(|c| c.outcome == crate::crypto::verify::Outcome::Failed)
                .map(|c| format!("{}: {}", c.name, c.detail))
                .unwrap_or_default();
            let mut problem =
                Problem::new(Kind::SignatureRejected, "The signature was not accepted")
                    .with_detail(format!(
                        "{:?} {}: {failed}",
                        report.indication,
                        report
                            .sub_indication
                            .map(|s| format!("{s:?}"))
                            .unwrap_or_default()
                    ))
                    .with("report", &report);
            if let Some(authority) = authority {
                problem = problem.with("authority", &authority);
            }
            Err(problem)
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct PayloadQuery {
    /// Signing form: "" (direct), TM., KT., TL., TUQ., Q.
    pub authority: Option<String>,
}

/// `GET /v1/documents/{id}/signing-payload?authority=KT.`: what the routed
/// signer must sign, as of now.
#[utoipa::path(get, path = "/v1/documents/{id}/signing-payload", params(("id" = Uuid, Path), PayloadQuery),
    responses((status = 200, description = "{payload, version}"), (status = 400), (status = 401), (status = 403), (status = 404), (status = 409)))]
pub async fn signing_payload(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    q: web::Query<PayloadQuery>,
) -> Result<HttpResponse, Problem> {
    let doc = load_readable(&state, &caller, &id)?;
    let form = match q.authority.as_deref() {
        None => Authority::Direct,
        Some(s) => Authority::parse(s).ok_or_else(|| {
            Problem::bad_request(format!(
                "authority {s:?} is not one of \"\", TM., KT., TL., TUQ., Q."
            ))
        })?,
    };
    document::may_sign(&doc, &caller.id).map_err(from_domain)?;
    let now = state.docs.clock.now();
    let verdict = state.org.read(|org| {
        judge(
            org,
            &SigningAct {
                official: &caller.id,
                agency: &doc.agency,
                doc_type: &doc.draft.doc_type,
                form,
                at: now,
            },
        )
    });
    if !verdict.passed {
        return Err(Problem::forbidden(verdict.reason.clone()).with("authority", &verdict));
    }
    let payload = doc.signing_payload(&caller.id, &verdict, now);
    Ok(HttpResponse::Ok()
        .insert_header(("ETag", format!("\"{}\"", doc.version)))
        .json(json!({ "payload": payload, "version": doc.version, "authority": verdict })))
}

/// `GET /v1/documents/{id}/bundle`: everything needed to verify the issued
/// document offline (`vanthu verify bundle.json --trust root.pem`).
#[utoipa::path(get, path = "/v1/documents/{id}/bundle", params(("id" = Uuid, Path)),
    responses((status = 200, description = "A vanthu.bundle.v1"), (status = 401), (status = 404), (status = 409)))]
pub async fn bundle(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let doc = load_readable(&state, &caller, &id)?;
    let (Some(sig), Some(issue)) = (&doc.signature, &doc.issue) else {
        return Err(from_domain(document::DomainError::WrongState {
            command: "bundle",
            state: doc.status.as_str(),
        }));
    };
    let (mut org, _) = org_history(&state)?;
    org.truncate(issue.org_version as usize);
    let bundle = Bundle {
        format: FORMAT.into(),
        personal: BundleSigned {
            jws: sig.jws.clone(),
            payload: sig.payload.clone(),
            recorded_at: sig.at,
        },
        seal: BundleSigned {
            jws: issue.seal.clone(),
            payload: issue.seal_payload.clone(),
            recorded_at: issue.at,
        },
        crls: state.docs.crls.snapshot().pems.clone(),
        org,
    };
    Ok(HttpResponse::Ok().json(bundle))
}

/// `GET /v1/documents/{id}/content/{sha256}`: one of the document's files,
/// for anyone who may read the document.
#[utoipa::path(get, path = "/v1/documents/{id}/content/{sha256}", params(("id" = Uuid, Path), ("sha256" = String, Path)),
    responses((status = 200, description = "The bytes", content_type = "application/octet-stream"), (status = 401), (status = 404)))]
pub async fn content(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, Problem> {
    let (id, sha256) = path.into_inner();
    let doc = load_readable(&state, &caller, &id)?;
    if !doc.draft.content.iter().any(|c| c.sha256 == sha256) {
        return Err(Problem::not_found().with_detail("the document has no such file"));
    }
    super::blobs::send(&state, &sha256)
}

/// Registers the document routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/documents", web::post().to(create))
        .route("/v1/documents/{id}", web::get().to(get))
        .route("/v1/documents/{id}/events", web::get().to(events))
        .route(
            "/v1/documents/{id}/signing-payload",
            web::get().to(signing_payload),
        )
        .route("/v1/documents/{id}/bundle", web::get().to(bundle))
        .route(
            "/v1/documents/{id}/content/{sha256}",
            web::get().to(content),
        )
        .route("/v1/documents/{id}/revisions", web::post().to(revise))
        .route("/v1/documents/{id}/routes", web::post().to(route))
        .route("/v1/documents/{id}/returns", web::post().to(return_))
        .route("/v1/documents/{id}/opinions", web::post().to(opinion))
        .route("/v1/documents/{id}/signatures", web::post().to(sign))
        .route("/v1/documents/{id}/issue", web::post().to(issue))
        .route("/v1/documents/{id}/recall", web::post().to(recall))
        .route("/v1/documents/{id}/replacement", web::post().to(replace))
        .route("/v1/documents/{id}/receipts", web::post().to(receive))
        .route("/v1/documents/{id}/assignments", web::post().to(assign))
        .route(
            "/v1/documents/{id}/deadline-extensions",
            web::post().to(extend),
        )
        .route("/v1/documents/{id}/replies", web::post().to(reply))
        .route("/v1/documents/{id}/completions", web::post().to(complete));
}
