//! Taking a peer's document package: who sent it and to whom, its
//! evidence and files checked offline (off the async workers), then the
//! files stored and one append (the arrival, the document this system's
//! agencies handle, and a reply's link to what it answers), or nothing
//! when it arrived before.
//!
//! Must never: store a file or write a record for a package that is
//! refused, or take a package whose evidence does not verify.

use super::{arrival, document_event, logged, Env, Failure, Taken, BUNDLE_ATTACHMENT};
use crate::domain::access;
use crate::domain::document::{Document, Urgency};
use crate::domain::interchange::StatusCode;
use crate::domain::sealed::{unsealed_claims, HeaderClaims, SealedFacts};
use crate::interchange::edxml::{self, Attachment, Package};
use crate::interchange::{ArrivalVerdict, Arrived, ARRIVAL_PREFIX, ARRIVED};
use crate::service::commands::{append_racing, Attempt, Raced};
use crate::store::{ExpectedVersion, StreamAppend};

/// The largest arrival record written (the log takes records up to 64 KiB).
const MAX_ARRIVAL_RECORD: usize = 60_000;

pub(super) async fn arrive(
    env: &Env<'_>,
    peer: &str,
    message_id: String,
    package: Package,
) -> Result<Taken, Failure> {
    let org = (env.org)();
    let Package {
        header,
        attachments,
        ..
    } = package;
    let from = access::speaks_for(&org, peer, header.from.organ_id.trim())
        .map_err(|why| Failure::forbidden("From/OrganId", why))?
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
        return Err(Failure::refused(
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
    let anchors = env.crls.snapshot().trust.anchors.clone();
    let log_key = env.peers.get(peer).and_then(|p| p.log_key.clone());
    let log_key_known = log_key.is_some();
    let claims_header = header.clone();
    let judged =
        tokio::task::spawn_blocking(move || judge(anchors, log_key, &claims_header, bundle, files))
            .await
            .map_err(|e| Failure::Internal(e.to_string()))??;
    let already = || {
        Taken::already(
            serde_json::json!({ "arrival": id, "status": StatusCode::Arrived.code(), "already": true }),
        )
    };
    if let Some(existing) = arrival(env, &stream)? {
        let same = existing.header.subject == header.subject
            && existing
                .files
                .iter()
                .map(|f| &f.sha256)
                .eq(judged.files.iter().map(|(f, _)| &f.sha256));
        return if same {
            if judged.verdict.passed {
                link_reply(env, &header, id).await?;
            }
            Ok(already())
        } else {
            Err(Failure::Replaced)
        };
    }
    if !judged.verdict.passed {
        return Err(Failure::refused(
            &format!("Attachment[{BUNDLE_ATTACHMENT}]"),
            format!(
                "the evidence does not verify: {}",
                judged.verdict.problems.join("; ")
            ),
        ));
    }
    // D3: recipients, reply deadlines and the signer are what was sealed;
    // a header that says otherwise is refused when the peer's log
    // authenticates the issuing record, else taken as sealed and the
    // difference kept.
    let here: Vec<&str> = to.iter().map(|(o, _)| o.as_str()).collect();
    let signer = &header.signer_info;
    let differences = unsealed_claims(
        &HeaderClaims {
            to: &here,
            due_date: header
                .due_date
                .as_deref()
                .filter(|d| !d.trim().is_empty())
                .and_then(|d| edxml::read_date(d).ok()),
            signer_name: &signer.full_name,
            signer_position: &signer.position,
            competence: &signer.competence,
        },
        &judged.sealed,
    );
    if let (true, Some((field, why))) = (log_key_known, differences.first()) {
        return Err(Failure::refused(
            field,
            format!("{why}: the package says otherwise than its sealed issuing record"),
        ));
    }
    let unsealed: Vec<String> = differences
        .iter()
        .map(|(field, why)| format!("{field}: {why}"))
        .collect();
    to.retain(|(organ, _)| judged.sealed.reply_due(organ).is_some());
    if to.is_empty() {
        return Err(Failure::refused(
            "To",
            "no agency of this system is among the sealed recipients",
        ));
    }
    let at = env.clock.now();
    let owner = format!("interchange:{peer}");
    let document = arrived_document(
        id, peer, &owner, at, &from, &to, &header, &judged, &unsealed,
    );
    let sealed_due = to
        .iter()
        .map(|(organ, code)| (code.clone(), judged.sealed.reply_due(organ).flatten()))
        .collect();
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
        sealed_due: Some(sealed_due),
        unsealed,
    };
    let payload = serde_json::to_value(&arrived).expect("an arrival serialises");
    // Checked before any file is stored: a record the log refuses would
    // leave them behind.
    if payload.to_string().len() > MAX_ARRIVAL_RECORD
        || serde_json::to_string(&document).map_or(true, |d| d.len() > MAX_ARRIVAL_RECORD)
    {
        return Err(Failure::refused(
            "MessageHeader",
            "the header is too large to record",
        ));
    }
    for (_, bytes) in &judged.files {
        env.blobs.put(bytes, &owner, at.timestamp()).await?;
    }
    env.blobs
        .put(&judged.bundle, &owner, at.timestamp())
        .await?;
    // The record of what came, the document this system's agencies
    // handle, and (a reply by package) the answered document's `replied`,
    // in one append.
    let event = |e: &crate::domain::document::DocumentEvent| document_event(env, &owner, e);
    let reply_state =
        crate::domain::document::evolve(None, &document).expect("an arrival starts a document");
    let raced = append_racing(env.events, || -> Result<Attempt<()>, Failure> {
        // Arrived meanwhile through another request: taken once (and
        // linked below, if that request did not).
        if arrival(env, &stream)?.is_some() {
            return Ok(Attempt::Done(()));
        }
        // Else the answered document moved: link against its new version.
        let link = reply_link(env, &arrived.header, &reply_state)?;
        let mut here = vec![event(&document)];
        let mut appends = vec![StreamAppend::new(
            stream.clone(),
            ExpectedVersion::NoStream,
            vec![logged(env, &owner, ARRIVED, payload.clone())],
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
        Ok(Attempt::Append(appends))
    })
    .await
    .map_err(|e| Failure::raced(e, "The answered document kept changing", "send again"))?;
    match raced {
        Raced::Appended(appended) => Ok(Taken::appended(
            appended.last_position,
            serde_json::json!({ "arrival": id, "document": id, "status": StatusCode::Arrived.code() }),
        )),
        Raced::Done(()) => {
            link_reply(env, &arrived.header, id).await?;
            Ok(already())
        }
    }
}

/// The document an arrival becomes here (`document.arrived.v1`, stream id
/// the arrival's): the sealed facts (signer, recipients, reply deadlines),
/// the package's urgency (which no signature covers), addressed to this
/// system's agencies `to`, with where the header disagreed (`unsealed`).
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
    unsealed: &[String],
) -> crate::domain::document::DocumentEvent {
    use crate::domain::document::{self, DocumentEvent, IssuedRecipient};
    let sealed = &judged.sealed;
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
            signer_name: sealed.signer_name.trim().to_owned(),
            signer_position: sealed.signer_position.trim().to_owned(),
            competence: sealed.competence.trim().to_owned(),
            unsealed: unsealed.to_vec(),
        },
        recipients: to
            .iter()
            .map(|(organ, code)| IssuedRecipient {
                agency: code.clone(),
                reply_due: sealed.reply_due(organ).flatten(),
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
    env: &Env<'_>,
    header: &edxml::MessageHeader,
    reply: &Document,
) -> Result<Option<ReplyLink>, Failure> {
    use crate::domain::document;
    let Some((original_id, response_for)) = header.response_for.iter().find_map(|r| {
        uuid::Uuid::parse_str(r.document_id.trim())
            .ok()
            .map(|id| (id, r))
    }) else {
        return Ok(None);
    };
    let Some(original) = crate::service::load::document(env.log, original_id, None)? else {
        return Ok(None);
    };
    let ours = (env.org)()
        .agencies
        .get(&original.agency)
        .and_then(|a| a.organ_id.clone());
    if ours.as_deref() != Some(response_for.organ_id.trim()) {
        return Ok(None);
    }
    let now = env.clock.now();
    match document::reply_by_package(&original, reply, now, env.calendar) {
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
    env: &Env<'_>,
    header: &edxml::MessageHeader,
    reply: uuid::Uuid,
) -> Result<(), Failure> {
    use crate::domain::document;
    append_racing(env.events, || -> Result<Attempt<()>, Failure> {
        let Some(reply_doc) = crate::service::load::document(env.log, reply, None)? else {
            return Ok(Attempt::Done(()));
        };
        let Some(link) = reply_link(env, header, &reply_doc)? else {
            return Ok(Attempt::Done(()));
        };
        let event = |e: &document::DocumentEvent| document_event(env, &reply_doc.author, e);
        Ok(Attempt::Append(vec![
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
        ]))
    })
    .await
    .map_err(|e| Failure::raced(e, "The answered document kept changing", "send again"))?;
    Ok(())
}

/// The package's evidence bundle and its other files (moved, not copied).
fn evidence_and_files(attachments: Vec<Attachment>) -> Result<(Vec<u8>, Vec<Attachment>), Failure> {
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
        Failure::refused(
            "Signature",
            format!("no verifiable signature: the package carries no {BUNDLE_ATTACHMENT} (XML-DSig envelopes are not checked here)"),
        )
    })?;
    if files.is_empty() {
        return Err(Failure::refused(
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
    /// What the seal and the issuing record holding it say (D3).
    sealed: SealedFacts,
}

/// The recipients of the bundle's issuing record that holds its seal
/// (`document.issued.v1`); none when no record does (the verdict then
/// fails: `bundle::verify_log`).
fn sealed_recipients(
    bundle: &crate::bundle::Bundle,
) -> Vec<crate::domain::document::IssuedRecipient> {
    let records = bundle.log.iter().flat_map(|l| &l.records);
    records
        .filter_map(|r| serde_json::from_str::<crate::store::Record>(&r.record).ok())
        .find(|r| {
            r.event_type == "document.issued.v1"
                && r.payload.get("seal").and_then(|s| s.as_str()) == Some(bundle.seal.jws.as_str())
        })
        .and_then(|r| serde_json::from_value(r.payload.get("recipients")?.clone()).ok())
        .unwrap_or_default()
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
) -> Result<Judged, Failure> {
    use sha2::Digest;
    let field = format!("Attachment[{BUNDLE_ATTACHMENT}]");
    let bundle: crate::bundle::Bundle = serde_json::from_slice(&bundle_bytes)
        .map_err(|e| Failure::refused(&field, format!("not a vanthu bundle: {e}")))?;
    let report = crate::bundle::verify_bundle(&bundle, anchors, log_key.as_deref())
        .map_err(|e| Failure::refused(&field, e.to_string()))?;
    let claims = access::PackageClaims {
        from_organ: header.from.organ_id.trim(),
        code_number: &header.code.code_number,
        code_notation: &header.code.code_notation,
        promulgation_date: edxml::read_date(&header.promulgation_info.promulgation_date)
            .map_err(|e| Failure::refused("PromulgationInfo/PromulgationDate", e))?,
        subject: &header.subject,
    };
    access::package_matches_seal(&claims, &bundle.seal.payload, &bundle.org).map_err(
        |(field, why)| {
            Failure::refused(
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
        sealed: SealedFacts::of(
            &bundle.seal.payload,
            &bundle.org,
            &sealed_recipients(&bundle),
        ),
        seal: bundle.seal,
    })
}
