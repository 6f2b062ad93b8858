//! Taking a peer's status messages: a code about a document this system
//! issued to one of the peer's agencies (recorded once per code and
//! recipient), or a recall request (13) about a document the peer sent
//! here.
//!
//! Must never: record a status from a peer for an agency it does not speak
//! for, tell a peer whether another agency's document exists, or write
//! anything for a refused message.

use super::{logged, Env, Failure, Taken};
use crate::domain::access::StatusRefusal;
use crate::domain::interchange::StatusCode;
use crate::interchange::edxml::MessageStatus;
use crate::service::commands::{append_racing, Attempt, Raced};
use crate::store::{ExpectedVersion, StreamAppend};

/// Takes a status message about a document this system issued to an
/// external recipient: recorded once per code and recipient, on the
/// document (its deadline row shows the latest).
pub(super) async fn status_in(
    env: &Env<'_>,
    peer: &str,
    status: MessageStatus,
) -> Result<Taken, Failure> {
    use crate::domain::document::{self, DocumentEvent, InterchangeStatus};
    let unknown = || {
        Failure::refused(
            "ResponseFor/DocumentId",
            format!(
                "{} is no document this system issued",
                status.response_for.document_id
            ),
        )
    };
    let code = StatusCode::parse(status.status_code.trim())
        .map_err(|e| Failure::bad("StatusCode", e.to_string()))?;
    let reported_at = crate::interchange::edxml::read_instant(&status.timestamp)
        .map_err(|e| Failure::bad("Timestamp", e))?;
    if code == StatusCode::RecallRequested {
        return asked_back(env, peer, &status, reported_at).await;
    }
    let id =
        uuid::Uuid::parse_str(status.response_for.document_id.trim()).map_err(|_| unknown())?;
    let actor = format!("interchange:{peer}");
    let raced = append_racing(env.events, || -> Result<Attempt<()>, Failure> {
        let doc = crate::service::load::document(env.log, id, None)?.ok_or_else(unknown)?;
        let org = (env.org)();
        let ours = org
            .agencies
            .get(&doc.agency)
            .and_then(|a| a.organ_id.clone());
        if doc.origin.is_some() || ours.as_deref() != Some(status.response_for.organ_id.trim()) {
            // The same answer as for no document at all: whether another
            // agency's document exists is not the peer's business.
            return Err(unknown());
        }
        let agency = match crate::domain::access::status_recipient(
            &doc,
            &org,
            peer,
            status.from.organ_id.trim(),
            code,
        ) {
            Err(StatusRefusal::NotFor(why)) => return Err(Failure::forbidden("From/OrganId", why)),
            Err(StatusRefusal::OutOfTurn(why)) => return Err(Failure::OutOfTurn(why)),
            Ok(None) => return Ok(Attempt::Done(())),
            Ok(Some(agency)) => agency,
        };
        let event = DocumentEvent::InterchangeStatus(InterchangeStatus {
            agency,
            code: code.code().into(),
            description: status.description.chars().take(1000).collect(),
            reported_at,
            by: actor.clone(),
            at: env.clock.now(),
        });
        Ok(Attempt::Append(vec![StreamAppend::new(
            document::stream_id(id),
            ExpectedVersion::Exact(doc.version),
            vec![logged(
                env,
                &actor,
                event.event_type(),
                serde_json::to_value(&event).expect("events serialise"),
            )],
        )]))
    })
    .await
    // The document moved meanwhile: judged again on the new version.
    .map_err(|e| Failure::raced(e, "The document kept changing", "try again"))?;
    Ok(match raced {
        Raced::Appended(a) => Taken::appended(
            a.last_position,
            serde_json::json!({ "document": id, "status": code.code() }),
        ),
        Raced::Done(()) => Taken::already(
            serde_json::json!({ "document": id, "status": code.code(), "already": true }),
        ),
    })
}

/// A recall request (13) from the system that sent a document here: its
/// `ResponseFor` names the sender's document; every arrival of it from
/// this peer (one per addressed agency here) records the request, once,
/// for the addressed agencies' clerks to answer (15 or 16).
async fn asked_back(
    env: &Env<'_>,
    peer: &str,
    status: &MessageStatus,
    reported_at: chrono::DateTime<chrono::Utc>,
) -> Result<Taken, Failure> {
    use crate::domain::document;
    let asked = StatusCode::RecallRequested.code();
    let document_id = status.response_for.document_id.trim();
    let from_organ = status.from.organ_id.trim();
    if status.response_for.organ_id.trim() != from_organ {
        return Err(Failure::forbidden(
            "From/OrganId",
            "only the issuing agency asks for its document back",
        ));
    }
    // Packages are addressed one agency of this system at a time: the
    // arrivals are found by their ids, no index needed.
    let organs: Vec<String> = (env.org)()
        .agencies
        .values()
        .filter(|a| !a.is_external())
        .filter_map(|a| a.organ_id.clone())
        .collect();
    let ids: Vec<uuid::Uuid> = organs
        .iter()
        .map(|organ| crate::interchange::arrival_id(peer, &format!("{document_id}\n{organ}")))
        .collect();
    let actor = format!("interchange:{peer}");
    let mut recorded: Vec<String> = Vec::new();
    // Every arrival of it records the request, in one append, or none does.
    let raced = append_racing(env.events, || -> Result<Attempt<()>, Failure> {
        let mut found = Vec::new();
        for id in &ids {
            if let Some(doc) = crate::service::load::document(env.log, *id, None)? {
                found.push(doc);
            }
        }
        if found.is_empty() {
            return Err(Failure::refused(
                "ResponseFor/DocumentId",
                format!("no document {document_id} arrived here from {peer}"),
            ));
        }
        let now = env.clock.now();
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
                Err(why) => return Err(Failure::forbidden("From/OrganId", why)),
                Ok(None) => continue,
                Ok(Some(event)) => event,
            };
            appends.push(StreamAppend::new(
                document::stream_id(doc.id),
                ExpectedVersion::Exact(doc.version),
                vec![logged(
                    env,
                    &actor,
                    event.event_type(),
                    serde_json::to_value(&event).expect("events serialise"),
                )],
            ));
        }
        recorded = appends
            .iter()
            .map(|a| {
                a.stream
                    .trim_start_matches(document::STREAM_PREFIX)
                    .to_owned()
            })
            .collect();
        if appends.is_empty() {
            return Ok(Attempt::Done(()));
        }
        Ok(Attempt::Append(appends))
    })
    .await
    .map_err(|e| Failure::raced(e, "The documents kept changing", "send again"))?;
    Ok(match raced {
        Raced::Appended(a) => Taken::appended(
            a.last_position,
            serde_json::json!({ "documents": recorded, "status": asked }),
        ),
        Raced::Done(()) => {
            Taken::already(serde_json::json!({ "documents": [], "status": asked, "already": true }))
        }
    })
}
