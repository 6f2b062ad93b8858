//! Composing an issued document's edXML package for a peer (the outbox
//! calls it through the composer when it sends): the header fields
//! 1.1–1.14, the files, and the evidence bundle.
//!
//! Must never: compose a package for a document `domain::access` keeps
//! from the interchange, or one over the peer's size limit.

use std::future::Future;

use super::Env;
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
/// document's header fields, its files, and its evidence bundle
/// (`bundle_of`: the official's and the seal's signatures with their
/// chains, the CRLs, the organisation then, and the signing and issuing
/// records with their log proofs), so the receiver verifies it offline.
pub async fn package_for<F, Fut>(
    env: &Env<'_>,
    delivery: &Delivery,
    bundle_of: F,
) -> Result<Vec<u8>, ComposeError>
where
    F: FnOnce(Document) -> Fut,
    Fut: Future<Output = Result<crate::bundle::Bundle, String>>,
{
    let Some(Compose::Package { agency }) = &delivery.compose else {
        return Err(ComposeError::Permanent("not a package".into()));
    };
    let transient = |e: String| ComposeError::Transient(e);
    let permanent = |e: String| ComposeError::Permanent(e);
    let doc = crate::service::load::document(env.log, delivery.doc, None)
        .map_err(|e| transient(e.to_string()))?
        .ok_or_else(|| permanent(format!("no document {}", delivery.doc)))?;
    let org = (env.org)();
    if !access::travels_to(&doc, &org, agency) {
        return Err(permanent(format!(
            "document {} does not travel to {agency} (not issued to it, confidential, or {agency} is not another system's)",
            doc.id
        )));
    }
    let bundle = bundle_of(doc.clone()).await.map_err(transient)?;
    let mut attachments = Vec::new();
    for (i, c) in doc.draft.content.iter().enumerate() {
        let bytes = env
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
    // The signer as the sealed history names them, which is what the
    // receiver checks the header against (D3).
    let sealed = crate::domain::sealed::SealedFacts::of(&bundle.seal.payload, &bundle.org, &[]);
    header.signer_info = edxml::SignerInfo {
        competence: sealed.competence,
        position: sealed.signer_position,
        full_name: sealed.signer_name,
    };
    // A reply to a document that came from the same agency says so (1.12).
    if let Some(answered) = doc.in_reply_to {
        let answered = crate::service::load::document(env.log, answered, None)
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
        if xml.len() > env.peers.max_package_bytes {
            Err(permanent(format!(
                "the package is {} bytes, over the {} a peer takes (interchange.max_package_bytes): send it another way",
                xml.len(),
                env.peers.max_package_bytes
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
        // The deadline as issued, which the issuing record in the bundle
        // states (D3: the receiver believes only that); an extension here
        // does not travel.
        due_date: issue
            .original_reply_due
            .get(agency)
            .copied()
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
