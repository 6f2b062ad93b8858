//! The receiving side, per recipient agency: receive (incoming number),
//! assign, extend deadlines, reply, complete; which incoming register a
//! recipient numbers the document in.
//!
//! Must never: act for an agency that is not a recipient of the issued document.

use chrono::{DateTime, Utc};

use super::*;

/// The incoming register a recipient agency numbers this document in.
pub fn receipt_register(
    doc: &Document,
    agency: &str,
    now: DateTime<Utc>,
) -> Result<RegisterKey, DomainError> {
    // Only a recipient of the issued document has one: no register (and no
    // stream id) is ever built from an agency code the rules did not check.
    if !doc
        .issue
        .as_ref()
        .is_some_and(|i| i.recipients.iter().any(|r| r.agency == agency))
    {
        return Err(invalid(format!(
            "{agency:?} is not a recipient agency of this document"
        )));
    }
    Ok(RegisterKey {
        agency: agency.to_owned(),
        direction: Direction::Incoming,
        series: if doc.draft.confidentiality == Confidentiality::Normal {
            Series::Normal
        } else {
            Series::Secret
        },
        year: numbering::year_of(now),
    })
}

/// The agency's receipt; a command on a document it has not received is a
/// state conflict (409 `wrong-state:not_received`).
fn receipt<'d>(cmd: &Command, doc: &'d Document, agency: &str) -> Result<&'d Receipt, DomainError> {
    doc.receipts.get(agency).ok_or(DomainError::WrongState {
        command: cmd.name(),
        state: "not_received",
    })
}

/// The receipt's assignment (409 `wrong-state:unassigned` without one).
fn assignment<'d>(cmd: &Command, r: &'d Receipt) -> Result<&'d Assignment, DomainError> {
    r.assignment.as_ref().ok_or(DomainError::WrongState {
        command: cmd.name(),
        state: "unassigned",
    })
}

fn receipt_state(cmd: &Command, state: &'static str) -> DomainError {
    DomainError::WrongState {
        command: cmd.name(),
        state,
    }
}

fn incoming_state(cmd: &Command, doc: &Document) -> Result<(), DomainError> {
    if doc.status == Status::Issued {
        Ok(())
    } else {
        Err(wrong_state(cmd, doc))
    }
}

/// Decides a recipient agency's command on an issued document.
pub(super) fn decide(doc: &Document, cmd: Command, ctx: &Ctx<'_>) -> Result<Decision, DomainError> {
    let roles = Roles::of(ctx);
    let actor = ctx.actor.to_owned();
    let at = ctx.now;
    match cmd {
        Command::Receive {
            ref agency,
            ref register,
            number,
        } => {
            incoming_state(&cmd, doc)?;
            if !roles.is_clerk(&actor, agency) {
                return Err(forbidden(format!(
                    "only a clerk (văn thư) of {agency} receives documents for it"
                )));
            }
            let expected_register = receipt_register(doc, agency, at)?;
            if doc.receipts.contains_key(agency) {
                return Err(receipt_state(&cmd, "received"));
            }
            if doc
                .origin
                .as_ref()
                .is_some_and(|o| o.refused.contains_key(agency))
            {
                return Err(receipt_state(&cmd, "refused"));
            }
            if *register != expected_register || number == 0 {
                return Err(invalid("the incoming register plan is stale; retry"));
            }
            Ok(Decision {
                events: vec![DocumentEvent::Received(Received {
                    agency: agency.clone(),
                    by: actor.clone(),
                    at,
                    incoming_number: number,
                    register: register.stream_id(),
                })],
                register: Some((
                    register.clone(),
                    NumberAllocated {
                        number,
                        doc: doc.id,
                        symbol: doc.reference().map(str::to_owned),
                        by: actor,
                        at,
                    },
                )),
                linked: None,
            })
        }
        Command::Assign {
            ref agency,
            ref lead,
            ref coordinating,
            ref fyi,
            ref handler,
            ref instruction,
            deadline,
        } => {
            incoming_state(&cmd, doc)?;
            if !roles.is_leader(&actor, agency) {
                return Err(forbidden(format!(
                    "only a leader of {agency} assigns its incoming documents"
                )));
            }
            let r = receipt(&cmd, doc, agency)?;
            if r.done {
                return Err(receipt_state(&cmd, "completed"));
            }
            if !r.completed.is_empty() {
                return Err(invalid(
                    "units have already completed their part; the assignment can no longer change",
                ));
            }
            let mut all = vec![lead];
            all.extend(coordinating);
            all.extend(fyi);
            let mut seen = std::collections::BTreeSet::new();
            for u in &all {
                if !roles.unit_exists(agency, u) {
                    return Err(invalid(format!("no unit {u} in {agency}")));
                }
                if !seen.insert(*u) {
                    return Err(invalid(format!("unit {u} is named twice")));
                }
            }
            if let Some(h) = handler {
                if !roles.in_unit(h, agency, lead) {
                    return Err(invalid(format!(
                        "the handler {h} is not in the lead unit {lead}"
                    )));
                }
            }
            text("instruction", instruction, true)?;
            let deadline = deadline.or(r.handling_due).or(doc.reply_due(agency));
            if r.handling_due.is_some() && deadline != r.handling_due {
                return Err(invalid(
                    "the handling deadline is set; change it with a deadline extension (reason kept)",
                ));
            }
            // Several units need a lead and a deadline (domain-rules §6 rule 11).
            if !coordinating.is_empty() && deadline.is_none() {
                return Err(invalid("an assignment to several units needs a deadline"));
            }
            if let Some(d) = deadline {
                if d < at.with_timezone(&numbering::vietnam()).date_naive() {
                    return Err(invalid("the deadline is in the past"));
                }
            }
            Ok(Decision::one(DocumentEvent::Assigned(Assigned {
                agency: agency.clone(),
                by: actor,
                at,
                lead: lead.clone(),
                coordinating: coordinating.clone(),
                fyi: fyi.clone(),
                handler: handler.clone(),
                instruction: instruction.clone(),
                deadline,
            })))
        }
        Command::ExtendDeadline {
            ref agency,
            scope,
            new,
            ref reason,
        } => {
            incoming_state(&cmd, doc)?;
            text("reason", reason, true)?;
            let old = match scope {
                DeadlineScope::Reply => {
                    if !roles.is_leader(&actor, &doc.agency) && !roles.is_clerk(&actor, &doc.agency)
                    {
                        return Err(forbidden(format!(
                            "only a leader or clerk of the issuing agency {} extends a reply deadline",
                            doc.agency
                        )));
                    }
                    doc.reply_due(agency).ok_or_else(|| {
                        invalid(format!("{agency} has no reply deadline on this document"))
                    })?
                }
                DeadlineScope::Handling => {
                    if !roles.is_leader(&actor, agency) {
                        return Err(forbidden(format!(
                            "only a leader of {agency} extends its handling deadline"
                        )));
                    }
                    receipt(&cmd, doc, agency)?
                        .handling_due
                        .ok_or_else(|| invalid(format!("{agency} set no handling deadline")))?
                }
            };
            if new <= old {
                return Err(invalid(format!(
                    "the new deadline {new} must be after the one in force, {old}"
                )));
            }
            Ok(Decision::one(DocumentEvent::DeadlineExtended(
                DeadlineExtended {
                    agency: agency.clone(),
                    scope,
                    by: actor,
                    at,
                    old,
                    new,
                    reason: reason.clone(),
                },
            )))
        }
        Command::Reply {
            ref agency,
            ref unit,
            ref reply,
        } => {
            incoming_state(&cmd, doc)?;
            let r = receipt(&cmd, doc, agency)?;
            let a = assignment(&cmd, r)?;
            if r.done {
                return Err(receipt_state(&cmd, "completed"));
            }
            let assigned: Vec<&String> = std::iter::once(&a.lead).chain(&a.coordinating).collect();
            let unit = match unit {
                Some(u) => u.clone(),
                None => roles
                    .units_of(&actor, agency)
                    .into_iter()
                    .find(|u| assigned.contains(&u))
                    .unwrap_or_default(),
            };
            if !assigned.contains(&&unit) || !roles.in_unit(&actor, agency, &unit) {
                return Err(forbidden(format!(
                    "only officials of the units assigned to handle it ({}) reply for {agency}",
                    assigned
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            if reply.agency != *agency || reply.status != Status::Issued {
                return Err(invalid(format!(
                    "the reply must be a document issued by {agency}"
                )));
            }
            if !reply
                .draft
                .recipients
                .iter()
                .any(|x| x.agency == doc.agency)
            {
                return Err(invalid(format!(
                    "the reply must be addressed to {}, the issuer of this document",
                    doc.agency
                )));
            }
            if reply.in_reply_to.is_some() {
                return Err(invalid("that document is already linked as a reply"));
            }
            let reply_reference = reply.reference().unwrap_or_default().to_owned();
            let due = doc.reply_due(agency);
            let on_time = due.is_none_or(|d| !ctx.calendar.is_overdue(d, at));
            Ok(Decision {
                events: vec![DocumentEvent::Replied(Replied {
                    agency: agency.clone(),
                    unit,
                    by: actor.clone(),
                    at,
                    reply: reply.id,
                    reply_reference,
                    reply_due: due,
                    on_time,
                })],
                register: None,
                linked: Some((
                    reply.id,
                    reply.version,
                    DocumentEvent::ReplyLinked(ReplyLinked {
                        by: actor,
                        at,
                        in_reply_to: doc.id,
                        in_reply_to_reference: doc.reference().unwrap_or_default().to_owned(),
                    }),
                )),
            })
        }
        Command::Complete {
            ref agency,
            ref unit,
        } => {
            incoming_state(&cmd, doc)?;
            let r = receipt(&cmd, doc, agency)?;
            let a = assignment(&cmd, r)?;
            let unit = unit.clone().unwrap_or_else(|| a.lead.clone());
            let is_lead = unit == a.lead;
            if !is_lead && !a.coordinating.contains(&unit) && !a.fyi.contains(&unit) {
                return Err(invalid(format!(
                    "unit {unit} was not assigned this document"
                )));
            }
            if !roles.in_unit(&actor, agency, &unit) && !roles.is_leader(&actor, agency) {
                return Err(forbidden(format!(
                    "only officials of {unit} or leaders of {agency} complete its part"
                )));
            }
            if r.completed.contains_key(&unit) {
                return Err(receipt_state(&cmd, "completed"));
            }
            // The lead's completion completes its coordinators (domain-rules §6 rule 12).
            let cascaded = if is_lead {
                a.coordinating
                    .iter()
                    .chain(&a.fyi)
                    .filter(|u| !r.completed.contains_key(*u))
                    .cloned()
                    .collect()
            } else {
                vec![]
            };
            Ok(Decision::one(DocumentEvent::Completed(Completed {
                agency: agency.clone(),
                unit,
                by: actor,
                at,
                cascaded,
            })))
        }
        _ => unreachable!("outgoing commands are decided in outgoing.rs"),
    }
}
