//! The issuing side: draft, revise, route, return, opinions, sign, issue,
//! recall, replace; what issuing will do (`plan_issue`) and whether a
//! signature may be given and matches (`may_sign`, `check_payload`).
//!
//! Must never: verify a signature's cryptography (the API hands in the report).

use chrono::NaiveDate;

use super::*;

pub(super) fn check_draft(draft: &Draft, agency: &str, org: &Org) -> Result<(), DomainError> {
    if doctype::by_code(&draft.doc_type).is_none() {
        return Err(invalid(format!(
            "unknown document type {:?}; use a Decree 30 code such as BC, KH, QD, CV",
            draft.doc_type
        )));
    }
    text("title", &draft.title, true)?;
    if draft.content.is_empty() {
        return Err(invalid("content needs at least one blob"));
    }
    for c in &draft.content {
        text("content name", &c.name, true)?;
        if c.sha256.len() != 64
            || !c
                .sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(invalid(format!(
                "content {:?}: sha256 must be 64 lower-case hex digits",
                c.name
            )));
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for r in &draft.recipients {
        if !org.agencies.contains_key(&r.agency) {
            return Err(invalid(format!("no recipient agency {}", r.agency)));
        }
        if r.agency == agency {
            return Err(invalid(format!(
                "{agency} cannot be a recipient of its own document"
            )));
        }
        if !seen.insert(&r.agency) {
            return Err(invalid(format!("recipient {} is listed twice", r.agency)));
        }
        if r.reply_due.is_some() && r.reply_within_working_days.is_some() {
            return Err(invalid(format!(
                "recipient {}: give reply_due or reply_within_working_days, not both",
                r.agency
            )));
        }
        if r.reply_within_working_days
            .is_some_and(|n| n == 0 || n > 366)
        {
            return Err(invalid(format!(
                "recipient {}: reply_within_working_days must be 1..=366",
                r.agency
            )));
        }
    }
    stays_inside(draft, org)
}

/// A confidential draft names no agency of another system: its package
/// would leave through the interchange, which carries no state secrets.
fn stays_inside(draft: &Draft, org: &Org) -> Result<(), DomainError> {
    let confidential = draft.confidentiality != Confidentiality::Normal;
    match draft
        .recipients
        .iter()
        .find(|r| !crate::domain::access::may_address(org, &r.agency, confidential))
    {
        Some(r) => Err(invalid(format!(
            "a confidential document (mật and above) never leaves through the interchange, and {} is another system's agency: send it on paper, by the secret channel",
            r.agency
        ))),
        None => Ok(()),
    }
}

/// What issuing the document will do: its register, symbol, date and
/// recipients with reply deadlines resolved. Checks state and role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuePlan {
    pub register: RegisterKey,
    pub symbol: String,
    pub issued_on: NaiveDate,
    pub recipients: Vec<IssuedRecipient>,
}

impl IssuePlan {
    /// The seal payload for `number` (what the agency key signs), a seal
    /// of the current version attesting `org_sha256`, the digest of the
    /// organisation's history up to the issue as that version seals it
    /// (`signing::org_sha256` of `signing::sealed_org`).
    pub fn seal_payload(
        &self,
        doc: &Document,
        number: u64,
        org_sha256: &str,
    ) -> Option<SealPayload> {
        use crate::domain::signing::SEAL_VERSION;
        let sig = doc.signature.as_ref()?;
        Some(SealPayload {
            seal_version: SEAL_VERSION,
            signed: sig.payload.clone(),
            number,
            symbol: self.symbol.clone(),
            issued_on: self.issued_on,
            signature_sha256: jws_sha256(&sig.jws),
            signed_at: sig.at,
            org_sha256: org_sha256.to_owned(),
        })
    }
}

/// Plans issuance: only a clerk of the issuing agency, only a signed document.
pub fn plan_issue(doc: &Document, ctx: &Ctx<'_>) -> Result<IssuePlan, DomainError> {
    let roles = Roles::of(ctx);
    if !roles.is_clerk(ctx.actor, &doc.agency) {
        return Err(forbidden(format!(
            "only a clerk (văn thư) of {} issues its documents; {} is not one",
            doc.agency, ctx.actor
        )));
    }
    if doc.status != Status::Signed {
        return Err(DomainError::WrongState {
            command: "issue",
            state: doc.status.as_str(),
        });
    }
    let sig = doc
        .signature
        .as_ref()
        .ok_or_else(|| invalid("the document has no signature"))?;
    crate::domain::signing::check_sealable(&sig.report, &sig.authority).map_err(invalid)?;
    payload_matches(&sig.payload, &sig.authority).map_err(invalid)?;
    let doc_type = doc
        .doc_type()
        .ok_or_else(|| invalid("unknown document type"))?;
    stays_inside(&doc.draft, ctx.org)?;
    let issued_on = ctx.now.with_timezone(&numbering::vietnam()).date_naive();
    let recipients = doc
        .draft
        .recipients
        .iter()
        .map(|r| IssuedRecipient {
            agency: r.agency.clone(),
            reply_due: r.reply_due.or_else(|| {
                r.reply_within_working_days
                    .map(|n| ctx.calendar.add_working_days(issued_on, n))
            }),
        })
        .collect::<Vec<IssuedRecipient>>();
    if let Some(r) = recipients
        .iter()
        .find(|r| r.reply_due.is_some_and(|d| d < issued_on))
    {
        return Err(invalid(format!(
            "the reply deadline for {} has passed; revise the draft before issuing",
            r.agency
        )));
    }
    Ok(IssuePlan {
        register: RegisterKey {
            agency: doc.agency.clone(),
            direction: Direction::Outgoing,
            series: ctx.numbering.series(
                &doc.agency,
                doc_type.code,
                doc.draft.confidentiality != Confidentiality::Normal,
            ),
            year: numbering::year_of(ctx.now),
        },
        symbol: numbering::symbol(doc_type, &doc.agency, &doc.drafting_unit),
        issued_on,
        recipients,
    })
}

/// A new draft.
pub(super) fn draft(cmd: Command, ctx: &Ctx<'_>) -> Result<Decision, DomainError> {
    let roles = Roles::of(ctx);
    let actor = ctx.actor.to_owned();
    let at = ctx.now;
    let Command::Draft {
        id,
        agency,
        drafting_unit,
        draft,
    } = cmd
    else {
        unreachable!("only Draft reaches here");
    };
    if !ctx.org.agencies.contains_key(&agency) {
        return Err(invalid(format!("no agency {agency}")));
    }
    if !roles.in_agency(&actor, &agency) {
        return Err(forbidden(format!(
            "only officials of {agency} draft its documents; {actor} holds no position there"
        )));
    }
    let units = roles.units_of(&actor, &agency);
    let drafting_unit = match drafting_unit {
        Some(u) => u,
        None => units.first().cloned().ok_or_else(|| {
            invalid(format!(
                "{actor} belongs to no unit of {agency}; name the drafting_unit"
            ))
        })?,
    };
    if !roles.unit_exists(&agency, &drafting_unit) {
        return Err(invalid(format!("no unit {drafting_unit} in {agency}")));
    }
    if !units.contains(&drafting_unit) && !roles.is_leader(&actor, &agency) {
        return Err(forbidden(format!(
            "{actor} may draft only for their own unit, not {drafting_unit}"
        )));
    }
    check_draft(&draft, &agency, ctx.org)?;
    Ok(Decision::one(DocumentEvent::Drafted(Drafted {
        doc: id,
        agency,
        drafting_unit,
        by: actor,
        at,
        draft,
    })))
}

/// Decides an outgoing command on an existing document.
pub(super) fn decide(doc: &Document, cmd: Command, ctx: &Ctx<'_>) -> Result<Decision, DomainError> {
    let roles = Roles::of(ctx);
    let actor = ctx.actor.to_owned();
    let at = ctx.now;
    match cmd {
        Command::Revise {
            ref draft,
            ref note,
        } => {
            if doc.status != Status::Draft {
                return Err(wrong_state(&cmd, doc));
            }
            if !is_drafter(&roles, doc, &actor) {
                return Err(forbidden(format!(
                    "only the author or the drafting unit {}/{} edits a draft",
                    doc.agency, doc.drafting_unit
                )));
            }
            check_draft(draft, &doc.agency, ctx.org)?;
            if let Some(n) = note {
                text("note", n, false)?;
            }
            Ok(Decision::one(DocumentEvent::Revised(Revised {
                by: actor,
                at,
                draft: draft.clone(),
                note: note.clone(),
            })))
        }
        Command::Route {
            ref to,
            purpose,
            ref note,
        } => {
            let allowed = match doc.status {
                Status::Draft => is_drafter(&roles, doc, &actor),
                Status::InReview => routed_to(doc, &actor).is_some(),
                _ => return Err(wrong_state(&cmd, doc)),
            };
            if !allowed {
                return Err(forbidden(
                    "only the author or drafting unit routes a draft, and in review only the official it was routed to",
                ));
            }
            if to == &actor {
                return Err(invalid("a draft cannot be routed to oneself"));
            }
            if !roles.in_agency(to, &doc.agency) {
                return Err(invalid(format!(
                    "{to} holds no position in {} at this time",
                    doc.agency
                )));
            }
            if let Some(n) = note {
                text("note", n, false)?;
            }
            Ok(Decision::one(DocumentEvent::Routed(Routed {
                by: actor,
                at,
                to: to.clone(),
                purpose,
                note: note.clone(),
            })))
        }
        Command::Return { ref reason } => {
            if !matches!(doc.status, Status::InReview | Status::AwaitingSignature) {
                return Err(wrong_state(&cmd, doc));
            }
            if routed_to(doc, &actor).is_none() {
                return Err(forbidden(
                    "only the official the draft was routed to may return it",
                ));
            }
            text("reason", reason, true)?;
            Ok(Decision::one(DocumentEvent::Returned(Returned {
                by: actor,
                at,
                to: doc.author.clone(),
                reason: reason.clone(),
            })))
        }
        Command::RequestOpinion {
            ref from,
            ref question,
        } => {
            if !matches!(
                doc.status,
                Status::Draft | Status::InReview | Status::AwaitingSignature
            ) {
                return Err(wrong_state(&cmd, doc));
            }
            if !is_drafter(&roles, doc, &actor) && routed_to(doc, &actor).is_none() {
                return Err(forbidden(
                    "only the author, the drafting unit or the official the draft is routed to asks for opinions",
                ));
            }
            if from.is_empty() {
                return Err(invalid("from needs at least one official"));
            }
            for o in from {
                if ctx.org.positions_at(o, at).is_empty() {
                    return Err(invalid(format!("{o} holds no position at this time")));
                }
                if o == &actor {
                    return Err(invalid("one does not ask oneself for an opinion"));
                }
            }
            text("question", question, true)?;
            Ok(Decision::one(DocumentEvent::OpinionRequested(
                OpinionRequested {
                    by: actor,
                    at,
                    from: from.clone(),
                    question: question.clone(),
                },
            )))
        }
        Command::GiveOpinion {
            opinion,
            ref comment,
        } => {
            if !matches!(
                doc.status,
                Status::Draft | Status::InReview | Status::AwaitingSignature
            ) {
                return Err(wrong_state(&cmd, doc));
            }
            if !doc
                .opinions
                .iter()
                .any(|o| o.from == actor && o.opinion.is_none())
            {
                return Err(forbidden(format!(
                    "{actor} was not asked for an opinion on this draft (or already gave it)"
                )));
            }
            text("comment", comment, opinion != OpinionKind::Agree)?;
            Ok(Decision::one(DocumentEvent::OpinionGiven(OpinionGiven {
                by: actor,
                at,
                opinion,
                comment: comment.clone(),
            })))
        }
        Command::Sign(accepted) => {
            // State and role again: a command retried on a newer version
            // of the document is decided afresh.
            may_sign(doc, &actor)?;
            accepted.is_for(doc, &actor)?;
            Ok(Decision::one(DocumentEvent::Signed(
                accepted.into_event(actor, at),
            )))
        }
        Command::Issue {
            plan,
            number,
            seal,
            seal_payload,
            org_version,
        } => {
            let fresh = plan_issue(doc, ctx)?;
            if fresh != plan {
                return Err(invalid("the issue plan is stale; retry"));
            }
            if number == 0 {
                return Err(invalid("numbers start at 1"));
            }
            let register = plan.register.stream_id();
            Ok(Decision {
                events: vec![DocumentEvent::Issued(Issued {
                    by: actor.clone(),
                    at,
                    number,
                    symbol: plan.symbol.clone(),
                    issued_on: plan.issued_on,
                    register,
                    recipients: plan.recipients.clone(),
                    seal,
                    seal_payload,
                    org_version,
                })],
                register: Some((
                    plan.register,
                    NumberAllocated {
                        number,
                        doc: doc.id,
                        symbol: Some(plan.symbol),
                        by: actor,
                        at,
                    },
                )),
                linked: None,
            })
        }
        Command::Recall { ref reason } => {
            if doc.status != Status::Issued {
                return Err(wrong_state(&cmd, doc));
            }
            if !roles.is_clerk(&actor, &doc.agency) && !roles.is_leader(&actor, &doc.agency) {
                return Err(forbidden(format!(
                    "only a leader or clerk of {} recalls its documents",
                    doc.agency
                )));
            }
            text("reason", reason, true)?;
            Ok(Decision::one(DocumentEvent::Recalled(Recalled {
                by: actor,
                at,
                reason: reason.clone(),
            })))
        }
        Command::Replace {
            ref replacement,
            ref reason,
        } => {
            if doc.status != Status::Issued {
                return Err(wrong_state(&cmd, doc));
            }
            if !roles.is_clerk(&actor, &doc.agency) && !roles.is_leader(&actor, &doc.agency) {
                return Err(forbidden(format!(
                    "only a leader or clerk of {} replaces its documents",
                    doc.agency
                )));
            }
            text("reason", reason, true)?;
            // Decree 30/2020 Art. 18.3: replaced by a document of equivalent form.
            if replacement.id == doc.id
                || replacement.agency != doc.agency
                || replacement.status != Status::Issued
            {
                return Err(invalid(
                    "the replacement must be another issued document of the same agency",
                ));
            }
            if replacement.draft.doc_type != doc.draft.doc_type {
                return Err(invalid(
                    "the replacement must be of the same document type (Decree 30/2020 Art. 18.3)",
                ));
            }
            Ok(Decision::one(DocumentEvent::Replaced(Replaced {
                by: actor,
                at,
                replacement: replacement.id,
                replacement_reference: replacement.reference().unwrap_or_default().to_owned(),
                reason: reason.clone(),
            })))
        }
        _ => unreachable!("incoming commands are decided in incoming.rs"),
    }
}

/// Whether `actor` may sign now: the document awaits a signature and was
/// routed to them for signing. Checked before any signature is verified.
pub fn may_sign(doc: &Document, actor: &str) -> Result<(), DomainError> {
    if doc.status != Status::AwaitingSignature {
        return Err(DomainError::WrongState {
            command: "sign",
            state: doc.status.as_str(),
        });
    }
    if doc
        .route
        .as_ref()
        .is_none_or(|r| r.to != actor || r.purpose != RoutePurpose::Signing)
    {
        return Err(forbidden(format!(
            "only the official the draft was routed to for signing signs it; {actor} is not"
        )));
    }
    Ok(())
}
