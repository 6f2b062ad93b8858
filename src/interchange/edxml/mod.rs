//! edXML packages (QCVN 102:2016/BTTTT): what documents and status
//! messages look like on the interchange axis between agencies' systems.
//! Building one is serde over quick-xml (never string pasting); reading one
//! is a bounded, namespace-aware pass over quick-xml's events into a small
//! tree of local names, whose parts serde then maps onto the same types.
//!
//! Both namespaces seen in the field are read: the standard's
//! `http://www.mic.gov.vn/TBT/QCVN_102_2016` (root `edXML` ›
//! `edXMLEnvelope` › `edXMLHeader` / `edXMLBody`, attachments in
//! `AttachmentEncoded`) and the government axis's `http://www.go.vn/eDoc`
//! (root `edXMLEnvelope`, which may carry `MessageHeader` directly), with
//! or without a prefix. Dates are read as `YYYY/MM/DD`, `YYYY-MM-DD`,
//! `DD/MM/YYYY` or an RFC 3339 instant, and written as the axis's guide
//! writes them (`YYYY/MM/DD`, timestamps `YYYY/MM/DD HH:MM:SS` in UTC+7).
//!
//! Must never: accept a DTD or an entity it does not know (no billion
//! laughs, no external entities), read past its limits, or let a package
//! through without naming the field that is wrong.
//!
//! `write` builds, `read` parses into the types here, `check` checks the
//! fields read, `dates` reads and writes the field's dates.

mod check;
mod dates;
mod read;
mod write;

pub use dates::{read_date, read_instant, write_date, write_timestamp};
pub use read::read;

use serde::{Deserialize, Serialize};

/// The namespace of QCVN 102:2016.
pub const NS_QCVN: &str = "http://www.mic.gov.vn/TBT/QCVN_102_2016";
/// The namespace of the government axis's connection guide (v2.x).
pub const NS_EDOC: &str = "http://www.go.vn/eDoc";

/// Deepest element nesting read.
const MAX_DEPTH: usize = 24;
/// Most elements read.
const MAX_ELEMENTS: usize = 20_000;
/// Most attachments in one package.
const MAX_ATTACHMENTS: usize = 200;

/// Why a package was refused: the field (its path in the package, or
/// `xml` for the document itself) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct EdxmlError {
    pub field: String,
    pub reason: String,
}

fn refuse(field: &str, reason: impl Into<String>) -> EdxmlError {
    EdxmlError {
        field: field.into(),
        reason: reason.into(),
    }
}

/// An organisation as a package names it (1.1 From, 1.2 To).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Organ {
    pub organ_id: String,
    #[serde(default)]
    pub organization_in_charge: String,
    #[serde(default)]
    pub organ_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub organ_add: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub email: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub telephone: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fax: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub website: String,
}

/// 1.3: the number and the symbol, e.g. `12` and `BTTTT-THH`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Code {
    pub code_number: String,
    pub code_notation: String,
}

/// 1.4: where and when it was issued.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PromulgationInfo {
    #[serde(default)]
    pub place: String,
    pub promulgation_date: String,
}

/// 1.5: `Type` 1 legal normative, 2 administrative; `TypeName` the name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DocumentType {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(default)]
    pub type_name: String,
}

/// 1.8: who signed and in what form (TM., KT., TL., TUQ., or "Trực tiếp").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SignerInfo {
    #[serde(default)]
    pub competence: String,
    #[serde(default)]
    pub position: String,
    #[serde(default)]
    pub full_name: String,
}

/// 1.10: the printed "Nơi nhận".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToPlaces {
    #[serde(rename = "Place", default)]
    pub places: Vec<String>,
}

/// 1.11.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OtherInfo {
    /// 0 (normal) to 3 (most urgent).
    #[serde(default)]
    pub priority: u8,
    #[serde(default)]
    pub sphere_of_promulgation: String,
    #[serde(default)]
    pub typer_notation: String,
    #[serde(default)]
    pub promulgation_amount: u32,
    #[serde(default)]
    pub page_amount: u32,
}

/// 1.12: the document a reply answers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResponseFor {
    pub organ_id: String,
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub promulgation_date: String,
    pub document_id: String,
}

/// The header of a document package (fields 1.1–1.14).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MessageHeader {
    pub from: Organ,
    #[serde(rename = "To", default)]
    pub to: Vec<Organ>,
    pub code: Code,
    pub promulgation_info: PromulgationInfo,
    pub document_type: DocumentType,
    pub subject: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub content: String,
    #[serde(default)]
    pub signer_info: SignerInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_date: Option<String>,
    #[serde(default)]
    pub to_places: ToPlaces,
    #[serde(default)]
    pub other_info: OtherInfo,
    #[serde(rename = "ResponseFor", default, skip_serializing_if = "Vec::is_empty")]
    pub response_for: Vec<ResponseFor>,
    #[serde(default)]
    pub steering_type: u8,
    pub document_id: String,
}

/// One hop on the axis.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TraceHeader {
    pub organ_id: String,
    pub timestamp: String,
}

/// Who handled it on the sending side.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StaffInfo {
    #[serde(default)]
    pub department: String,
    #[serde(default)]
    pub staff: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mobile: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub email: String,
}

/// What the package does: 0 new, 1 revoke, 2 update, 3 replace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Bussiness {
    pub bussiness_doc_type: u8,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub bussiness_doc_reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub document_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staff_info: Option<StaffInfo>,
}

/// The trace of hops and the business kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceHeaderList {
    #[serde(rename = "TraceHeader", default)]
    pub trace: Vec<TraceHeader>,
    #[serde(rename = "Bussiness", default, skip_serializing_if = "Option::is_none")]
    pub bussiness: Option<Bussiness>,
}

/// An attached file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub content_id: String,
    pub name: String,
    pub content_type: String,
    pub description: String,
    pub bytes: Vec<u8>,
}

/// A document package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub header: MessageHeader,
    pub trace: TraceHeaderList,
    pub attachments: Vec<Attachment>,
}

/// A status message (gói tin trạng thái).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MessageStatus {
    pub response_for: ResponseFor,
    pub from: Organ,
    pub status_code: String,
    #[serde(default)]
    pub description: String,
    pub timestamp: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staff_info: Option<StaffInfo>,
}

/// What came in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    Document(Box<Package>),
    Status(Box<MessageStatus>),
}

#[cfg(test)]
mod tests;
