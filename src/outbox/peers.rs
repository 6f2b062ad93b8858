//! The interchange's deliveries: edXML packages composed at send time for
//! external recipients, and status messages (01 arrived … 16 recall
//! refused, 13 recall requested) to the peer a document travelled with.
//!
//! Must never: make a status twice for one (document, agency, code), or
//! send a package or status about a confidential document.

use uuid::Uuid;

use super::watches::unwatch;
use super::{delivery_id, Compose, Delivery, External};
use crate::domain::document::DocumentEvent;
use crate::projections::feed::Issued;
use crate::projections::{ProjectionError, Tx};

/// One package delivery per external recipient of an issued document, to
/// the peer its agency is reached through.
pub(super) fn packages(
    doc: Uuid,
    e: &crate::domain::document::Issued,
    record: &crate::store::codec::Record,
    tx: &mut Tx<'_>,
) -> Result<(), ProjectionError> {
    for r in &e.recipients {
        package(doc, &r.agency, "edxml.document", record, tx)?;
    }
    Ok(())
}

/// The package of `doc` for `agency`, if another system's: composed when
/// sent, to the peer the agency is reached through.
fn package(
    doc: Uuid,
    agency: &str,
    kind: &str,
    record: &crate::store::codec::Record,
    tx: &mut Tx<'_>,
) -> Result<(), ProjectionError> {
    let Some(external) = tx.get_json::<External>(format!("e/{agency}").as_bytes())? else {
        return Ok(());
    };
    let subscriber = format!("{}{}", crate::interchange::PEER_PREFIX, external.peer);
    let id = delivery_id(&subscriber, record.position, &format!("{kind}:{agency}"));
    if tx.get(format!("q/{id}").as_bytes())?.is_some() {
        return Ok(());
    }
    let delivery = Delivery {
        id,
        webhook: subscriber,
        client: String::new(),
        kind: kind.into(),
        doc,
        position: record.position,
        created_at: record.recorded_at,
        body: String::new(),
        compose: Some(Compose::Package {
            agency: agency.to_owned(),
        }),
    };
    super::make(tx, &delivery)
}

/// A package arrived: status 01 (Đã đến) goes back to the sending peer,
/// once for each of this system's agencies it was addressed to.
pub(super) fn arrived(
    arrival: &crate::interchange::Arrived,
    record: &crate::store::codec::Record,
    tx: &mut Tx<'_>,
) -> Result<(), ProjectionError> {
    use crate::domain::interchange::StatusCode;
    tx.put_json(format!("v/{}", arrival.id), arrival);
    for agency in &arrival.to {
        status(
            arrival,
            agency,
            StatusCode::Arrived,
            StatusCode::Arrived.name(),
            record,
            tx,
        )?;
    }
    Ok(())
}

/// What a document's event tells the systems it travelled between: for
/// an arrived document, its status at this system's agency (02 refused,
/// 03 received, 04 assigned, 06 completed, 15/16 the recall answered);
/// for one issued here, a recall request (13) to each external recipient,
/// and a reply linked to an arrived document travels again, now saying
/// what it answers.
pub(super) fn interchange(
    doc: Uuid,
    event: &DocumentEvent,
    record: &crate::store::codec::Record,
    tx: &mut Tx<'_>,
) -> Result<(), ProjectionError> {
    use crate::domain::interchange::StatusCode;
    if let Some(arrival) =
        tx.get_json::<crate::interchange::Arrived>(format!("v/{doc}").as_bytes())?
    {
        let (agency, code, description) = match event {
            DocumentEvent::Refused(e) => (&e.agency, StatusCode::Refused, e.reason.as_str()),
            DocumentEvent::Received(e) => (&e.agency, StatusCode::Received, ""),
            DocumentEvent::Assigned(e) => {
                tx.put(format!("l/{doc}/{}", e.agency), e.lead.clone().into_bytes());
                (&e.agency, StatusCode::Assigned, "")
            }
            DocumentEvent::Completed(e) => {
                let lead = tx.get(format!("l/{doc}/{}", e.agency).as_bytes())?;
                if lead.as_deref() != Some(e.unit.as_bytes()) {
                    return Ok(());
                }
                (&e.agency, StatusCode::Completed, "")
            }
            DocumentEvent::RecallAnswered(e) if e.agreed => {
                (&e.agency, StatusCode::RecallAgreed, e.reason.as_str())
            }
            DocumentEvent::RecallAnswered(e) => {
                (&e.agency, StatusCode::RecallRefused, e.reason.as_str())
            }
            _ => return Ok(()),
        };
        let description = if description.is_empty() {
            code.name()
        } else {
            description
        };
        return status(&arrival, agency, code, description, record, tx);
    }
    match event {
        // A recipient that refused it has nothing to give back, and owes
        // no reply.
        DocumentEvent::InterchangeStatus(e) if e.code == StatusCode::Refused.code() => {
            tx.put(format!("r/{doc}/{}", e.agency), Vec::new());
            unwatch(doc, &e.agency, tx)
        }
        DocumentEvent::Recalled(e) => {
            let Some(issued) = tx.get_json::<Issued>(format!("m/{doc}").as_bytes())? else {
                return Ok(());
            };
            for r in &issued.recipients {
                recall_request(&issued, &r.agency, &e.reason, record, tx)?;
            }
            Ok(())
        }
        DocumentEvent::ReplyLinked(e) => {
            let (Some(arrival), Some(reply)) = (
                tx.get_json::<crate::interchange::Arrived>(
                    format!("v/{}", e.in_reply_to).as_bytes(),
                )?,
                tx.get_json::<Issued>(format!("m/{doc}").as_bytes())?,
            ) else {
                return Ok(());
            };
            if reply
                .recipients
                .iter()
                .any(|r| r.agency == arrival.from_agency)
            {
                package(doc, &arrival.from_agency, "edxml.reply", record, tx)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Whether status `code` was already made for (`doc`, `agency`); marks it
/// made: each is sent at most once per document and agency.
fn once(
    doc: Uuid,
    agency: &str,
    code: crate::domain::interchange::StatusCode,
    tx: &mut Tx<'_>,
) -> Result<bool, ProjectionError> {
    let key = format!("y/{doc}/{agency}/{}", code.code());
    if tx.get(key.as_bytes())?.is_some() {
        return Ok(false);
    }
    tx.put(key, Vec::new());
    Ok(true)
}

/// Status 13 (Yêu cầu lấy lại) about `issued`, a document of this
/// system's recalled, to external recipient `agency`'s peer.
fn recall_request(
    issued: &Issued,
    agency: &str,
    reason: &str,
    record: &crate::store::codec::Record,
    tx: &mut Tx<'_>,
) -> Result<(), ProjectionError> {
    use crate::domain::interchange::StatusCode;
    let code = StatusCode::RecallRequested;
    let (Some(external), Some(organ)) = (
        tx.get_json::<External>(format!("e/{agency}").as_bytes())?,
        tx.get(format!("o/{}", issued.agency).as_bytes())?,
    ) else {
        return Ok(());
    };
    if tx
        .get(format!("r/{}/{agency}", issued.doc).as_bytes())?
        .is_some()
        || !once(issued.doc, agency, code, tx)?
    {
        return Ok(());
    }
    let organ = String::from_utf8_lossy(&organ).into_owned();
    let name = name_of(&issued.agency, tx)?;
    let description: String = if reason.is_empty() {
        code.name().into()
    } else {
        reason
            .chars()
            .take(crate::domain::document::MAX_REASON)
            .collect()
    };
    let message = crate::interchange::status_for(
        crate::interchange::edxml::ResponseFor {
            organ_id: organ.clone(),
            code: format!("{:02}/{}", issued.number, issued.symbol),
            promulgation_date: crate::interchange::edxml::write_date(issued.issued_on),
            document_id: issued.doc.to_string(),
        },
        &organ,
        &name,
        code,
        &description,
        record.recorded_at,
    );
    let subscriber = format!("{}{}", crate::interchange::PEER_PREFIX, external.peer);
    let kind = format!("edxml.status.{}", code.code());
    put_status(issued.doc, subscriber, kind, agency, message, record, tx)
}

fn put_status(
    doc: Uuid,
    subscriber: String,
    kind: String,
    agency: &str,
    message: crate::interchange::edxml::MessageStatus,
    record: &crate::store::codec::Record,
    tx: &mut Tx<'_>,
) -> Result<(), ProjectionError> {
    let id = delivery_id(&subscriber, record.position, &format!("{kind}:{agency}"));
    let delivery = Delivery {
        id,
        webhook: subscriber,
        client: String::new(),
        kind,
        doc,
        position: record.position,
        created_at: record.recorded_at,
        body: message.to_xml(),
        compose: None,
    };
    super::make(tx, &delivery)
}

/// One status message about `arrival` from this system's `agency`, to the
/// peer it came from: at most once per code (nothing if the agency has no
/// identifier).
fn status(
    arrival: &crate::interchange::Arrived,
    agency: &str,
    code: crate::domain::interchange::StatusCode,
    description: &str,
    record: &crate::store::codec::Record,
    tx: &mut Tx<'_>,
) -> Result<(), ProjectionError> {
    let Some(organ) = tx.get(format!("o/{agency}").as_bytes())? else {
        return Ok(());
    };
    if !once(arrival.id, agency, code, tx)? {
        return Ok(());
    }
    let organ = String::from_utf8_lossy(&organ).into_owned();
    let subscriber = format!("{}{}", crate::interchange::PEER_PREFIX, arrival.peer);
    let kind = format!("edxml.status.{}", code.code());
    let message = crate::interchange::status_for(
        arrival.response_for(),
        &organ,
        &name_of(agency, tx)?,
        code,
        description,
        record.recorded_at,
    );
    put_status(arrival.id, subscriber, kind, agency, message, record, tx)
}

/// An agency's name, as the organisation's events gave it (its code when
/// they did not).
fn name_of(agency: &str, tx: &Tx<'_>) -> Result<String, ProjectionError> {
    Ok(tx
        .get(format!("n/{agency}").as_bytes())?
        .map(|n| String::from_utf8_lossy(&n).into_owned())
        .unwrap_or_else(|| agency.to_owned()))
}
