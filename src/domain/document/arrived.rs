//! A document another system issued, on this side: an addressed agency
//! refuses it (status 02) or handles it as any issued document
//! (`incoming.rs`); the issuing system asks for it back (13) and an
//! addressed agency answers (15 agreed, 16 refused); and a reply that came
//! by package is linked to the document it answers.
//!
//! Must never: act for an agency the document was not sent to, or take a
//! word about a document from a system other than the one that sent it.

use chrono::{DateTime, Utc};

use super::*;

/// The longest reason sent to another system (its status description).
pub const MAX_REASON: usize = 1000;

/// Decides an addressed agency's refusal or recall answer.
pub(super) fn decide(doc: &Document, cmd: Command, ctx: &Ctx<'_>) -> Result<Decision, DomainError> {
    let (agency, reason) = match &cmd {
        Command::Refuse { agency, reason } | Command::AnswerRecall { agency, reason, .. } => {
            (agency.clone(), reason.trim().to_owned())
        }
        _ => unreachable!("other commands are decided in incoming.rs and outgoing.rs"),
    };
    let Some(origin) = &doc.origin else {
        return Err(DomainError::WrongState {
            command: cmd.name(),
            state: "issued_here",
        });
    };
    if doc.status != Status::Issued {
        return Err(wrong_state(&cmd, doc));
    }
    if !doc
        .issue
        .as_ref()
        .is_some_and(|i| i.recipients.iter().any(|r| r.agency == agency))
    {
        return Err(invalid(format!(
            "{agency:?} is not an agency this document was sent to"
        )));
    }
    if !crate::domain::access::may_handle_arrival(ctx.org, ctx.actor, &agency, ctx.now) {
        return Err(forbidden(format!(
            "only a clerk, leader or office chief of {agency} answers for it"
        )));
    }
    if reason.chars().count() > MAX_REASON {
        return Err(invalid(format!(
            "reason is longer than {MAX_REASON} characters"
        )));
    }
    let by = ctx.actor.to_owned();
    let at = ctx.now;
    match cmd {
        Command::Refuse { .. } => {
            if reason.is_empty() {
                return Err(invalid(
                    "reason: say why it is refused (sent to its sender)",
                ));
            }
            if doc.receipts.contains_key(&agency) {
                return Err(DomainError::WrongState {
                    command: cmd.name(),
                    state: "received",
                });
            }
            if origin.refused.contains_key(&agency) {
                return Err(DomainError::WrongState {
                    command: cmd.name(),
                    state: "refused",
                });
            }
            Ok(Decision::one(DocumentEvent::Refused(Refused {
                agency,
                by,
                at,
                reason,
            })))
        }
        Command::AnswerRecall { agree, .. } => {
            let state = if origin.recall_requested.is_none() {
                "not_asked_back"
            } else if origin.recall_answer.is_some() {
                "answered"
            } else {
                ""
            };
            if !state.is_empty() {
                return Err(DomainError::WrongState {
                    command: cmd.name(),
                    state,
                });
            }
            if !agree && reason.is_empty() {
                return Err(invalid(
                    "reason: say why the recall is refused (sent to the issuer)",
                ));
            }
            Ok(Decision::one(DocumentEvent::RecallAnswered(
                RecallAnswered {
                    agency,
                    by,
                    at,
                    agreed: agree,
                    reason,
                },
            )))
        }
        _ => unreachable!(),
    }
}

/// The issuing system's recall request (status 13) for an arrived
/// document, from `peer` for agency `from_organ`: the event to record, or
/// `None` when it was asked already. Refused when the document did not
/// come from that agency through that peer.
pub fn ask_back(
    doc: &Document,
    peer: &str,
    from_organ: &str,
    reason: &str,
    reported_at: DateTime<Utc>,
    at: DateTime<Utc>,
) -> Result<Option<DocumentEvent>, String> {
    let from = doc
        .origin
        .as_ref()
        .map(|o| &o.from)
        .filter(|f| f.peer == peer && f.organ_id == from_organ)
        .ok_or_else(|| format!("no document came here from {from_organ} through {peer}"))?;
    if doc
        .origin
        .as_ref()
        .is_some_and(|o| o.recall_requested.is_some())
    {
        return Ok(None);
    }
    Ok(Some(DocumentEvent::RecallRequested(RecallRequested {
        by: format!("interchange:{}", from.peer),
        at,
        reason: reason.chars().take(MAX_REASON).collect(),
        reported_at,
    })))
}

/// A reply that came by package (its `ResponseFor` names `original`, a
/// document this system issued): the `replied` event for `original` and
/// the `reply_linked` event for `reply`, or `None` when linked already.
/// Refused when the reply's issuer is not a recipient of `original`.
pub fn reply_by_package(
    original: &Document,
    reply: &Document,
    at: DateTime<Utc>,
    calendar: &dyn WorkingDays,
) -> Result<Option<(DocumentEvent, DocumentEvent)>, String> {
    let reference = original.reference().unwrap_or_default().to_owned();
    if original.origin.is_some() || original.status != Status::Issued {
        return Err(format!(
            "{} is not a document this system issued and still stands",
            original.id
        ));
    }
    let replier = reply.agency.as_str();
    let recipient = original
        .issue
        .as_ref()
        .is_some_and(|i| i.recipients.iter().any(|r| r.agency == replier));
    if reply.origin.is_none() || !recipient {
        return Err(format!("{replier} is not a recipient of {reference}"));
    }
    if reply.in_reply_to.is_some() {
        return Ok(None);
    }
    let due = original.reply_due(replier);
    let by = reply.author.clone();
    Ok(Some((
        DocumentEvent::Replied(Replied {
            agency: replier.to_owned(),
            unit: String::new(),
            by: by.clone(),
            at,
            reply: reply.id,
            reply_reference: reply.reference().unwrap_or_default().to_owned(),
            reply_due: due,
            on_time: due.is_none_or(|d| !calendar.is_overdue(d, at)),
        }),
        DocumentEvent::ReplyLinked(ReplyLinked {
            by,
            at,
            in_reply_to: original.id,
            in_reply_to_reference: reference,
        }),
    )))
}
