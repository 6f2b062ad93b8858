//! The two commands whose costly part runs ahead, on a blocking thread,
//! before the command itself: a signature's judgement (chains, CRLs, the
//! signature: CPU work) and an issue's seal (the organisation's history,
//! the register's next number and the seal signer: blocking I/O, and never
//! under the register's lock). The command then takes what was prepared
//! unless the document, the organisation, the instant or (for an issue)
//! the register moved since; an issue prepared on a state that moved is
//! prepared again.
//!
//! Must never: decide a rule (the domain does), take a judgement or a seal
//! made for another state of the document, or seal under a register lock.

use std::sync::{Arc, Mutex};

use actix_web::{post, web, HttpRequest, HttpResponse};
use uuid::Uuid;

use crate::domain::access::may_read;
use crate::domain::document::{self, Command, Ctx, Document, Rejection};
use crate::domain::org::Org;
use crate::http::auth::Caller;
use crate::http::problem::{from_domain, Kind, Problem};
use crate::http::AppState;
use crate::service::commands::{self, IssueError};

use super::*;

// `POST /v1/documents/{id}/signatures`: written out rather than by
// `command!`, because the signature is judged on a blocking thread before
// the command runs (chains, CRLs and the signature itself are CPU work the
// HTTP worker must not wait on); the command then takes that judgement
// unless the document, the organisation or a second passed since.
#[utoipa::path(tag = "documents", request_body = SignatureRequest, params(("id" = Uuid, Path)),
    responses((status = 200, description = "The document after the command; ETag, Vanthu-Position"),
              (status = 400), (status = 401), (status = 403), (status = 404), (status = 409),
              (status = 412), (status = 413), (status = 415), (status = 422)))]
#[post("/v1/documents/{id}/signatures")]
pub(crate) async fn sign(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let id = parse_id(&id)?;
    let body = crate::api::body::read_body(payload, crate::http::JSON_LIMIT).await?;
    let b: SignatureRequest = crate::api::body::parse_json(&req, &body)?;
    let st: &AppState = &state;
    let judged = judge_ahead(st, &caller.id, id, &b.jws).await?;
    let r = Request {
        state: st,
        caller: &caller,
        req: &req,
        body: &body,
    };
    let make = |doc: Option<&Document>, ctx: &Ctx<'_>| -> Result<Command, Problem> {
        let doc = doc.ok_or_else(Problem::not_found)?;
        match judged.as_ref().filter(|j| j.holds_for(doc, ctx)) {
            Some(j) => signature_command(j.outcome.clone()),
            None => check_signature(st, doc, ctx, &b.jws),
        }
    };
    execute(r, id, false, &|_, _| None, &make).await
}

/// Something prepared for document `id` ahead of its command, and the
/// state it was prepared on.
struct Ahead<T> {
    org: Arc<Org>,
    version: u64,
    at: chrono::DateTime<chrono::Utc>,
    outcome: T,
}

impl<T> Ahead<T> {
    /// Whether the command may take it: the same document version and
    /// organisation, within a second of the command's instant and on the
    /// same Vietnamese date (an issue's date, register year and deadlines
    /// are that date's).
    fn holds_for(&self, doc: &Document, ctx: &Ctx<'_>) -> bool {
        use crate::domain::calendar::Calendar;
        std::ptr::eq(&*self.org, ctx.org)
            && doc.version == self.version
            && (ctx.now - self.at).abs() < chrono::Duration::seconds(1)
            && Calendar::local_date(ctx.now) == Calendar::local_date(self.at)
    }
}

/// Judges `jws` for document `id` as it stands, on a blocking thread; None
/// when there is no document the caller may read (the command says why).
async fn judge_ahead(
    st: &AppState,
    actor: &str,
    id: uuid::Uuid,
    jws: &str,
) -> Result<Option<Ahead<Result<document::AcceptedSignature, Rejection>>>, Problem> {
    let Some(doc) =
        crate::service::load::current(&st.log, &st.docs.documents, id).map_err(internal)?
    else {
        return Ok(None);
    };
    let org = st.org.snapshot();
    let at = st.docs.clock.now();
    if !may_read(&doc, &org, actor, at) {
        return Ok(None);
    }
    let trust = st.docs.crls.snapshot();
    let (actor, jws) = (actor.to_owned(), jws.to_owned());
    let judging = std::sync::Arc::clone(&org);
    let version = doc.version;
    let outcome =
        web::block(move || document::accept(&judging, &doc, &actor, &jws, &trust.trust, at))
            .await
            .map_err(|_| Problem::new(Kind::Internal, "Internal error"))?;
    Ok(Some(Ahead {
        org,
        version,
        at,
        outcome,
    }))
}

// `POST /v1/documents/{id}/issue`: written out rather than by `command!`,
// because the seal is prepared on a blocking thread first (see the module's
// comment); a preparation the register or document outran is made again,
// and only after `RACES` of those does the command seal on the worker.
#[utoipa::path(tag = "documents", request_body = EmptyRequest, params(("id" = Uuid, Path)),
    responses((status = 200, description = "The document after the command; ETag, Vanthu-Position"),
              (status = 400), (status = 401), (status = 403), (status = 404), (status = 409),
              (status = 412), (status = 413), (status = 415), (status = 422)))]
#[post("/v1/documents/{id}/issue")]
pub(crate) async fn issue(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let id = parse_id(&id)?;
    let body = crate::api::body::read_body(payload, crate::http::JSON_LIMIT).await?;
    let _: EmptyRequest = crate::api::body::parse_json(&req, &body)?;
    let st: &AppState = &state;
    let r = Request {
        state: st,
        caller: &caller,
        req: &req,
        body: &body,
    };
    for attempt in 1..=commands::RACES {
        let sealed = seal_ahead(&state, &caller.id, id).await?;
        let outran = std::sync::atomic::AtomicBool::new(false);
        let make = |doc: Option<&Document>, ctx: &Ctx<'_>| -> Result<Command, Problem> {
            let doc = doc.ok_or_else(Problem::not_found)?;
            let taken = sealed
                .as_ref()
                .filter(|s| s.holds_for(doc, ctx))
                .and_then(|s| s.outcome.lock().unwrap_or_else(|e| e.into_inner()).take());
            let outcome = match taken {
                Some(Ok(command)) if numbered_next(st, &command) => Ok(command),
                Some(Err(refused)) => Err(refused),
                _ if attempt < commands::RACES => {
                    outran.store(true, std::sync::atomic::Ordering::Relaxed);
                    return Err(Problem::new(Kind::Conflict, "The document moved"));
                }
                // Outran every time: seal here (correct, and rare).
                _ => commands::issue(&st.log, st.docs.keystore.as_ref(), &st.org, doc, ctx),
            };
            let command = outcome.map_err(issue_problem)?;
            crate::http::metrics::seal_applied(&doc.agency);
            Ok(command)
        };
        let lock = |d: Option<&Document>, ctx: &Ctx<'_>| commands::issue_register(d, ctx);
        match execute(r, id, false, &lock, &make).await {
            Err(_) if outran.load(std::sync::atomic::Ordering::Relaxed) => continue,
            answered => return answered,
        }
    }
    unreachable!("the last attempt seals on the worker")
}

/// Whether an issue command's number is still its register's next (asked
/// under the register's lock, so it stays so until the append).
fn numbered_next(st: &AppState, command: &Command) -> bool {
    match command {
        Command::Issue { plan, number, .. } => {
            commands::next_number(&st.log, &plan.register.stream_id()).ok() == Some(*number)
        }
        _ => false,
    }
}

/// Prepares the issue of document `id` as it stands, on a blocking thread:
/// its command with the seal, or why it cannot be issued; None when there
/// is no document the caller may read (the command says why).
async fn seal_ahead(
    state: &web::Data<AppState>,
    actor: &str,
    id: Uuid,
) -> Result<Option<Ahead<Mutex<Option<Result<Command, IssueError>>>>>, Problem> {
    let (st, actor) = (state.clone(), actor.to_owned());
    web::block(move || {
        let Some(doc) = crate::service::load::current(&st.log, &st.docs.documents, id)
            .map_err(crate::http::problem::from_store)?
        else {
            return Ok(None);
        };
        let org = st.org.snapshot();
        let at = st.docs.clock.now();
        if !may_read(&doc, &org, &actor, at) {
            return Ok(None);
        }
        let ctx = Ctx {
            org: &org,
            actor: &actor,
            now: at,
            calendar: &st.docs.calendar,
            numbering: &st.docs.numbering,
        };
        let outcome = commands::issue(&st.log, st.docs.keystore.as_ref(), &st.org, &doc, &ctx);
        Ok(Some(Ahead {
            version: doc.version,
            org: Arc::clone(&org),
            at,
            outcome: Mutex::new(Some(outcome)),
        }))
    })
    .await
    .map_err(|_| Problem::new(Kind::Internal, "Internal error"))?
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
    signature_command(document::accept(
        ctx.org, doc, ctx.actor, jws_text, trust, ctx.now,
    ))
}

/// The `Sign` command of an accepted signature, or the refusal of a
/// rejected one with its report.
fn signature_command(
    outcome: Result<document::AcceptedSignature, Rejection>,
) -> Result<Command, Problem> {
    match outcome {
        Ok(accepted) => {
            crate::http::metrics::signature_judged(crate::crypto::verify::Indication::TotalPassed);
            Ok(Command::Sign(accepted))
        }
        Err(Rejection::NotNow(e)) => Err(from_domain(e)),
        Err(Rejection::Failed { report, authority }) => {
            crate::http::metrics::signature_judged(report.indication);
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
