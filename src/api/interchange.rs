//! The interchange at the HTTP edge: composing an issued document's edXML
//! package for a peer (the outbox calls [`package_for`] when it sends), and
//! `POST /v1/interchange/inbound`, where peers post packages and status
//! messages (docs/INTERCHANGE.md).
//!
//! Must never: compose a package for a document `domain::access` keeps from
//! the interchange, or write anything for a request that is not a peer's,
//! not whole, or not valid.

use crate::api::AppState;
use crate::domain::access;
use crate::domain::document::{Document, Urgency};
use crate::interchange::edxml::{self, Attachment, Package};
use crate::outbox::dispatch::ComposeError;
use crate::outbox::{Compose, Delivery};

/// The name of the evidence attachment every package carries.
pub const BUNDLE_ATTACHMENT: &str = "vanthu-bundle.json";
/// Its content type.
pub const BUNDLE_TYPE: &str = "application/vnd.vanthu.bundle+json";

/// The edXML package of `delivery` (a [`Compose::Package`]): the issued
/// document's header fields, its files, and its evidence bundle (the
/// official's and the seal's signatures with their chains, the CRLs, the
/// organisation then, and the signing and issuing records with their log
/// proofs), so the receiver verifies it offline.
pub async fn package_for(state: &AppState, delivery: &Delivery) -> Result<Vec<u8>, ComposeError> {
    let Some(Compose::Package { agency }) = &delivery.compose else {
        return Err(ComposeError::Permanent("not a package".into()));
    };
    let transient = |e: String| ComposeError::Transient(e);
    let permanent = |e: String| ComposeError::Permanent(e);
    let doc = crate::service::load::document(&state.log, delivery.doc, None)
        .map_err(|e| transient(e.to_string()))?
        .ok_or_else(|| permanent(format!("no document {}", delivery.doc)))?;
    let org = state.org.snapshot();
    if !access::travels_to(&doc, &org, agency) {
        return Err(permanent(format!(
            "document {} does not travel to {agency} (not issued to it, confidential, or {agency} is not another system's)",
            doc.id
        )));
    }
    let bundle =
        crate::api::documents::evidence::bundle_of(state, &doc, access::recipient_evidence)
            .await
            .map_err(|p| transient(p.detail.clone().unwrap_or(p.title.clone())))?;
    let mut attachments = Vec::new();
    for (i, c) in doc.draft.content.iter().enumerate() {
        let bytes = state
            .blobs
            .get(&c.sha256)
            .await
            .map_err(|e| transient(e.to_string()))?
            .ok_or_else(|| permanent(format!("file {} ({}) is missing", c.name, c.sha256)))?;
        attachments.push(Attachment {
            content_id: format!("{}", i + 1),
            name: c.name.clone(),
            content_type: content_type(&c.name).into(),
            description: format!("sha256:{}", c.sha256),
            bytes,
        });
    }
    attachments.push(Attachment {
        content_id: format!("{}", attachments.len() + 1),
        name: BUNDLE_ATTACHMENT.into(),
        content_type: BUNDLE_TYPE.into(),
        description: "vanthu evidence: signatures, chains, CRLs, log proofs".into(),
        bytes: serde_json::to_vec(&bundle).expect("a bundle serialises"),
    });
    let header = header(&doc, &org, agency).map_err(permanent)?;
    let issue = doc.issue.as_ref().expect("travels_to: issued");
    let from = header.from.organ_id.clone();
    Ok(Package {
        header,
        trace: edxml::TraceHeaderList {
            trace: vec![edxml::TraceHeader {
                organ_id: from,
                timestamp: edxml::write_timestamp(issue.at),
            }],
            bussiness: Some(edxml::Bussiness {
                bussiness_doc_type: 0,
                ..Default::default()
            }),
        },
        attachments,
    }
    .to_xml()
    .into_bytes())
}

/// Fields 1.1–1.14 of an issued document for external recipient `agency`.
fn header(
    doc: &Document,
    org: &crate::domain::org::Org,
    agency: &str,
) -> Result<edxml::MessageHeader, String> {
    let issue = doc.issue.as_ref().ok_or("not issued")?;
    let ours = org
        .agencies
        .get(&doc.agency)
        .ok_or_else(|| format!("no agency {}", doc.agency))?;
    let organ = |a: &crate::domain::org::Agency| edxml::Organ {
        organ_id: a.organ_id.clone().unwrap_or_default(),
        organ_name: a.name.clone(),
        ..Default::default()
    };
    if ours.organ_id.is_none() {
        return Err(format!(
            "{} has no interchange identifier: record org.agency_identified for it",
            doc.agency
        ));
    }
    let to = org
        .agencies
        .get(agency)
        .ok_or_else(|| format!("no agency {agency}"))?;
    let signed = &issue.seal_payload.signed;
    let signer = org
        .appointments
        .iter()
        .find(|a| a.official == signed.signer && a.agency == doc.agency);
    let competence = match signed.authority.as_str() {
        "" => "Trực tiếp".to_owned(),
        form => form.to_owned(),
    };
    let type_name = crate::domain::doctype::by_code(&doc.draft.doc_type)
        .map(|t| t.name.to_owned())
        .unwrap_or_default();
    Ok(edxml::MessageHeader {
        from: organ(ours),
        to: vec![organ(to)],
        code: edxml::Code {
            code_number: format!("{:02}", issue.number),
            code_notation: issue.symbol.clone(),
        },
        promulgation_info: edxml::PromulgationInfo {
            place: ours.name.clone(),
            promulgation_date: edxml::write_date(issue.issued_on),
        },
        document_type: edxml::DocumentType {
            kind: "2".into(),
            type_name,
        },
        subject: doc.draft.title.clone(),
        signer_info: edxml::SignerInfo {
            competence,
            position: signer
                .and_then(|a| a.title.clone())
                .unwrap_or_else(|| signed.position.as_str().to_owned()),
            full_name: signer.map(|a| a.name.clone()).unwrap_or_default(),
        },
        due_date: issue
            .recipients
            .iter()
            .find(|r| r.agency == agency)
            .and_then(|r| r.reply_due)
            .map(edxml::write_date),
        to_places: edxml::ToPlaces {
            places: issue
                .recipients
                .iter()
                .filter_map(|r| org.agencies.get(&r.agency).map(|a| a.name.clone()))
                .collect(),
        },
        other_info: edxml::OtherInfo {
            priority: match doc.draft.urgency {
                Urgency::Normal => 0,
                Urgency::Khan => 1,
                Urgency::ThuongKhan => 2,
                Urgency::HoaToc => 3,
            },
            ..Default::default()
        },
        steering_type: 0,
        document_id: doc.id.to_string(),
        ..Default::default()
    })
}

/// A file's content type by its name's extension.
fn content_type(name: &str) -> &'static str {
    match name
        .rsplit('.')
        .next()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("pdf") => "application/pdf",
        Some("docx") => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        Some("doc") => "application/msword",
        Some("xlsx") => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        Some("txt") => "text/plain",
        Some("xml") => "application/xml",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

// ---------------------------------------------------------------------------
// Inbound

use actix_web::{get, post, web, HttpRequest, HttpResponse};

use crate::api::problem::{Kind, Problem};
use crate::interchange::edxml::{EdxmlError, Inbound};
use crate::interchange::{ArrivalVerdict, Arrived, ARRIVAL_PREFIX, ARRIVED, PEER_HEADER};
use crate::store::{ExpectedVersion, Metadata, NewEvent, StreamAppend};

/// How far a peer's `webhook-timestamp` may be from this clock, seconds.
const TOLERANCE: i64 = 300;

/// 400 naming the package's field.
fn bad_package(e: EdxmlError) -> Problem {
    Problem::bad_request(format!("the package is refused: {e}")).with("field", &e.field)
}

/// 422 naming the package's field: it reads, but cannot be taken.
fn refused(field: &str, detail: impl Into<String>) -> Problem {
    Problem::new(Kind::Rule, "The package cannot be taken")
        .with_detail(detail)
        .with("field", field)
}

/// The peer that signed the request, or 401.
fn peer_of<'a>(
    state: &'a AppState,
    req: &HttpRequest,
    body: &[u8],
) -> Result<&'a crate::interchange::Peer, Problem> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let unauthorised = |detail: String| {
        Problem::new(Kind::Unauthorized, "Not a known interchange peer").with_detail(detail)
    };
    let name = header(PEER_HEADER)
        .ok_or_else(|| unauthorised(format!("no {PEER_HEADER} header names the sending system")))?;
    let peer = state
        .peers
        .get(name)
        .ok_or_else(|| unauthorised(format!("no interchange peer {name:?} is configured here")))?;
    let now = state.docs.clock.system_now().timestamp();
    crate::webhooks::verify(
        std::slice::from_ref(&peer.secret),
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
        body,
        now,
        TOLERANCE,
    )
    .map_err(|e| unauthorised(format!("the request's signature: {e}")))?;
    Ok(peer)
}

/// `POST /v1/interchange/inbound`: an edXML package or status message from
/// a configured peer, signed with the secret both hold (Standard Webhooks
/// headers, `Vanthu-Peer` naming the sender). A package whose signatures
/// verify lands as arrived (01) for the recipient agencies' clerks, and
/// status 01 goes back; a package already taken answers 200 and writes
/// nothing. Anything else is refused with the field named, and nothing
/// is written.
#[utoipa::path(tag = "interchange", request_body(content = String, content_type = "application/xml"),
    responses((status = 202, description = "Arrived"), (status = 200, description = "Already taken"), (status = 400), (status = 401), (status = 403), (status = 413), (status = 415), (status = 422)))]
#[post("/v1/interchange/inbound")]
pub(crate) async fn inbound(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let body = crate::api::body::read_body(payload, state.peers.max_package_bytes).await?;
    let peer = peer_of(&state, &req, &body)?;
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim();
    if !matches!(mime, "application/xml" | "text/xml") {
        return Err(
            Problem::new(Kind::UnsupportedMediaType, "Not XML").with_detail(format!(
                "content-type {content_type:?}: send application/xml"
            )),
        );
    }
    let text = std::str::from_utf8(&body).map_err(|_| {
        bad_package(EdxmlError {
            field: "xml".into(),
            reason: "not UTF-8".into(),
        })
    })?;
    let message_id = req
        .headers()
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    match crate::interchange::edxml::read(text).map_err(bad_package)? {
        Inbound::Document(package) => arrive(&state, &req, &peer.id, message_id, *package).await,
        Inbound::Status(status) => status_in(&state, &req, &peer.id, *status).await,
    }
}

/// Takes a document package: who sent it and to whom, its evidence, its
/// files; then one append (or none, when it arrived before).
async fn arrive(
    state: &AppState,
    req: &HttpRequest,
    peer: &str,
    message_id: String,
    package: Package,
) -> Result<HttpResponse, Problem> {
    let org = state.org.snapshot();
    let h = &package.header;
    let from = org
        .agency_by_organ(h.from.organ_id.trim())
        .filter(|a| a.peer.as_deref() == Some(peer))
        .ok_or_else(|| {
            Problem::forbidden(format!(
                "peer {peer} does not speak for {} here: register the agency with org.external_agency_registered and this peer",
                h.from.organ_id
            ))
            .with("field", "From/OrganId")
        })?;
    let to: Vec<String> =
        h.to.iter()
            .filter_map(|o| org.agency_by_organ(o.organ_id.trim()))
            .filter(|a| !a.is_external())
            .map(|a| a.code.clone())
            .collect();
    if to.is_empty() {
        return Err(refused(
            "To",
            "no agency of this system is among the recipients",
        ));
    }
    let id = crate::interchange::arrival_id(peer, h.document_id.trim());
    let stream = format!("{ARRIVAL_PREFIX}{id}");
    if state
        .log
        .stream_version(&stream)
        .map_err(crate::api::problem::from_store)?
        .is_some()
    {
        return Ok(HttpResponse::Ok()
            .json(serde_json::json!({ "arrival": id, "status": "01", "already": true })));
    }
    let (bundle_bytes, files) = evidence_and_files(&package)?;
    let verdict = judge(state, &bundle_bytes, &files)?;
    if !verdict.passed {
        return Err(refused(
            &format!("Attachment[{BUNDLE_ATTACHMENT}]"),
            format!(
                "the signatures do not verify: {}",
                verdict.problems.join("; ")
            ),
        ));
    }
    let owner = format!("interchange:{peer}");
    let at = state.docs.clock.now();
    let mut stored = Vec::new();
    for a in &files {
        let (sha, _) = state
            .blobs
            .put(&a.bytes, &owner, at.timestamp())
            .await
            .map_err(crate::api::problem::from_store)?;
        stored.push(crate::domain::signing::ContentRef {
            name: a.name.clone(),
            sha256: sha,
        });
    }
    let (evidence, _) = state
        .blobs
        .put(&bundle_bytes, &owner, at.timestamp())
        .await
        .map_err(crate::api::problem::from_store)?;
    let arrived = Arrived {
        id,
        peer: peer.into(),
        message_id,
        from_agency: from.code.clone(),
        to,
        header: package.header.clone(),
        files: stored,
        evidence,
        verdict,
        at,
    };
    let event = NewEvent::new(
        ARRIVED,
        serde_json::to_value(&arrived).expect("an arrival serialises"),
    )
    .with_metadata(Metadata {
        actor: Some(owner),
        request_id: crate::api::request_id::of(req),
        ..Default::default()
    });
    match state
        .events
        .append(
            vec![StreamAppend::new(
                stream,
                ExpectedVersion::NoStream,
                vec![event],
            )],
            None,
        )
        .await
    {
        Ok(appended) => Ok(HttpResponse::Accepted()
            .insert_header(("Vanthu-Position", appended.last_position.to_string()))
            .json(serde_json::json!({ "arrival": id, "status": "01" }))),
        // Arrived meanwhile through another request: taken once.
        Err(crate::store::AppendError::WrongExpectedVersion { .. }) => Ok(HttpResponse::Ok()
            .json(serde_json::json!({ "arrival": id, "status": "01", "already": true }))),
        Err(e) => Err(crate::api::problem::from_append(e)),
    }
}

/// The package's evidence bundle and its other files.
fn evidence_and_files(package: &Package) -> Result<(Vec<u8>, Vec<Attachment>), Problem> {
    let mut bundle = None;
    let mut files = Vec::new();
    for a in &package.attachments {
        if a.name == BUNDLE_ATTACHMENT {
            bundle = Some(a.bytes.clone());
        } else {
            files.push(a.clone());
        }
    }
    let bundle = bundle.ok_or_else(|| {
        refused(
            "Signature",
            format!("no verifiable signature: the package carries no {BUNDLE_ATTACHMENT} (XML-DSig envelopes are not checked here)"),
        )
    })?;
    if files.is_empty() {
        return Err(refused(
            "Manifest",
            "the package carries no file of the document",
        ));
    }
    Ok((bundle, files))
}

/// Verifies the evidence offline against this system's trust anchors and
/// checks the files are the ones signed.
fn judge(state: &AppState, bundle: &[u8], files: &[Attachment]) -> Result<ArrivalVerdict, Problem> {
    let field = format!("Attachment[{BUNDLE_ATTACHMENT}]");
    let bundle: crate::bundle::Bundle = serde_json::from_slice(bundle)
        .map_err(|e| refused(&field, format!("not a vanthu bundle: {e}")))?;
    let anchors = state.docs.crls.snapshot().trust.anchors.clone();
    let report = crate::bundle::verify_bundle(&bundle, anchors, None)
        .map_err(|e| refused(&field, e.to_string()))?;
    let signed = &bundle.seal.payload.signed;
    let mut problems = report.problems.clone();
    for (what, r) in [
        ("the official's signature", &report.personal),
        ("the seal", &report.seal),
    ] {
        if !r.passed() {
            problems.push(format!("{what}: {:?} {:?}", r.indication, r.sub_indication));
        }
    }
    for c in &signed.content {
        if !files.iter().any(|f| {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(&f.bytes)) == c.sha256
        }) {
            problems.push(format!(
                "file {} ({}) is not in the package",
                c.name, c.sha256
            ));
        }
    }
    for f in files {
        use sha2::Digest;
        let sha = hex::encode(sha2::Sha256::digest(&f.bytes));
        if !signed.content.iter().any(|c| c.sha256 == sha) {
            problems.push(format!("file {} is not what was signed", f.name));
        }
    }
    Ok(ArrivalVerdict {
        passed: report.passed && problems.is_empty(),
        signer: signed.signer.clone(),
        authority: signed.authority.as_str().into(),
        seal_agency: signed.agency.clone(),
        problems,
    })
}

/// Takes a status message about a document this system issued to an
/// external recipient: recorded once per code and recipient, on the
/// document (its deadline row shows the latest).
async fn status_in(
    state: &AppState,
    req: &HttpRequest,
    peer: &str,
    status: crate::interchange::edxml::MessageStatus,
) -> Result<HttpResponse, Problem> {
    use crate::domain::document::{self, DocumentEvent, InterchangeStatus};
    use crate::domain::interchange::StatusCode;
    let unknown = || {
        refused(
            "ResponseFor/DocumentId",
            format!(
                "{} is no document this system issued",
                status.response_for.document_id
            ),
        )
    };
    let id =
        uuid::Uuid::parse_str(status.response_for.document_id.trim()).map_err(|_| unknown())?;
    let code = StatusCode::parse(status.status_code.trim()).map_err(|e| {
        bad_package(EdxmlError {
            field: "StatusCode".into(),
            reason: e.to_string(),
        })
    })?;
    let reported_at = crate::interchange::edxml::read_instant(&status.timestamp).map_err(|e| {
        bad_package(EdxmlError {
            field: "Timestamp".into(),
            reason: e,
        })
    })?;
    for _ in 0..3 {
        let doc = crate::service::load::document(&state.log, id, None)
            .map_err(crate::api::problem::from_store)?
            .ok_or_else(unknown)?;
        let org = state.org.snapshot();
        let ours = org
            .agencies
            .get(&doc.agency)
            .and_then(|a| a.organ_id.clone());
        if ours.as_deref() != Some(status.response_for.organ_id.trim()) {
            return Err(refused(
                "ResponseFor/OrganId",
                format!(
                    "{} did not issue document {id}",
                    status.response_for.organ_id
                ),
            ));
        }
        let agency =
            match crate::domain::access::status_recipient(
                &doc,
                &org,
                peer,
                status.from.organ_id.trim(),
                code,
            ) {
                Err(why) => return Err(Problem::forbidden(why).with("field", "From/OrganId")),
                Ok(None) => return Ok(HttpResponse::Ok().json(
                    serde_json::json!({ "document": id, "status": code.code(), "already": true }),
                )),
                Ok(Some(agency)) => agency,
            };
        let event = DocumentEvent::InterchangeStatus(InterchangeStatus {
            agency,
            code: code.code().into(),
            description: status.description.chars().take(1000).collect(),
            reported_at,
            by: format!("interchange:{peer}"),
            at: state.docs.clock.now(),
        });
        let new = NewEvent::new(
            event.event_type(),
            serde_json::to_value(&event).expect("events serialise"),
        )
        .with_metadata(Metadata {
            actor: Some(format!("interchange:{peer}")),
            request_id: crate::api::request_id::of(req),
            ..Default::default()
        });
        match state
            .events
            .append(
                vec![StreamAppend::new(
                    document::stream_id(id),
                    ExpectedVersion::Exact(doc.version),
                    vec![new],
                )],
                None,
            )
            .await
        {
            Ok(appended) => {
                return Ok(HttpResponse::Accepted()
                    .insert_header(("Vanthu-Position", appended.last_position.to_string()))
                    .json(serde_json::json!({ "document": id, "status": code.code() })))
            }
            // The document moved meanwhile: judge again on the new version.
            Err(crate::store::AppendError::WrongExpectedVersion { .. }) => continue,
            Err(e) => return Err(crate::api::problem::from_append(e)),
        }
    }
    Err(Problem::new(Kind::Conflict, "The document kept changing").with_detail("try again"))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ArrivalsQuery {
    agency: String,
    min_position: Option<u64>,
}

/// `GET /v1/interchange/arrivals?agency=X`: packages from other systems
/// addressed to agency X, for those who keep its books (its clerks,
/// leaders and office chief), newest last.
#[utoipa::path(tag = "interchange", params(("agency" = String, Query, description = "one of this system's agencies"), ("min_position" = Option<u64>, Query, description = "read your writes")),
    responses((status = 200, description = "{arrivals}"), (status = 400), (status = 401), (status = 403)))]
#[get("/v1/interchange/arrivals")]
pub(crate) async fn arrivals(
    state: web::Data<AppState>,
    caller: crate::api::auth::Caller,
    req: HttpRequest,
    q: web::Query<ArrivalsQuery>,
) -> Result<HttpResponse, Problem> {
    let now = state.docs.clock.now();
    let known = state.org.read(|org| {
        org.agencies
            .get(&q.agency)
            .is_some_and(|a| !a.is_external())
    });
    if !known {
        return Err(Problem::bad_request(format!(
            "agency {}: no agency of this system",
            q.agency
        )));
    }
    state
        .org
        .read(|org| access::may_read_register(org, &caller.id, &q.agency, false, now))
        .map_err(crate::api::queries::refused)?;
    crate::api::queries::caught_up(
        &state,
        &req,
        q.min_position,
        crate::projections::arrivals::NAME,
    )
    .await?;
    let agency = q.agency.clone();
    let rows = crate::api::queries::blocking(state, move |state| {
        let table = crate::api::queries::table(state, crate::projections::arrivals::NAME);
        table
            .scan(
                crate::projections::arrivals::prefix(&agency).as_bytes(),
                None,
                usize::MAX,
            )
            .map_err(crate::api::problem::from_store)?
            .iter()
            .map(|(k, v)| {
                crate::api::queries::decode::<crate::projections::arrivals::Row>(
                    state,
                    crate::projections::arrivals::NAME,
                    k,
                    v,
                )
            })
            .collect::<Result<Vec<_>, _>>()
    })
    .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "arrivals": rows })))
}

/// Registers the routes (and their OpenAPI paths).
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(inbound).service(arrivals);
}
