//! The HTTP face of `service::commands::run`: `If-Match` and
//! `Idempotency-Key` read from the request, the outcome answered with
//! `ETag`, `Vanthu-Position` (and `Location` for a new draft), and every
//! `Failure` mapped to its problem here, once.
//!
//! Must never: carry a step of the pipeline itself (load, replay, decide,
//! append and retry are the service's).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::domain::access::view;
use crate::domain::document::{Ctx, Document};
use crate::http::auth::Caller;
use crate::http::problem::{from_append, from_domain, from_store, Kind, Problem};
use crate::http::AppState;
use crate::service::commands::{
    self, Env, Failure, Idempotency, IfMatch, IssueError, Lock, Make, Outcome, Spec,
};

/// `If-Match: "N"`: the version the client last saw (`*` means any).
fn if_match(req: &HttpRequest) -> Result<IfMatch, Problem> {
    let Some(v) = req.headers().get(actix_web::http::header::IF_MATCH) else {
        return Ok(IfMatch::Absent);
    };
    let s = v.to_str().unwrap_or("").trim();
    if s == "*" {
        return Ok(IfMatch::Any);
    }
    s.trim_start_matches("W/")
        .trim_matches('"')
        .parse::<u64>()
        .map(IfMatch::Version)
        .map_err(|_| {
            precondition_failed(format!("If-Match {s:?} is not a version this API issued"))
        })
}

fn precondition_failed(detail: String) -> Problem {
    Problem::new(
        Kind::PreconditionFailed,
        "The document changed since the version in If-Match",
    )
    .with_detail(detail)
}

/// What a request with an `Idempotency-Key` said: method, path and body.
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

/// The request's idempotency, if it carries a key.
pub(super) fn idempotency(
    req: &HttpRequest,
    caller: &Caller,
    body: &[u8],
) -> Result<Option<Idempotency>, Problem> {
    Ok(crate::api::idempotency_key(req)?
        .map(|k| Idempotency::new(&caller.id, &k, fingerprint(req, body))))
}

/// The problem for a command that was not carried out.
fn problem(f: Failure<Problem>) -> Problem {
    match f {
        Failure::NotFound => Problem::not_found().with_detail("no such document"),
        Failure::NotAParty => Problem::forbidden(f.to_string()),
        Failure::PreconditionFailed(detail) => precondition_failed(detail),
        Failure::KeyReused => Problem::new(
            Kind::IdempotencyKeyReused,
            "This Idempotency-Key was used for a different request",
        )
        .with_detail("replay the original request unchanged, or use a new key"),
        Failure::Conflict(_) => {
            Problem::new(Kind::Conflict, "Changed concurrently; reload and retry")
                .with_detail(f.to_string())
        }
        Failure::Refused(p) => p,
        Failure::Domain(e) => from_domain(e),
        Failure::Append(e) => from_append(e),
        Failure::Store(e) => from_store(e),
    }
}

/// The problem for an issue command that could not be built.
pub(super) fn issue_problem(e: IssueError) -> Problem {
    match e {
        IssueError::Domain(e) => from_domain(e),
        IssueError::Unsigned => Problem::rule(e.to_string()),
        IssueError::Seal { agency, reason } => {
            tracing::error!(error = %reason, agency = %agency, "sealing failed");
            Problem::new(Kind::SealUnavailable, "The agency seal is not available").with_detail(
                format!("the seal of {agency} could not be applied; retry later"),
            )
        }
        IssueError::Store(e) => from_store(e),
    }
}

/// The answer to a command: the document as the caller may see it.
fn respond(state: &AppState, who: &str, outcome: Outcome) -> HttpResponse {
    let now = state.docs.clock.now();
    let doc = state.org.read(|org| view(&outcome.document, org, who, now));
    let status = if outcome.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut r = HttpResponse::build(status);
    r.insert_header(("ETag", format!("\"{}\"", doc.version)))
        .insert_header(("Vanthu-Position", outcome.position.to_string()));
    if outcome.created {
        r.insert_header(("Location", format!("/v1/documents/{}", doc.id)));
    }
    r.json(&doc)
}

/// The request's parts every command needs.
#[derive(Clone, Copy)]
pub(super) struct Request<'a> {
    pub(super) state: &'a AppState,
    pub(super) caller: &'a Caller,
    pub(super) req: &'a HttpRequest,
    pub(super) body: &'a [u8],
}

/// Runs one command on document `id` through the service and answers it.
pub(super) async fn execute(
    r: Request<'_>,
    id: Uuid,
    create: bool,
    lock: &Lock<'_>,
    make: &Make<'_, Problem>,
) -> Result<HttpResponse, Problem> {
    let st = r.state;
    let request_id = crate::http::request_id::of(r.req);
    let spec = Spec {
        actor: &r.caller.id,
        document: id,
        create,
        if_match: if_match(r.req)?,
        idempotency: idempotency(r.req, r.caller, r.body)?,
        request_id: request_id.as_deref(),
    };
    let org = || st.org.snapshot();
    let env = Env {
        log: &*st.events,
        org: &org,
        clock: &st.docs.clock,
        calendar: &st.docs.calendar,
        numbering: &st.docs.numbering,
        locks: &st.docs.registers,
        documents: &st.docs.documents,
    };
    let outcome = commands::run(&env, spec, lock, make)
        .await
        .map_err(problem)?;
    Ok(respond(st, &r.caller.id, outcome))
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
