//! The interchange at the HTTP edge: composing an issued document's edXML
//! package for a peer (the outbox calls [`package_for`] when it sends), and
//! `POST /v1/interchange/inbound`, where peers post packages and status
//! messages (docs/INTERCHANGE.md).
//!
//! Must never: compose a package for a document `domain::access` keeps from
//! the interchange, or write anything for a request that is not a peer's,
//! not whole, or not valid.

use crate::domain::access;
use crate::domain::document::{Document, Urgency};
use crate::http::AppState;
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
    let bundle = crate::service::evidence::bundle_of(state, &doc, access::recipient_evidence)
        .await
        .map_err(|e| transient(e.to_string()))?;
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
    let mut header = header(&doc, &org, agency).map_err(permanent)?;
    // A reply to a document that came from the same agency says so (1.12).
    if let Some(answered) = doc.in_reply_to {
        let answered = crate::service::load::document(&state.log, answered, None)
            .map_err(|e| transient(e.to_string()))?;
        if let Some((origin, issue)) = answered
            .as_ref()
            .filter(|d| d.agency == *agency)
            .and_then(|d| Some((d.origin.as_ref()?, d.issue.as_ref()?)))
        {
            header.response_for = vec![edxml::ResponseFor {
                organ_id: origin.from.organ_id.clone(),
                code: format!("{:02}/{}", issue.number, issue.symbol),
                promulgation_date: edxml::write_date(issue.issued_on),
                document_id: origin.from.document_id.clone(),
            }];
        }
    }
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
    .and_then(|xml: Vec<u8>| {
        if xml.len() > state.peers.max_package_bytes {
            Err(permanent(format!(
                "the package is {} bytes, over the {} a peer takes (interchange.max_package_bytes): send it another way",
                xml.len(),
                state.peers.max_package_bytes
            )))
        } else {
            Ok(xml)
        }
    })
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

use crate::http::problem::{Kind, Problem};
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

fn unauthorised(detail: String) -> Problem {
    Problem::new(Kind::Unauthorized, "Not a known interchange peer").with_detail(detail)
}

/// The peer the request says it is from, and a fresh timestamp: checked
/// before the body is read, so a stranger costs no more than its headers.
fn claimed_peer<'a>(
    state: &'a AppState,
    req: &HttpRequest,
) -> Result<&'a crate::interchange::Peer, Problem> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let peer = header(PEER_HEADER)
        .and_then(|name| state.peers.get(name))
        .ok_or_else(|| unauthorised(format!("{PEER_HEADER} must name a peer configured here")))?;
    let now = state.docs.clock.system_now().timestamp();
    let fresh = header("webhook-timestamp")
        .and_then(|t| t.trim().parse::<i64>().ok())
        .is_some_and(|t| t.saturating_sub(now).saturating_abs() <= TOLERANCE);
    if !fresh {
        return Err(unauthorised(format!(
            "webhook-timestamp must be this clock's Unix seconds, within {TOLERANCE} s"
        )));
    }
    Ok(peer)
}

/// The peer that signed the request, or 401.
fn peer_of<'a>(
    state: &'a AppState,
    req: &HttpRequest,
    body: &[u8],
) -> Result<&'a crate::interchange::Peer, Problem> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let peer = claimed_peer(state, req)?;
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
    claimed_peer(&state, &req)?;
    let declared = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > state.peers.max_package_bytes as u64) {
        return Err(
            Problem::new(Kind::TooLarge, "The package is too large").with_detail(format!(
                "the limit is {} bytes (interchange.max_package_bytes)",
                state.peers.max_package_bytes
            )),
        );
    }
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
    let text = text.to_owned();
    let read = web::block(move || crate::interchange::edxml::read(&text))
        .await
        .map_err(|e| Problem::new(Kind::Internal, "Internal error").with_detail(e.to_string()))?
        .map_err(bad_package)?;
    let peer = peer.id.clone();
    match read {
        Inbound::Document(package) => arrive(&state, &req, &peer, message_id, *package).await,
        Inbound::Status(status) => status_in(&state, &req, &peer, *status).await,
    }
}

/// Takes a document package: who sent it and to whom, its evidence and
/// files checked (off the HTTP workers); then the files stored and one
/// append, or nothing when it arrived before.
async fn arrive(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    peer: &str,
    message_id: String,
    package: Package,
) -> Result<HttpResponse, Problem> {
    let org = state.org.snapshot();
    let Package {
        header,
        attachments,
        ..
    } = package;
    let from = access::speaks_for(&org, peer, header.from.organ_id.trim())
        .map_err(|why| Problem::forbidden(why).with("field", "From/OrganId"))?
        .code
        .clone();
    let mut to: Vec<(String, String)> = header
        .to
        .iter()
        .filter_map(|o| org.agency_by_organ(o.organ_id.trim()))
        .filter(|a| !a.is_external())
        .map(|a| (a.organ_id.clone().unwrap_or_default(), a.code.clone()))
        .collect();
    to.sort();
    to.dedup();
    if to.is_empty() {
        return Err(refused(
            "To",
            "no agency of this system is among the recipients",
        ));
    }
    // One package per (sender, DocumentId, recipients here): the same
    // document sent to two of this system's agencies arrives for each.
    let organs: Vec<&str> = to.iter().map(|(o, _)| o.as_str()).collect();
    let id = crate::interchange::arrival_id(
        peer,
        &format!("{}\n{}", header.document_id.trim(), organs.join(",")),
    );
    let stream = format!("{ARRIVAL_PREFIX}{id}");
    let (bundle, files) = evidence_and_files(attachments)?;
    let anchors = state.docs.crls.snapshot().trust.anchors.clone();
    let log_key = state.peers.get(peer).and_then(|p| p.log_key.clone());
    let claims_header = header.clone();
    let judged = web::block(move || judge(anchors, log_key, &claims_header, bundle, files))
        .await
        .map_err(|e| Problem::new(Kind::Internal, "Internal error").with_detail(e.to_string()))??;
    if let Some(existing) = arrival(state, &stream)? {
        let same = existing.header.subject == header.subject
            && existing
                .files
                .iter()
                .map(|f| &f.sha256)
                .eq(judged.files.iter().map(|(f, _)| &f.sha256));
        return if same {
            if judged.verdict.passed {
                link_reply(state, req, &header, id).await?;
            }
            Ok(HttpResponse::Ok()
                .json(serde_json::json!({ "arrival": id, "status": "01", "already": true })))
        } else {
            Err(Problem::new(Kind::Conflict, "Another package already arrived under this DocumentId")
                .with_detail("updates and replacements of an arrived package (BussinessDocType 2, 3) are not taken yet")
                .with("field", "DocumentId"))
        };
    }
    if !judged.verdict.passed {
        return Err(refused(
            &format!("Attachment[{BUNDLE_ATTACHMENT}]"),
            format!(
                "the evidence does not verify: {}",
                judged.verdict.problems.join("; ")
            ),
        ));
    }
    let at = state.docs.clock.now();
    let owner = format!("interchange:{peer}");
    let document = arrived_document(id, peer, &owner, at, &from, &to, &header, &judged);
    let arrived = Arrived {
        id,
        peer: peer.into(),
        message_id,
        from_agency: from,
        to: to.into_iter().map(|(_, code)| code).collect(),
        header,
        files: judged.files.iter().map(|(f, _)| f.clone()).collect(),
        evidence: judged.bundle_sha256.clone(),
        verdict: judged.verdict,
        at,
    };
    let payload = serde_json::to_value(&arrived).expect("an arrival serialises");
    // Checked before any file is stored: a record the log refuses would
    // leave them behind.
    if payload.to_string().len() > MAX_ARRIVAL_RECORD
        || serde_json::to_string(&document).map_or(true, |d| d.len() > MAX_ARRIVAL_RECORD)
    {
        return Err(refused(
            "MessageHeader",
            "the header is too large to record",
        ));
    }
    for (_, bytes) in &judged.files {
        state
            .blobs
            .put(bytes, &owner, at.timestamp())
            .await
            .map_err(crate::http::problem::from_store)?;
    }
    state
        .blobs
        .put(&judged.bundle, &owner, at.timestamp())
        .await
        .map_err(crate::http::problem::from_store)?;
    // The record of what came, the document this system's agencies
    // handle, and (a reply by package) the answered document's `replied`,
    // in one append.
    let event = |e: &crate::domain::document::DocumentEvent| {
        let payload = serde_json::to_value(e).expect("events serialise");
        logged(req, &owner, e.event_type(), payload)
    };
    let reply_state =
        crate::domain::document::evolve(None, &document).expect("an arrival starts a document");
    for _ in 0..3 {
        let link = reply_link(state, &arrived.header, &reply_state)?;
        let mut here = vec![event(&document)];
        let mut appends = vec![StreamAppend::new(
            stream.clone(),
            ExpectedVersion::NoStream,
            vec![logged(req, &owner, ARRIVED, payload.clone())],
        )];
        if let Some(link) = &link {
            here.push(event(&link.linked));
        }
        appends.push(StreamAppend::new(
            crate::domain::document::stream_id(id),
            ExpectedVersion::NoStream,
            here,
        ));
        if let Some(link) = &link {
            appends.push(StreamAppend::new(
                crate::domain::document::stream_id(link.original),
                ExpectedVersion::Exact(link.version),
                vec![event(&link.replied)],
            ));
        }
        match state.events.append(appends, None).await {
            Ok(appended) => {
                return Ok(HttpResponse::Accepted()
                    .insert_header(("Vanthu-Position", appended.last_position.to_string()))
                    .json(serde_json::json!({ "arrival": id, "document": id, "status": "01" })))
            }
            Err(crate::store::AppendError::WrongExpectedVersion { .. }) => {
                // Arrived meanwhile through another request: taken once
                // (and linked, if that request did not).
                if arrival(state, &stream)?.is_some() {
                    link_reply(state, req, &arrived.header, id).await?;
                    return Ok(HttpResponse::Ok().json(
                        serde_json::json!({ "arrival": id, "status": "01", "already": true }),
                    ));
                }
                // The answered document moved: link against its new version.
            }
            Err(e) => return Err(crate::http::problem::from_append(e)),
        }
    }
    Err(
        Problem::new(Kind::Conflict, "The answered document kept changing")
            .with_detail("send again"),
    )
}

/// The document an arrival becomes here (`document.arrived.v1`, stream id
/// the arrival's): the sealed facts, the package's signer, urgency and
/// reply deadline, addressed to this system's agencies `to`.
#[allow(clippy::too_many_arguments)]
fn arrived_document(
    id: uuid::Uuid,
    peer: &str,
    by: &str,
    at: chrono::DateTime<chrono::Utc>,
    from: &str,
    to: &[(String, String)],
    header: &edxml::MessageHeader,
    judged: &Judged,
) -> crate::domain::document::DocumentEvent {
    use crate::domain::document::{self, DocumentEvent, IssuedRecipient};
    let reply_due = header
        .due_date
        .as_deref()
        .and_then(|d| edxml::read_date(d).ok());
    let signer = &header.signer_info;
    DocumentEvent::Arrived(document::Arrived {
        doc: id,
        agency: from.to_owned(),
        by: by.to_owned(),
        at,
        from: document::ArrivedFrom {
            peer: peer.to_owned(),
            organ_id: header.from.organ_id.trim().to_owned(),
            document_id: header.document_id.trim().to_owned(),
            evidence: judged.bundle_sha256.clone(),
            signer_name: signer.full_name.trim().to_owned(),
            signer_position: signer.position.trim().to_owned(),
            competence: signer.competence.trim().to_owned(),
        },
        recipients: to
            .iter()
            .map(|(_, code)| IssuedRecipient {
                agency: code.clone(),
                reply_due,
            })
            .collect(),
        urgency: match header.other_info.priority {
            1 => Urgency::Khan,
            2 => Urgency::ThuongKhan,
            3 | 4 => Urgency::HoaToc,
            _ => Urgency::Normal,
        },
        content: judged.files.iter().map(|(f, _)| f.clone()).collect(),
        seal: judged.seal.jws.clone(),
        seal_payload: judged.seal.payload.clone(),
    })
}

/// What linking an arrived reply to the document its package answers
/// appends: `replied` on the original (at `version`), `reply_linked` on
/// the reply.
struct ReplyLink {
    original: uuid::Uuid,
    version: u64,
    replied: crate::domain::document::DocumentEvent,
    linked: crate::domain::document::DocumentEvent,
}

/// A package that answers a document this system issued (its
/// `ResponseFor` names it, with the issuing agency's identifier) is that
/// recipient's reply (`domain::document::reply_by_package`). `None` when
/// it names nothing of ours, is linked already, or is no reply of a
/// recipient's: such a package stays an ordinary arrival.
fn reply_link(
    state: &AppState,
    header: &edxml::MessageHeader,
    reply: &Document,
) -> Result<Option<ReplyLink>, Problem> {
    use crate::domain::document;
    let Some((original_id, response_for)) = header.response_for.iter().find_map(|r| {
        uuid::Uuid::parse_str(r.document_id.trim())
            .ok()
            .map(|id| (id, r))
    }) else {
        return Ok(None);
    };
    let Some(original) = crate::service::load::document(&state.log, original_id, None)
        .map_err(crate::http::problem::from_store)?
    else {
        return Ok(None);
    };
    let ours = state.org.read(|org| {
        org.agencies
            .get(&original.agency)
            .and_then(|a| a.organ_id.clone())
    });
    if ours.as_deref() != Some(response_for.organ_id.trim()) {
        return Ok(None);
    }
    let now = state.docs.clock.now();
    match document::reply_by_package(&original, reply, now, &state.docs.calendar) {
        Ok(Some((replied, linked))) => Ok(Some(ReplyLink {
            original: original_id,
            version: original.version,
            replied,
            linked,
        })),
        Ok(None) => Ok(None),
        Err(why) => {
            tracing::info!(reply = %reply.id, original = %original_id, %why, "a ResponseFor not linked");
            Ok(None)
        }
    }
}

/// Links arrival `reply` (already recorded: a package sent again, now
/// saying what it answers) as [`reply_link`] says, in one append.
async fn link_reply(
    state: &AppState,
    req: &HttpRequest,
    header: &edxml::MessageHeader,
    reply: uuid::Uuid,
) -> Result<(), Problem> {
    use crate::domain::document;
    for _ in 0..3 {
        let Some(reply_doc) = crate::service::load::document(&state.log, reply, None)
            .map_err(crate::http::problem::from_store)?
        else {
            return Ok(());
        };
        let Some(link) = reply_link(state, header, &reply_doc)? else {
            return Ok(());
        };
        let event = |e: &document::DocumentEvent| {
            let payload = serde_json::to_value(e).expect("events serialise");
            logged(req, &reply_doc.author, e.event_type(), payload)
        };
        let appended = state
            .events
            .append(
                vec![
                    StreamAppend::new(
                        document::stream_id(link.original),
                        ExpectedVersion::Exact(link.version),
                        vec![event(&link.replied)],
                    ),
                    StreamAppend::new(
                        document::stream_id(reply),
                        ExpectedVersion::Exact(reply_doc.version),
                        vec![event(&link.linked)],
                    ),
                ],
                None,
            )
            .await;
        match appended {
            Ok(_) => return Ok(()),
            Err(crate::store::AppendError::WrongExpectedVersion { .. }) => continue,
            Err(e) => return Err(crate::http::problem::from_append(e)),
        }
    }
    Err(
        Problem::new(Kind::Conflict, "The answered document kept changing")
            .with_detail("send again"),
    )
}

/// Appends one event of `actor` to `stream` at `expected`.
async fn append_one(
    state: &AppState,
    req: &HttpRequest,
    actor: String,
    stream: String,
    expected: ExpectedVersion,
    event_type: &str,
    payload: serde_json::Value,
) -> Result<crate::store::Appended, crate::store::AppendError> {
    let event = logged(req, &actor, event_type, payload);
    state
        .events
        .append(vec![StreamAppend::new(stream, expected, vec![event])], None)
        .await
}

/// An event of `actor`'s, with the request's id.
fn logged(
    req: &HttpRequest,
    actor: &str,
    event_type: &str,
    payload: serde_json::Value,
) -> NewEvent {
    NewEvent::new(event_type, payload).with_metadata(Metadata {
        actor: Some(actor.to_owned()),
        request_id: crate::http::request_id::of(req),
        ..Default::default()
    })
}

/// The largest arrival record written (the log takes records up to 64 KiB).
const MAX_ARRIVAL_RECORD: usize = 60_000;

/// The arrival recorded in `stream`, if any.
fn arrival(state: &AppState, stream: &str) -> Result<Option<Arrived>, Problem> {
    let records = state
        .log
        .read_stream(stream, 1, 1)
        .map_err(crate::http::problem::from_store)?;
    Ok(records
        .first()
        .and_then(|r| serde_json::from_value(r.payload.clone()).ok()))
}

/// The package's evidence bundle and its other files (moved, not copied).
fn evidence_and_files(attachments: Vec<Attachment>) -> Result<(Vec<u8>, Vec<Attachment>), Problem> {
    let mut bundle = None;
    let mut files = Vec::new();
    for a in attachments {
        if a.name == BUNDLE_ATTACHMENT && bundle.is_none() {
            bundle = Some(a.bytes);
        } else {
            files.push(a);
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

/// What the offline check of a package found.
struct Judged {
    verdict: ArrivalVerdict,
    /// Each file with its SHA-256, and its bytes.
    files: Vec<(crate::domain::signing::ContentRef, Vec<u8>)>,
    bundle: Vec<u8>,
    bundle_sha256: String,
    /// The issuing agency's seal, as verified.
    seal: crate::bundle::Signed<crate::domain::signing::SealPayload>,
}

/// Verifies the evidence offline against this system's trust anchors (and
/// its checkpoint against the peer's log key, when configured), checks the
/// header against what was sealed (`domain::access`), and that
/// the files are exactly the ones signed. Blocking: hashes and signatures.
fn judge(
    anchors: Vec<Vec<u8>>,
    log_key: Option<String>,
    header: &edxml::MessageHeader,
    bundle_bytes: Vec<u8>,
    files: Vec<Attachment>,
) -> Result<Judged, Problem> {
    use sha2::Digest;
    let field = format!("Attachment[{BUNDLE_ATTACHMENT}]");
    let bundle: crate::bundle::Bundle = serde_json::from_slice(&bundle_bytes)
        .map_err(|e| refused(&field, format!("not a vanthu bundle: {e}")))?;
    let report = crate::bundle::verify_bundle(&bundle, anchors, log_key.as_deref())
        .map_err(|e| refused(&field, e.to_string()))?;
    let claims = access::PackageClaims {
        from_organ: header.from.organ_id.trim(),
        code_number: &header.code.code_number,
        code_notation: &header.code.code_notation,
        promulgation_date: edxml::read_date(&header.promulgation_info.promulgation_date)
            .map_err(|e| refused("PromulgationInfo/PromulgationDate", e))?,
        subject: &header.subject,
    };
    access::package_matches_seal(&claims, &bundle.seal.payload, &bundle.org).map_err(
        |(field, why)| {
            refused(
                field,
                format!("{why}: the package says otherwise than its seal"),
            )
        },
    )?;
    let signed = &bundle.seal.payload.signed;
    let mut problems = report.problems.clone();
    problems.extend(
        report
            .log
            .problems
            .iter()
            .map(|p| format!("the log evidence: {p}")),
    );
    for (what, r) in [
        ("the official's signature", &report.personal),
        ("the seal", &report.seal),
    ] {
        if !r.passed() {
            problems.push(format!("{what}: {:?} {:?}", r.indication, r.sub_indication));
        }
    }
    let hashed: Vec<(crate::domain::signing::ContentRef, Vec<u8>)> = files
        .into_iter()
        .map(|f| {
            let sha256 = hex::encode(sha2::Sha256::digest(&f.bytes));
            (
                crate::domain::signing::ContentRef {
                    name: f.name,
                    sha256,
                },
                f.bytes,
            )
        })
        .collect();
    for c in &signed.content {
        if !hashed.iter().any(|(f, _)| f.sha256 == c.sha256) {
            problems.push(format!(
                "file {} ({}) is not in the package",
                c.name, c.sha256
            ));
        }
    }
    for (f, _) in &hashed {
        if !signed.content.iter().any(|c| c.sha256 == f.sha256) {
            problems.push(format!("file {} is not what was signed", f.name));
        }
    }
    Ok(Judged {
        verdict: ArrivalVerdict {
            passed: report.passed && problems.is_empty(),
            signer: signed.signer.clone(),
            authority: signed.authority.as_str().into(),
            seal_agency: signed.agency.clone(),
            problems,
        },
        files: hashed,
        bundle_sha256: hex::encode(sha2::Sha256::digest(&bundle_bytes)),
        bundle: bundle_bytes,
        seal: bundle.seal,
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
    if code == StatusCode::RecallRequested {
        return asked_back(state, req, peer, &status, reported_at).await;
    }
    let id =
        uuid::Uuid::parse_str(status.response_for.document_id.trim()).map_err(|_| unknown())?;
    for _ in 0..3 {
        let doc = crate::service::load::document(&state.log, id, None)
            .map_err(crate::http::problem::from_store)?
            .ok_or_else(unknown)?;
        let org = state.org.snapshot();
        let ours = org
            .agencies
            .get(&doc.agency)
            .and_then(|a| a.organ_id.clone());
        if doc.origin.is_some() || ours.as_deref() != Some(status.response_for.organ_id.trim()) {
            // The same answer as for no document at all: whether another
            // agency's document exists is not the peer's business.
            return Err(unknown());
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
        let appended = append_one(
            state,
            req,
            format!("interchange:{peer}"),
            document::stream_id(id),
            ExpectedVersion::Exact(doc.version),
            event.event_type(),
            serde_json::to_value(&event).expect("events serialise"),
        )
        .await;
        match appended {
            Ok(appended) => {
                return Ok(HttpResponse::Accepted()
                    .insert_header(("Vanthu-Position", appended.last_position.to_string()))
                    .json(serde_json::json!({ "document": id, "status": code.code() })))
            }
            // The document moved meanwhile: judge again on the new version.
            Err(crate::store::AppendError::WrongExpectedVersion { .. }) => continue,
            Err(e) => return Err(crate::http::problem::from_append(e)),
        }
    }
    Err(Problem::new(Kind::Conflict, "The document kept changing").with_detail("try again"))
}

/// A recall request (13) from the system that sent a document here: its
/// `ResponseFor` names the sender's document; every arrival of it from
/// this peer (one per addressed agency here) records the request, once,
/// for the addressed agencies' clerks to answer (15 or 16).
async fn asked_back(
    state: &AppState,
    req: &HttpRequest,
    peer: &str,
    status: &crate::interchange::edxml::MessageStatus,
    reported_at: chrono::DateTime<chrono::Utc>,
) -> Result<HttpResponse, Problem> {
    use crate::domain::document;
    let document_id = status.response_for.document_id.trim();
    let from_organ = status.from.organ_id.trim();
    if status.response_for.organ_id.trim() != from_organ {
        return Err(
            Problem::forbidden("only the issuing agency asks for its document back")
                .with("field", "From/OrganId"),
        );
    }
    // Packages are addressed one agency of this system at a time: the
    // arrivals are found by their ids, no index needed.
    let organs: Vec<String> = state.org.read(|org| {
        org.agencies
            .values()
            .filter(|a| !a.is_external())
            .filter_map(|a| a.organ_id.clone())
            .collect()
    });
    let ids: Vec<uuid::Uuid> = organs
        .iter()
        .map(|organ| crate::interchange::arrival_id(peer, &format!("{document_id}\n{organ}")))
        .collect();
    // Every arrival of it records the request, in one append, or none does.
    for _ in 0..3 {
        let mut found = Vec::new();
        for id in &ids {
            if let Some(doc) = crate::service::load::document(&state.log, *id, None)
                .map_err(crate::http::problem::from_store)?
            {
                found.push(doc);
            }
        }
        if found.is_empty() {
            return Err(refused(
                "ResponseFor/DocumentId",
                format!("no document {document_id} arrived here from {peer}"),
            ));
        }
        let now = state.docs.clock.now();
        let mut appends = Vec::new();
        for doc in &found {
            let event = match document::ask_back(
                doc,
                peer,
                from_organ,
                &status.description,
                reported_at,
                now,
            ) {
                Err(why) => return Err(Problem::forbidden(why).with("field", "From/OrganId")),
                Ok(None) => continue,
                Ok(Some(event)) => event,
            };
            appends.push(StreamAppend::new(
                document::stream_id(doc.id),
                ExpectedVersion::Exact(doc.version),
                vec![logged(
                    req,
                    &format!("interchange:{peer}"),
                    event.event_type(),
                    serde_json::to_value(&event).expect("events serialise"),
                )],
            ));
        }
        let recorded: Vec<String> = appends
            .iter()
            .map(|a| {
                a.stream
                    .trim_start_matches(document::STREAM_PREFIX)
                    .to_owned()
            })
            .collect();
        if appends.is_empty() {
            return Ok(HttpResponse::Ok()
                .json(serde_json::json!({ "documents": [], "status": "13", "already": true })));
        }
        match state.events.append(appends, None).await {
            Ok(appended) => {
                return Ok(HttpResponse::Accepted()
                    .insert_header(("Vanthu-Position", appended.last_position.to_string()))
                    .json(serde_json::json!({ "documents": recorded, "status": "13" })))
            }
            Err(crate::store::AppendError::WrongExpectedVersion { .. }) => continue,
            Err(e) => return Err(crate::http::problem::from_append(e)),
        }
    }
    Err(Problem::new(Kind::Conflict, "The documents kept changing").with_detail("send again"))
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
    caller: crate::http::auth::Caller,
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
            .map_err(crate::http::problem::from_store)?
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
