//! Who may read a document, and how much of it: the one place these rules
//! live. Every read path (the document, its events, files, bundle and
//! verification; the commands that first check the caller may see what they
//! act on) asks here.
//!
//! A confidential document (mật and above) is confined to those who need it:
//! on the issuing side its author, drafting unit and the officials it was
//! routed to or asked for an opinion, plus the agency's leaders and clerks;
//! on each recipient side, once issued, that agency's leaders and clerks
//! plus the units and the handler it was assigned to. No one else, an
//! office chief (Chánh Văn phòng) of another unit included: the office
//! chief keeps the ordinary registers, not the secrets. Ordinary documents
//! are open to every official of the issuing agency and, once issued, of
//! each recipient agency.
//!
//! The views follow the same rules: whose inboxes a caller reads, which
//! reply-deadline rows (a confidential one only to the leaders and clerks
//! of the answering or issuing agency), which registers (the secret series
//! only to the agency's leaders and clerks).
//!
//! Must never: do I/O or read a clock (the instant is given), or be
//! re-implemented by a caller: a second copy of a read rule is a bug.

use chrono::{DateTime, Utc};

use super::document::{Confidentiality, Document};
use super::org::{Org, Position};

/// Whether the document is confidential (mật, tối mật, tuyệt mật).
pub fn is_confidential(doc: &Document) -> bool {
    doc.draft.confidentiality != Confidentiality::Normal
}

/// The author, or an official the draft was routed to or asked for an opinion.
pub fn involved(doc: &Document, who: &str) -> bool {
    doc.author == who
        || doc.route.as_ref().is_some_and(|r| r.to == who)
        || doc.opinions.iter().any(|o| o.from == who)
}

/// Whether a draft may cite a content blob (a file, by its hash): one the
/// document being revised already cites, one its author uploaded, or one
/// that a document its author may read already cites. Knowing a hash is not
/// enough. The facts are asked for lazily, cheapest first.
pub fn may_cite<E>(
    cited_by_this_document: bool,
    uploaded_by_author: impl FnOnce() -> Result<bool, E>,
    cited_by_a_document_author_may_read: impl FnOnce() -> Result<bool, E>,
) -> Result<bool, E> {
    Ok(cited_by_this_document || uploaded_by_author()? || cited_by_a_document_author_may_read()?)
}

/// Whether systems outside the organisation's officials (the feed, webhooks,
/// interchange with other agencies' systems) may be told of a document:
/// never a confidential one (Decision 28/2018/QĐ-TTg's scope leaves state
/// secrets out of electronic interchange).
pub fn integrations_may_see(confidential: bool) -> bool {
    !confidential
}

/// Whether `who` may read the log's raw entries (every record: drafts,
/// internal correspondence, confidential documents). Only the auditor role
/// does; the tree's hashes are public and need no rule.
pub fn may_read_log_entries(org: &Org, who: &str, at: DateTime<Utc>) -> bool {
    org.is_auditor(who, at)
}

/// Whether `who` may read `agency`'s confidential documents and rows as
/// one of those who keep its secrets: its leaders (head, deputy, acting
/// head, at agency level) and its clerks (văn thư, who register, seal and
/// dispatch them). The one list for documents, deadline rows, unit inboxes
/// and the secret register.
pub fn keeps_secrets(org: &Org, who: &str, agency: &str, at: DateTime<Utc>) -> bool {
    org.leads(who, agency, at) || org.is_clerk(who, agency, at)
}

/// Whether `who` may read `doc` at `at`.
pub fn may_read(doc: &Document, org: &Org, who: &str, at: DateTime<Utc>) -> bool {
    involved(doc, who)
        || reads_as_issuer(doc, org, who, at)
        || reads_as_recipient(doc, org, who, at)
        || (!is_confidential(doc) && org.is_admin(who, at))
}

/// On the issuing side: any official of the agency, or for a confidential
/// document its drafting unit and those who keep the agency's secrets.
fn reads_as_issuer(doc: &Document, org: &Org, who: &str, at: DateTime<Utc>) -> bool {
    let confidential = is_confidential(doc);
    org.positions_at(who, at).iter().any(|a| {
        a.agency == doc.agency
            && (!confidential || a.unit.as_deref() == Some(doc.drafting_unit.as_str()))
    }) || (confidential && keeps_secrets(org, who, &doc.agency, at))
}

/// On a recipient's side once issued: any official of a recipient agency,
/// or for a confidential document those who keep that agency's secrets and
/// the units and handler its receipt was assigned to.
fn reads_as_recipient(doc: &Document, org: &Org, who: &str, at: DateTime<Utc>) -> bool {
    let Some(issue) = &doc.issue else {
        return false;
    };
    let positions = org.positions_at(who, at);
    issue.recipients.iter().any(|r| {
        let agency = r.agency.as_str();
        if !positions.iter().any(|a| a.agency == agency) {
            return false;
        }
        if !is_confidential(doc) || keeps_secrets(org, who, agency, at) {
            return true;
        }
        let Some(assignment) = doc.receipts.get(agency).and_then(|x| x.assignment.as_ref()) else {
            return false;
        };
        assignment.handler.as_deref() == Some(who)
            || positions.iter().any(|a| {
                a.agency == agency
                    && a.unit.as_ref().is_some_and(|u| {
                        assignment.lead == *u
                            || assignment.coordinating.contains(u)
                            || assignment.fyi.contains(u)
                    })
            })
    })
}

/// May `who` read the drafting history (the audit trail, opinions, returns)?
/// The issuing side's readers and those involved; recipients never.
pub fn sees_drafting(doc: &Document, org: &Org, who: &str, at: DateTime<Utc>) -> bool {
    involved(doc, who)
        || reads_as_issuer(doc, org, who, at)
        || (!is_confidential(doc) && org.is_admin(who, at))
}

/// Which of a document's log records its evidence bundle carries for
/// `who`: all of them for those who see its drafting; for a recipient only
/// the signing and issuing records (the rest is drafting history and other
/// recipients' handling, which `view` hides too).
pub fn bundle_carries(
    doc: &Document,
    org: &Org,
    who: &str,
    at: DateTime<Utc>,
    event_type: &str,
) -> bool {
    sees_drafting(doc, org, who, at) || recipient_evidence(event_type)
}

/// The records a recipient's evidence carries: the signing and issuing
/// ones (also what an edXML package carries to another system).
pub fn recipient_evidence(event_type: &str) -> bool {
    matches!(event_type, "document.signed.v1" | "document.issued.v1")
}

/// Why a status message is not recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatusRefusal {
    /// The peer does not speak for that recipient, or it is none.
    #[error("{0}")]
    NotFor(String),
    /// The code does not fit the document's state (D14).
    #[error("{0}")]
    OutOfTurn(String),
}

/// Which external recipient of `doc` a status message speaks for: one
/// registered with identifier `from_organ`, reached through `peer` (a peer
/// speaks only for the agencies registered with it), and a recipient of
/// the issued document; and whether `code` fits what that recipient
/// reported before and the document's state (`StatusCode::fits`: no 06
/// before 03, no 15 or 16 unless the document was recalled, 01 only
/// first). `Ok(None)`: that recipient already reported `code` (each code
/// is recorded once per document and recipient).
pub fn status_recipient(
    doc: &Document,
    org: &Org,
    peer: &str,
    from_organ: &str,
    code: super::interchange::StatusCode,
) -> Result<Option<String>, StatusRefusal> {
    use super::interchange::StatusCode;
    let agency = speaks_for(org, peer, from_organ).map_err(StatusRefusal::NotFor)?;
    let issue = doc
        .issue
        .as_ref()
        .ok_or_else(|| StatusRefusal::NotFor("the document was not issued".to_owned()))?;
    if !issue.recipients.iter().any(|r| r.agency == agency.code) {
        return Err(StatusRefusal::NotFor(format!(
            "{} is not a recipient of the document",
            agency.code
        )));
    }
    let before: Vec<StatusCode> = doc
        .interchange
        .get(&agency.code)
        .into_iter()
        .flatten()
        .filter_map(|x| StatusCode::parse(&x.code).ok())
        .collect();
    if before.contains(&code) {
        return Ok(None);
    }
    code.fits(&before, doc.recall.is_some())
        .map_err(StatusRefusal::OutOfTurn)?;
    Ok(Some(agency.code.clone()))
}

/// The external agency `organ_id` names, if `peer` speaks for it: a peer
/// speaks only for the agencies registered with it.
pub fn speaks_for<'o>(
    org: &'o Org,
    peer: &str,
    organ_id: &str,
) -> Result<&'o crate::domain::org::Agency, String> {
    org.agency_by_organ(organ_id)
        .filter(|a| a.peer.as_deref() == Some(peer))
        .ok_or_else(|| format!("peer {peer} does not speak for {organ_id} here"))
}

/// Whether a document of this confidentiality may be addressed to
/// `agency`: a confidential one never to another system's agency (its
/// package would leave through the interchange).
pub fn may_address(org: &Org, agency: &str, confidential: bool) -> bool {
    integrations_may_see(confidential) || !org.agencies.get(agency).is_some_and(|a| a.is_external())
}

/// What a package's header says, checked against what the sealed evidence
/// proves: the sender is the sealing agency (by the identifier the sealed
/// organisation history gives it), and the number, symbol, date and title
/// are the ones sealed. Fields that merely travel beside the signatures
/// are not believed.
pub struct PackageClaims<'a> {
    pub from_organ: &'a str,
    pub code_number: &'a str,
    pub code_notation: &'a str,
    pub promulgation_date: chrono::NaiveDate,
    pub subject: &'a str,
}

/// Checks `claims` against the seal's payload and the organisation history
/// it attests; names the first field that differs.
pub fn package_matches_seal(
    claims: &PackageClaims<'_>,
    seal: &crate::domain::signing::SealPayload,
    sealed_org: &[crate::domain::org::OrgEvent],
) -> Result<(), (&'static str, String)> {
    use crate::domain::org::OrgEvent;
    let sealer = &seal.signed.agency;
    let organ = sealed_org.iter().rev().find_map(|e| match e {
        OrgEvent::AgencyIdentified {
            agency, organ_id, ..
        } if agency == sealer => Some(organ_id.as_str()),
        _ => None,
    });
    if organ != Some(claims.from_organ) {
        return Err((
            "From/OrganId",
            format!(
                "the seal is {sealer}'s, whose identifier in the sealed history is {}, not {}",
                organ.unwrap_or("none"),
                claims.from_organ
            ),
        ));
    }
    if claims.code_number.trim().parse::<u64>().ok() != Some(seal.number) {
        return Err((
            "Code/CodeNumber",
            format!("the sealed number is {}", seal.number),
        ));
    }
    if claims.code_notation.trim() != seal.symbol {
        return Err((
            "Code/CodeNotation",
            format!("the sealed symbol is {}", seal.symbol),
        ));
    }
    if claims.promulgation_date != seal.issued_on {
        return Err((
            "PromulgationInfo/PromulgationDate",
            format!("the sealed issue date is {}", seal.issued_on),
        ));
    }
    if claims.subject.trim() != seal.signed.title.trim() {
        return Err(("Subject", "it is not the sealed title".into()));
    }
    Ok(())
}

/// Whether `who` may take or return, for `agency`, a package another
/// system sent it: those who keep the agency's books (its clerks, leaders
/// and office chief), as for its registers.
pub fn may_handle_arrival(org: &Org, who: &str, agency: &str, at: DateTime<Utc>) -> bool {
    org.keeps_books(who, agency, at)
}

/// Whether `doc` travels to `agency` as an edXML package: issued, not
/// confidential (Decision 28/2018/QĐ-TTg leaves state secrets out of the
/// interchange), and `agency` is another system's recipient of it.
pub fn travels_to(doc: &Document, org: &Org, agency: &str) -> bool {
    may_address(org, agency, is_confidential(doc))
        && org.agencies.get(agency).is_some_and(|a| a.is_external())
        && doc
            .issue
            .as_ref()
            .is_some_and(|i| i.recipients.iter().any(|r| r.agency == agency))
}

/// The document as `who` may see it: a recipient sees the issued document
/// and its own agency's handling, not the drafting history or other
/// recipients' handling.
pub fn view(doc: &Document, org: &Org, who: &str, at: DateTime<Utc>) -> Document {
    let mut doc = doc.clone();
    if !sees_drafting(&doc, org, who, at) {
        let mine: Vec<String> = org
            .positions_at(who, at)
            .iter()
            .map(|a| a.agency.clone())
            .collect();
        doc.opinions.clear();
        doc.last_return = None;
        doc.route = None;
        doc.receipts.retain(|agency, _| mine.contains(agency));
        if let Some(o) = doc.origin.as_mut() {
            o.refused.retain(|agency, _| mine.contains(agency));
        }
    }
    doc
}

/// An inbox a caller reads: their own, their agency's as its clerk or
/// leader, or a unit's.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Party {
    Official(String),
    Clerks(String),
    Leaders(String),
    Unit { agency: String, unit: String },
}

/// The inboxes `who` reads as their own at `at`: theirs, their agencies'
/// clerks' box (as a clerk) and leaders' box (as a leader outside any unit).
pub fn own_inboxes(org: &Org, who: &str, at: DateTime<Utc>) -> Vec<Party> {
    let mut parties = vec![Party::Official(who.to_owned())];
    for a in org.positions_at(who, at) {
        if a.position == Position::Clerk {
            parties.push(Party::Clerks(a.agency.clone()));
        } else if a.position.is_leader() && a.unit.is_none() {
            parties.push(Party::Leaders(a.agency.clone()));
        }
    }
    parties.sort();
    parties.dedup();
    parties
}

/// Whether `who` may read unit `unit`'s inbox (in `agency`, or the agency
/// of theirs that has such a unit): its members and the agency's leaders
/// and clerks (the inbox lists the unit's confidential documents too). The
/// agency, when they may.
pub fn unit_inbox_agency(
    org: &Org,
    who: &str,
    unit: &str,
    agency: Option<&str>,
    at: DateTime<Utc>,
) -> Option<String> {
    let mine = org.positions_at(who, at);
    let agency = match agency {
        Some(a) => a.to_owned(),
        None => mine
            .iter()
            .find(|a| org.units.contains_key(&(a.agency.clone(), unit.to_owned())))
            .map(|a| a.agency.clone())?,
    };
    let member = mine
        .iter()
        .any(|a| a.agency == agency && a.unit.as_deref() == Some(unit));
    (member || keeps_secrets(org, who, &agency, at)).then_some(agency)
}

/// Which reply-deadline rows of an agency a caller sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadlineScope {
    /// The answering agency whose rows are read; `None`: every agency's
    /// reply rows that `issuers` issued (the issuing agency's follow-up).
    pub agency: Option<String>,
    /// `Some`: only rows these agencies issued (the caller is not in `agency`).
    pub issuers: Option<Vec<String>>,
    /// Agencies whose secrets the caller keeps (`keeps_secrets`): they
    /// alone see rows of confidential documents answered or issued there.
    pub privileged: Vec<String>,
}

impl DeadlineScope {
    /// Whether a row (answered by `agency`, issued by `issuer`) is visible.
    pub fn admits(&self, agency: &str, issuer: &str, confidential: bool) -> bool {
        self.issuers
            .as_ref()
            .is_none_or(|i| i.iter().any(|x| x == issuer))
            && (!confidential || self.privileged.iter().any(|p| p == agency || p == issuer))
    }
}

/// Why a caller may not read a view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewRefusal {
    /// The request must say which agency.
    NameTheAgency,
    Forbidden(String),
}

/// The agencies `who` holds a position in at `at`, and those of them whose
/// secrets they keep.
fn agencies_and_secrets(org: &Org, who: &str, at: DateTime<Utc>) -> (Vec<String>, Vec<String>) {
    let mut mine: Vec<String> = org
        .positions_at(who, at)
        .iter()
        .map(|a| a.agency.clone())
        .collect();
    mine.sort();
    mine.dedup();
    let secrets = mine
        .iter()
        .filter(|a| keeps_secrets(org, who, a, at))
        .cloned()
        .collect();
    (mine, secrets)
}

/// The agency asked for, or the caller's only one.
fn named_or_only(asked: Option<&str>, mine: &[String]) -> Result<String, ViewRefusal> {
    match (asked, mine) {
        (Some(a), _) => Ok(a.to_owned()),
        (None, [one]) => Ok(one.clone()),
        (None, _) => Err(ViewRefusal::NameTheAgency),
    }
}

/// The deadline rows of `agency` (default: the caller's only agency) that
/// `who` sees: all of them as a member or an admin, else those its own
/// agencies issued; confidential ones only where they are a leader or clerk
/// of the answering or issuing agency.
pub fn deadline_scope(
    org: &Org,
    who: &str,
    agency: Option<&str>,
    at: DateTime<Utc>,
) -> Result<DeadlineScope, ViewRefusal> {
    let (mine, privileged) = agencies_and_secrets(org, who, at);
    let agency = named_or_only(agency, &mine)?;
    let issuers = if mine.contains(&agency) || org.is_admin(who, at) {
        None
    } else if !mine.is_empty() {
        Some(mine)
    } else {
        return Err(ViewRefusal::Forbidden(
            "only officials see deadlines".into(),
        ));
    };
    Ok(DeadlineScope {
        agency: Some(agency),
        issuers,
        privileged,
    })
}

/// The reply rows `issuer` (default: the caller's only agency) set for
/// every answering agency, as its officials follow them up: its members
/// and admins see them; confidential ones only where they are a leader or
/// clerk of the answering or issuing agency.
pub fn issued_deadline_scope(
    org: &Org,
    who: &str,
    issuer: Option<&str>,
    at: DateTime<Utc>,
) -> Result<DeadlineScope, ViewRefusal> {
    let (mine, privileged) = agencies_and_secrets(org, who, at);
    let issuer = named_or_only(issuer, &mine)?;
    if !mine.contains(&issuer) && !org.is_admin(who, at) {
        return Err(ViewRefusal::Forbidden(format!(
            "only officials of {issuer} follow up the replies it is owed"
        )));
    }
    Ok(DeadlineScope {
        agency: None,
        issuers: Some(vec![issuer]),
        privileged,
    })
}

/// Whether `who` may read `agency`'s registers (its secret series when
/// `secret`): those who keep its books (leaders, clerks, the office chief),
/// and admins; the secret series, which numbers its confidential documents,
/// only those who keep its secrets (`keeps_secrets`: leaders and clerks).
pub fn may_read_register(
    org: &Org,
    who: &str,
    agency: &str,
    secret: bool,
    at: DateTime<Utc>,
) -> Result<(), ViewRefusal> {
    if !org.keeps_books(who, agency, at) && !org.is_admin(who, at) {
        return Err(ViewRefusal::Forbidden(format!(
            "only clerks, leaders and the office chief of {agency} read its registers"
        )));
    }
    if secret && !keeps_secrets(org, who, agency, at) {
        return Err(ViewRefusal::Forbidden(format!(
            "only leaders and clerks of {agency} read its secret register"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::may_cite;

    #[test]
    fn a_file_is_cited_by_its_document_its_uploader_or_a_reader_of_a_citer() {
        // (cited by this document, uploaded by the author, cited by a
        // document the author may read) → may cite.
        for (this, uploaded, reader, want) in [
            (true, false, false, true),
            (false, true, false, true),
            (false, false, true, true),
            (false, false, false, false),
        ] {
            let got = may_cite::<()>(this, || Ok(uploaded), || Ok(reader));
            assert_eq!(got, Ok(want), "{this} {uploaded} {reader}");
        }
        // Lazily: the upload is not looked up (nor marked in use) when the
        // document already cites the file.
        let got = may_cite::<()>(true, || panic!("asked"), || panic!("asked"));
        assert_eq!(got, Ok(true));
    }
}
