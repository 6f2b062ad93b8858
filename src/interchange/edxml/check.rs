//! Checking an edXML package's or status message's fields after reading:
//! identifiers, lengths, dates and codes, naming the first field that is
//! wrong.
//!
//! Must never: let a field through that vanthu later relies on without
//! having checked its shape here.

use super::dates::{read_date, read_instant};
use super::{refuse, EdxmlError, MessageHeader, MessageStatus, Organ};
use crate::domain::interchange::{OrganId, StatusCode};

fn check_organ(field: &str, organ: &Organ) -> Result<OrganId, EdxmlError> {
    OrganId::parse(organ.organ_id.trim())
        .map_err(|e| refuse(&format!("{field}/OrganId"), e.to_string()))
}

/// Fields 1.1–1.14 as vanthu needs them.
pub(super) fn check_header(h: &MessageHeader) -> Result<(), EdxmlError> {
    check_organ("From", &h.from)?;
    if h.to.is_empty() {
        return Err(refuse("To", "missing: name at least one recipient"));
    }
    if h.to.len() > 100 {
        return Err(refuse("To", "more than 100 recipients"));
    }
    if h.to_places.places.len() > 100 {
        return Err(refuse("ToPlaces", "more than 100 places"));
    }
    if h.response_for.len() > 20 {
        return Err(refuse("ResponseFor", "more than 20"));
    }
    let texts = [
        ("From/OrganName", &h.from.organ_name),
        ("From/OrganizationInCharge", &h.from.organization_in_charge),
        ("PromulgationInfo/Place", &h.promulgation_info.place),
        ("DocumentType/TypeName", &h.document_type.type_name),
        ("SignerInfo/Competence", &h.signer_info.competence),
        ("SignerInfo/Position", &h.signer_info.position),
        ("SignerInfo/FullName", &h.signer_info.full_name),
    ];
    for (field, text) in texts {
        if text.chars().count() > 500 {
            return Err(refuse(field, "longer than 500 characters"));
        }
    }
    for (i, t) in h.to.iter().enumerate() {
        if t.organ_name.chars().count() > 500 {
            return Err(refuse(
                &format!("To[{i}]/OrganName"),
                "longer than 500 characters",
            ));
        }
    }
    if h.to_places.places.iter().any(|p| p.chars().count() > 500) {
        return Err(refuse("ToPlaces/Place", "longer than 500 characters"));
    }
    if h.content.chars().count() > 20_000 {
        return Err(refuse("Content", "longer than 20,000 characters"));
    }
    for (i, to) in h.to.iter().enumerate() {
        check_organ(&format!("To[{i}]"), to)?;
    }
    let number = h.code.code_number.trim();
    if number.is_empty() || number.len() > 20 {
        return Err(refuse("Code/CodeNumber", "missing or longer than 20"));
    }
    if h.code.code_notation.trim().is_empty() || h.code.code_notation.len() > 100 {
        return Err(refuse("Code/CodeNotation", "missing or longer than 100"));
    }
    read_date(&h.promulgation_info.promulgation_date)
        .map_err(|e| refuse("PromulgationInfo/PromulgationDate", e))?;
    let subject = h.subject.trim();
    if subject.is_empty() || subject.chars().count() > 2000 {
        return Err(refuse("Subject", "missing or longer than 2000 characters"));
    }
    if let Some(due) = &h.due_date {
        if !due.trim().is_empty() {
            read_date(due).map_err(|e| refuse("DueDate", e))?;
        }
    }
    if h.other_info.priority > 3 {
        return Err(refuse("OtherInfo/Priority", "0 to 3"));
    }
    let id = h.document_id.trim();
    if id.is_empty() || id.len() > 100 {
        return Err(refuse("DocumentId", "missing or longer than 100"));
    }
    for (i, r) in h.response_for.iter().enumerate() {
        OrganId::parse(r.organ_id.trim())
            .map_err(|e| refuse(&format!("ResponseFor[{i}]/OrganId"), e.to_string()))?;
        if r.document_id.trim().is_empty() {
            return Err(refuse(&format!("ResponseFor[{i}]/DocumentId"), "missing"));
        }
    }
    Ok(())
}

pub(super) fn check_status(s: &MessageStatus) -> Result<(), EdxmlError> {
    check_organ("From", &s.from)?;
    OrganId::parse(s.response_for.organ_id.trim())
        .map_err(|e| refuse("ResponseFor/OrganId", e.to_string()))?;
    if s.response_for.document_id.trim().is_empty() {
        return Err(refuse("ResponseFor/DocumentId", "missing"));
    }
    StatusCode::parse(s.status_code.trim()).map_err(|e| refuse("StatusCode", e.to_string()))?;
    read_instant(&s.timestamp).map_err(|e| refuse("Timestamp", e))?;
    if s.description.chars().count() > 1000 {
        return Err(refuse("Description", "longer than 1000 characters"));
    }
    Ok(())
}
