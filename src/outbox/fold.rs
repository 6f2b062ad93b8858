//! The outbox's fold: each record that a webhook subscribed to (issued,
//! recalled, replaced, received, replied; never a confidential document)
//! becomes one delivery per subscriber, written with the checkpoint in one
//! batch; the organisation's events keep the subscribers.
//!
//! Must never: read the clock, read or write the sender's rows (`a/`),
//! send anything about a confidential document, or skip a row it cannot
//! decode.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::{delivery_id, Delivery, External, Subscriber, NAME};
use crate::domain::document::DocumentEvent;
use crate::domain::org::{OrgEvent, WebhookKind};
use crate::projections::feed::Issued;
use crate::projections::{payload, Applied, Projection, ProjectionError, Tx};

/// The fold half (see the module docs).
pub struct Outbox;

/// What one record tells integrations: its kind, the agencies it concerns
/// (a webhook limited to agencies gets it if any is theirs), and `data`.
struct Told {
    kind: WebhookKind,
    doc: Uuid,
    agencies: Vec<String>,
    data: serde_json::Value,
}

impl Projection for Outbox {
    fn name(&self) -> &'static str {
        NAME
    }

    fn apply(&self, a: &Applied<'_>, tx: &mut Tx<'_>) -> Result<(), ProjectionError> {
        super::counters::ensure_fold(tx)?;
        if a.record.stream == crate::domain::org::STREAM {
            return subscription(&payload::<OrgEvent>(a.record)?, a.record.position, tx);
        }
        if a.record.event_type == crate::interchange::ARRIVED {
            return super::peers::arrived(&payload(a.record)?, a.record, tx);
        }
        let Some((doc, event)) = a.doc else {
            return Ok(());
        };
        tx.note_confidentiality(doc, event);
        if !crate::domain::access::integrations_may_see(tx.is_confidential(doc)?) {
            return Ok(());
        }
        match event {
            DocumentEvent::Issued(e) => {
                tx.put_json(format!("m/{doc}"), &Issued::of(doc, e));
                super::peers::packages(doc, e, a.record, tx)?;
            }
            DocumentEvent::Arrived(e) => tx.put_json(format!("m/{doc}"), &Issued::arrived(doc, e)),
            _ => {}
        }
        super::peers::interchange(doc, event, a.record, tx)?;
        super::watches::watch_deadlines(doc, event, tx)?;
        let Some(told) = told(doc, event, a.record.position, tx)? else {
            return Ok(());
        };
        let subscribers = subscribers_in(tx, a.record.position)?;
        let concerned: Vec<&str> = told.agencies.iter().map(String::as_str).collect();
        let body = serde_json::json!({
            "type": told.kind,
            "timestamp": a.record.recorded_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "data": told.data,
        })
        .to_string();
        for (_, s) in subscribers {
            if !crate::domain::org::wants(&s.events, &s.agencies, told.kind.as_str(), &concerned) {
                continue;
            }
            let position = a.record.position;
            let id = delivery_id(&s.webhook, position, told.kind.as_str());
            if tx.get(format!("q/{id}").as_bytes())?.is_some() {
                continue;
            }
            let delivery = Delivery {
                id,
                webhook: s.webhook,
                client: s.client,
                kind: told.kind.as_str().into(),
                doc: told.doc,
                position,
                created_at: a.record.recorded_at,
                body: body.clone(),
                compose: None,
            };
            super::make(tx, &delivery)?;
        }
        Ok(())
    }
}

/// The subscribers (with their rows' keys) as this batch sees them. A row
/// that does not decode stops the fold at record `position` (`/readyz`
/// names it): skipped, its webhook would silently miss what it asked for.
fn subscribers_in(
    tx: &Tx<'_>,
    position: u64,
) -> Result<Vec<(Vec<u8>, Subscriber)>, ProjectionError> {
    tx.scan_prefix(b"s/")?
        .into_iter()
        .map(|(key, value)| match serde_json::from_slice(&value) {
            Ok(s) => Ok((key, s)),
            Err(e) => Err(ProjectionError::Decode {
                position,
                reason: format!(
                    "outbox row {} (a subscriber) does not decode: {e}",
                    String::from_utf8_lossy(&key)
                ),
            }),
        })
        .collect()
}

/// Keeps the subscribers as the organisation's events make and end them.
fn subscription(event: &OrgEvent, position: u64, tx: &mut Tx<'_>) -> Result<(), ProjectionError> {
    match event {
        OrgEvent::WebhookSubscribed {
            id,
            client,
            events,
            agencies,
            at,
            ..
        } => tx.put_json(
            format!("s/{id}"),
            &Subscriber {
                webhook: id.clone(),
                client: client.clone(),
                events: events.clone(),
                agencies: agencies.clone(),
                since: *at,
            },
        ),
        OrgEvent::WebhookUnsubscribed { id, .. } => tx.delete(format!("s/{id}")),
        OrgEvent::AgencyIdentified {
            agency, organ_id, ..
        } => tx.put(format!("o/{agency}"), organ_id.clone().into_bytes()),
        OrgEvent::AgencyCreated { code, name, .. } => {
            tx.put(format!("n/{code}"), name.clone().into_bytes())
        }
        OrgEvent::ExternalAgencyRegistered {
            code,
            organ_id,
            peer,
            ..
        } => tx.put_json(
            format!("e/{code}"),
            &External {
                peer: peer.clone(),
                organ_id: organ_id.clone(),
            },
        ),
        OrgEvent::ClientRevoked { id, .. } => {
            for (key, s) in subscribers_in(tx, position)? {
                if s.client == *id {
                    tx.delete(key);
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// The reply a recipient gave, as integrations are told it.
#[derive(Serialize)]
struct ReplyFacts<'a> {
    agency: &'a str,
    unit: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reply: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reply_reference: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reply_due: Option<NaiveDate>,
    on_time: bool,
    replied_at: DateTime<Utc>,
}

/// What `event` tells integrations, if anything (events before the
/// document's issue tell nothing).
fn told(
    doc: Uuid,
    event: &DocumentEvent,
    cursor: u64,
    tx: &Tx<'_>,
) -> Result<Option<Told>, ProjectionError> {
    let kind = match event {
        DocumentEvent::Issued(_) => WebhookKind::Issued,
        DocumentEvent::Recalled(_) => WebhookKind::Recalled,
        DocumentEvent::Replaced(_) => WebhookKind::Replaced,
        DocumentEvent::Received(_) => WebhookKind::Received,
        DocumentEvent::Replied(_) => WebhookKind::Replied,
        _ => return Ok(None),
    };
    let Some(document) = tx.get_json::<Issued>(format!("m/{doc}").as_bytes())? else {
        return Ok(None);
    };
    let mut agencies = vec![document.agency.clone()];
    let mut data = serde_json::json!({ "cursor": cursor });
    match event {
        DocumentEvent::Issued(_) => {
            agencies.extend(document.recipients.iter().map(|r| r.agency.clone()));
        }
        DocumentEvent::Recalled(e) => {
            agencies.extend(document.recipients.iter().map(|r| r.agency.clone()));
            data["reason"] = e.reason.clone().into();
        }
        DocumentEvent::Replaced(e) => {
            agencies.extend(document.recipients.iter().map(|r| r.agency.clone()));
            data["reason"] = e.reason.clone().into();
            // A confidential replacement is not named.
            if !tx.is_confidential(e.replacement)? {
                data["replacement"] = e.replacement.to_string().into();
                data["replacement_reference"] = e.replacement_reference.clone().into();
            }
        }
        DocumentEvent::Received(e) => {
            agencies.push(e.agency.clone());
            data["received"] = serde_json::json!({
                "agency": e.agency,
                "incoming_number": e.incoming_number,
                "register": e.register,
                "received_at": e.at,
            });
        }
        DocumentEvent::Replied(e) => {
            agencies.push(e.agency.clone());
            // A confidential reply is told as a fact, not named.
            let named = !tx.is_confidential(e.reply)?;
            data["reply"] = serde_json::to_value(ReplyFacts {
                agency: &e.agency,
                unit: &e.unit,
                reply: named.then_some(e.reply),
                reply_reference: named.then_some(e.reply_reference.as_str()),
                reply_due: e.reply_due,
                on_time: e.on_time,
                replied_at: e.at,
            })
            .expect("reply facts serialise");
        }
        _ => {}
    }
    data["document"] = serde_json::to_value(&document).expect("issued facts serialise");
    Ok(Some(Told {
        kind,
        doc,
        agencies,
        data,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// D13: on a table from before the counters, the fold counts once what
    /// it made (`.0` index entries, not the sender's `.1`), then counts on.
    #[tokio::test]
    async fn the_fold_counts_once_what_it_made_before_the_counters() {
        let dir = tempfile::tempdir().unwrap();
        let log =
            crate::store::RocksLog::open(dir.path(), crate::store::LogOptions::default()).unwrap();
        let table = log.table(NAME).unwrap();
        let mut changes = crate::store::tables::Changes::new();
        for key in [
            "i/hook/00000000000000000003.0/msg_a",
            "i/hook/00000000000000000004.0/msg_b",
            "i/hook/00000000000000000004.1/msg_c",
            "i/peer:ha-tinh/00000000000000000005.0/msg_d",
        ] {
            changes.insert(key.as_bytes().to_vec(), Some(Vec::new()));
        }
        table.write_outside(changes).unwrap();
        let at = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let record = crate::store::Record {
            position: 6,
            stream: crate::domain::org::STREAM.into(),
            version: 6,
            event_id: Uuid::nil(),
            event_type: "org.webhook_unsubscribed.v1".into(),
            recorded_at: at,
            payload: serde_json::to_value(OrgEvent::WebhookUnsubscribed {
                id: "gone".into(),
                at,
            })
            .unwrap(),
            metadata: Default::default(),
        };
        let mut tx = Tx::new(&table);
        let applied = Applied {
            record: &record,
            doc: None,
        };
        Outbox.apply(&applied, &mut tx).unwrap();
        assert_eq!(tx.get(b"k/hook/made").unwrap().as_deref(), Some(&b"2"[..]));
        assert_eq!(
            tx.get(b"k/peer:ha-tinh/made").unwrap().as_deref(),
            Some(&b"1"[..])
        );
        assert!(tx.get(b"K/fold").unwrap().is_some());
    }

    /// D12: a subscriber row that does not decode stops the fold, naming
    /// the row; it is never skipped.
    #[tokio::test]
    async fn an_undecodable_subscriber_stops_the_fold_naming_its_row() {
        let dir = tempfile::tempdir().unwrap();
        let log =
            crate::store::RocksLog::open(dir.path(), crate::store::LogOptions::default()).unwrap();
        let table = log.table(NAME).unwrap();
        let mut changes = crate::store::tables::Changes::new();
        changes.insert(b"s/broken".to_vec(), Some(b"{not json".to_vec()));
        table.write_outside(changes).unwrap();
        let at = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let record = crate::store::Record {
            position: 9,
            stream: crate::domain::org::STREAM.into(),
            version: 9,
            event_id: Uuid::nil(),
            event_type: "org.client_revoked.v1".into(),
            recorded_at: at,
            payload: serde_json::to_value(OrgEvent::ClientRevoked {
                id: "portal".into(),
                at,
            })
            .unwrap(),
            metadata: Default::default(),
        };
        let mut tx = Tx::new(&table);
        let applied = Applied {
            record: &record,
            doc: None,
        };
        match Outbox.apply(&applied, &mut tx) {
            Err(ProjectionError::Decode { position, reason }) => {
                assert_eq!(position, 9);
                assert!(reason.contains("s/broken"), "{reason}");
            }
            other => panic!("the fold went on: {other:?}"),
        }
    }
}
