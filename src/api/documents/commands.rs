//! One handler per document command: the body becomes a `Command`, and
//! `pipeline::execute` hands it to `service::commands::run`.
//!
//! Must never: decide a rule (the domain does) or append anything itself.

use actix_web::{post, web, HttpRequest, HttpResponse};
use uuid::Uuid;

use crate::domain::access::{may_cite, may_read};
use crate::domain::document::{self, Command, Ctx, DeadlineScope, Document};
use crate::domain::signing::ContentRef;
use crate::http::auth::Caller;
use crate::http::problem::{from_domain, from_store, Problem};
use crate::http::AppState;
use crate::service::commands;

use super::*;

/// Content a draft may cite (`domain::access::may_cite`): a file the
/// caller uploaded (marked in use, so collection leaves it alone), one the
/// document being revised already cites, or one that a document the caller
/// may read cites. Knowing a hash is not enough: an unknown blob and
/// someone else's answer alike, so nothing shows whether the other exists.
/// `uploaded` says which cited files the caller uploaded (`uploads_of`).
fn check_blobs(
    state: &AppState,
    caller: &str,
    cited: &[ContentRef],
    current: Option<&Document>,
    uploaded: &std::collections::HashSet<String>,
) -> Result<(), Problem> {
    for c in cited {
        let in_current =
            current.is_some_and(|d| d.draft.content.iter().any(|x| x.sha256 == c.sha256));
        let uploaded = || Ok(uploaded.contains(&c.sha256));
        let readable_citer = || {
            crate::service::blobs::cited_by_readable(state, caller, &c.sha256).map_err(from_store)
        };
        if !may_cite(in_current, uploaded, readable_citer)? {
            return Err(Problem::rule(format!(
                "content {:?}: no blob {} that you uploaded or that a document you may read cites; upload it with POST /v1/blobs first",
                c.name, c.sha256
            )));
        }
    }
    Ok(())
}

/// Which of the cited files `caller` uploaded, each marked in use now (so
/// collection leaves it alone while the command runs and after).
async fn uploads_of(
    state: &AppState,
    caller: &str,
    cited: &[ContentRef],
) -> Result<std::collections::HashSet<String>, Problem> {
    let now = state.docs.clock.now().timestamp();
    let mut out = std::collections::HashSet::new();
    for c in cited {
        if state
            .blobs
            .touch(&c.sha256, caller, now)
            .await
            .map_err(internal)?
        {
            out.insert(c.sha256.clone());
        }
    }
    Ok(out)
}

/// `POST /v1/documents`: a new draft.
#[utoipa::path(tag = "documents", request_body = DraftRequest,
    responses((status = 201, description = "The new draft; Location, ETag, Vanthu-Position"),
              (status = 400), (status = 401), (status = 403), (status = 413), (status = 415), (status = 422)))]
#[post("/v1/documents")]
pub(crate) async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let body = crate::api::body::read_body(payload, crate::http::JSON_LIMIT).await?;
    let request: DraftRequest = crate::api::body::parse_json(&req, &body)?;
    let uploaded = uploads_of(&state, &caller.id, &request.content).await?;
    check_blobs(&state, &caller.id, &request.content, None, &uploaded)?;
    // A replayed create must land on the same id: the one its record names.
    let recorded = match pipeline::idempotency(&req, &caller, &body)? {
        Some(idem) => commands::recorded_document(&state.log, &idem).map_err(internal)?,
        None => None,
    };
    let id = recorded.unwrap_or_else(Uuid::now_v7);
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

macro_rules! command {
    ($name:ident, $path:literal, $body:ty, |$b:ident, $doc:ident, $ctx:ident, $state:ident| $make:expr) => {
        command!($name, $path, $body, |_d, _c| None, |$b, $doc, $ctx, $state| $make);
    };
    ($name:ident, $path:literal, $body:ty, |$ld:ident, $lctx:ident| $lock:expr, |$b:ident, $doc:ident, $ctx:ident, $state:ident| $make:expr) => {
        #[doc = concat!("`POST ", $path, "`.")]
        #[utoipa::path(tag = "documents", request_body = $body, params(("id" = Uuid, Path)),
            responses((status = 200, description = "The document after the command; ETag, Vanthu-Position"),
                      (status = 400), (status = 401), (status = 403), (status = 404), (status = 409),
                      (status = 412), (status = 413), (status = 415), (status = 422)))]
        #[post($path)]
        pub(crate) async fn $name(
            state: web::Data<AppState>,
            caller: Caller,
            req: HttpRequest,
            id: web::Path<String>,
            payload: web::Payload,
        ) -> Result<HttpResponse, Problem> {
            let id = parse_id(&id)?;
            let body = crate::api::body::read_body(payload, crate::http::JSON_LIMIT).await?;
            let $b: $body = crate::api::body::parse_json(&req, &body)?;
            let $state: &AppState = &state;
            let r = Request { state: $state, caller: &caller, req: &req, body: &body };
            #[allow(unused_variables)]
            let lock = |$ld: Option<&Document>, $lctx: &Ctx<'_>| -> Option<String> { $lock };
            execute(r, id, false, &lock, &|$doc: Option<&Document>, $ctx: &Ctx<'_>| -> Result<Command, Problem> { $make }).await
        }
    };
}

// `POST /v1/documents/{id}/revisions`: written out rather than by
// `command!`, because which cited files the caller uploaded is asked of the
// file store (asynchronous) before the rules run. (A `///` comment here
// would become the operation's summary in the contract.)
#[utoipa::path(tag = "documents", request_body = RevisionRequest, params(("id" = Uuid, Path)),
    responses((status = 200, description = "The document after the command; ETag, Vanthu-Position"),
              (status = 400), (status = 401), (status = 403), (status = 404), (status = 409),
              (status = 412), (status = 413), (status = 415), (status = 422)))]
#[post("/v1/documents/{id}/revisions")]
pub(crate) async fn revise(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let id = parse_id(&id)?;
    let body = crate::api::body::read_body(payload, crate::http::JSON_LIMIT).await?;
    let b: RevisionRequest = crate::api::body::parse_json(&req, &body)?;
    let st: &AppState = &state;
    let uploaded = uploads_of(st, &caller.id, &b.content).await?;
    let r = Request {
        state: st,
        caller: &caller,
        req: &req,
        body: &body,
    };
    let make = |doc: Option<&Document>, ctx: &Ctx<'_>| -> Result<Command, Problem> {
        check_blobs(st, ctx.actor, &b.content, doc, &uploaded)?;
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
    };
    execute(r, id, false, &|_, _| None, &make).await
}

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
        let number = commands::next_number(&st.log, &register.stream_id()).map_err(internal)?;
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

command!(
    refuse,
    "/v1/documents/{id}/refusals",
    RefusalRequest,
    |b, doc, ctx, _st| {
        Ok(Command::Refuse {
            agency: recipient_agency(b.agency.clone(), doc, ctx)?,
            reason: b.reason.clone(),
        })
    }
);

command!(
    answer_recall,
    "/v1/documents/{id}/recall-answers",
    RecallAnswerRequest,
    |b, doc, ctx, _st| {
        Ok(Command::AnswerRecall {
            agency: recipient_agency(b.agency.clone(), doc, ctx)?,
            agree: b.agree,
            reason: b.reason.clone(),
        })
    }
);

/// Registers the command routes: every handler above, in one list.
pub(super) fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(create)
        .service(revise)
        .service(route)
        .service(return_)
        .service(opinion)
        .service(sign)
        .service(issue)
        .service(recall)
        .service(replace)
        .service(receive)
        .service(assign)
        .service(extend)
        .service(reply)
        .service(complete)
        .service(refuse)
        .service(answer_recall);
}
