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

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use serde::{Deserialize, Serialize};

use crate::domain::interchange::{OrganId, StatusCode};

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

// ---------------------------------------------------------------------------
// Writing

#[derive(Serialize)]
#[serde(rename = "edXML")]
struct OutDocument<'a> {
    #[serde(rename = "@xmlns")]
    xmlns: &'static str,
    #[serde(rename = "edXMLEnvelope")]
    envelope: OutEnvelope<'a>,
    #[serde(rename = "AttachmentEncoded")]
    encoded: OutEncoded,
}

#[derive(Serialize)]
struct OutEnvelope<'a> {
    #[serde(rename = "edXMLHeader")]
    header: OutHeader<'a>,
    #[serde(rename = "edXMLBody")]
    body: OutBody,
}

#[derive(Serialize)]
struct OutHeader<'a> {
    #[serde(rename = "MessageHeader")]
    message: &'a MessageHeader,
    #[serde(rename = "TraceHeaderList")]
    trace: &'a TraceHeaderList,
}

#[derive(Serialize)]
struct OutBody {
    #[serde(rename = "edXMLManifest")]
    manifest: OutManifest,
}

#[derive(Serialize)]
struct OutManifest {
    #[serde(rename = "Reference")]
    references: Vec<OutReference>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct OutReference {
    content_id: String,
    content_type: String,
    attachment_name: String,
    description: String,
}

#[derive(Serialize)]
struct OutEncoded {
    #[serde(rename = "Attachment")]
    attachments: Vec<OutAttachment>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct OutAttachment {
    content_id: String,
    content_transfer_encoded: String,
}

#[derive(Serialize)]
#[serde(rename = "edXML")]
struct OutStatus<'a> {
    #[serde(rename = "@xmlns")]
    xmlns: &'static str,
    #[serde(rename = "edXMLEnvelope")]
    envelope: OutStatusEnvelope<'a>,
}

#[derive(Serialize)]
struct OutStatusEnvelope<'a> {
    #[serde(rename = "edXMLHeader")]
    header: OutStatusHeader<'a>,
}

#[derive(Serialize)]
struct OutStatusHeader<'a> {
    #[serde(rename = "MessageStatus")]
    status: &'a MessageStatus,
}

fn to_xml<T: Serialize>(value: &T) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    let ser = quick_xml::se::Serializer::new(&mut out);
    value.serialize(ser).expect("packages serialise");
    out
}

impl Package {
    /// The package as XML in the QCVN 102 namespace, attachments base64.
    pub fn to_xml(&self) -> String {
        to_xml(&OutDocument {
            xmlns: NS_QCVN,
            envelope: OutEnvelope {
                header: OutHeader {
                    message: &self.header,
                    trace: &self.trace,
                },
                body: OutBody {
                    manifest: OutManifest {
                        references: self
                            .attachments
                            .iter()
                            .map(|a| OutReference {
                                content_id: a.content_id.clone(),
                                content_type: a.content_type.clone(),
                                attachment_name: a.name.clone(),
                                description: a.description.clone(),
                            })
                            .collect(),
                    },
                },
            },
            encoded: OutEncoded {
                attachments: self
                    .attachments
                    .iter()
                    .map(|a| OutAttachment {
                        content_id: a.content_id.clone(),
                        content_transfer_encoded: STANDARD.encode(&a.bytes),
                    })
                    .collect(),
            },
        })
    }
}

impl MessageStatus {
    /// The status message as XML in the QCVN 102 namespace.
    pub fn to_xml(&self) -> String {
        to_xml(&OutStatus {
            xmlns: NS_QCVN,
            envelope: OutStatusEnvelope {
                header: OutStatusHeader { status: self },
            },
        })
    }
}

/// A date as the axis writes it: `YYYY/MM/DD`.
pub fn write_date(d: NaiveDate) -> String {
    d.format("%Y/%m/%d").to_string()
}

/// An instant as the axis writes it: `YYYY/MM/DD HH:MM:SS`, Vietnam time.
pub fn write_timestamp(t: DateTime<Utc>) -> String {
    (t + chrono::Duration::hours(7))
        .format("%Y/%m/%d %H:%M:%S")
        .to_string()
}

// ---------------------------------------------------------------------------
// Reading

/// An element as read: its local name, its text, its children.
#[derive(Debug, Default)]
struct Node {
    name: String,
    text: String,
    children: Vec<Node>,
}

impl Node {
    fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    fn children<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The element again as XML (local names, no namespace), for serde.
    fn write(&self, w: &mut quick_xml::Writer<Vec<u8>>) {
        use quick_xml::events::{BytesEnd, BytesStart, BytesText};
        let _ = w.write_event(Event::Start(BytesStart::new(self.name.as_str())));
        if !self.text.trim().is_empty() {
            let _ = w.write_event(Event::Text(BytesText::new(self.text.trim())));
        }
        for c in &self.children {
            c.write(w);
        }
        let _ = w.write_event(Event::End(BytesEnd::new(self.name.as_str())));
    }

    /// Maps the element onto `T` with serde, naming `field` on failure.
    fn decode<T: serde::de::DeserializeOwned>(&self, field: &str) -> Result<T, EdxmlError> {
        let mut w = quick_xml::Writer::new(Vec::new());
        self.write(&mut w);
        let xml = String::from_utf8(w.into_inner()).map_err(|_| refuse(field, "not UTF-8"))?;
        quick_xml::de::from_str(&xml).map_err(|e| refuse(field, e.to_string()))
    }
}

/// Reads the document into a tree: at most [`MAX_DEPTH`] deep and
/// [`MAX_ELEMENTS`] elements; no DTD, no entity but the five of XML and
/// character references; every element in one of the two namespaces or in
/// none (attachments are often written without one), the root in one of
/// them. Returns the root and its namespace.
fn read_tree(xml: &str) -> Result<(Node, &'static str), EdxmlError> {
    let mut reader = quick_xml::NsReader::from_str(xml);
    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<(Node, &'static str)> = None;
    let mut root_ns: Option<&'static str> = None;
    let mut elements = 0usize;
    let xml_err = |e: String| refuse("xml", e);
    loop {
        let at = reader.buffer_position();
        let (ns, event) = reader
            .read_resolved_event()
            .map_err(|e| xml_err(format!("not well-formed after byte {at}: {e}")))?;
        match event {
            Event::DocType(_) => {
                return Err(xml_err(
                    "a DTD (<!DOCTYPE …>) is not accepted: packages declare no entities".into(),
                ))
            }
            Event::Start(ref e) | Event::Empty(ref e) => {
                elements += 1;
                if elements > MAX_ELEMENTS {
                    return Err(xml_err(format!("more than {MAX_ELEMENTS} elements")));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(xml_err(format!("nested deeper than {MAX_DEPTH}")));
                }
                let local = e.local_name().as_ref().to_owned();
                let namespace = match ns {
                    ResolveResult::Bound(n) if n.as_ref() == NS_QCVN => Some(NS_QCVN),
                    ResolveResult::Bound(n) if n.as_ref() == NS_EDOC => Some(NS_EDOC),
                    ResolveResult::Bound(n) => {
                        return Err(refuse(
                            &local,
                            format!(
                                "namespace {} is neither QCVN 102's ({NS_QCVN}) nor the axis's ({NS_EDOC})",
                                n.as_ref()
                            ),
                        ))
                    }
                    ResolveResult::Unbound => None,
                    ResolveResult::Unknown(p) => {
                        return Err(refuse(
                            &local,
                            format!("prefix {p} is not declared"),
                        ))
                    }
                };
                if stack.is_empty() {
                    if root.is_some() {
                        return Err(xml_err("more than one root element".into()));
                    }
                    root_ns = Some(namespace.ok_or_else(|| {
                        refuse(
                            &local,
                            format!("the root element has no namespace; expected {NS_QCVN} or {NS_EDOC}"),
                        )
                    })?);
                }
                let node = Node {
                    name: local,
                    ..Node::default()
                };
                if matches!(event, Event::Empty(_)) {
                    close(&mut stack, &mut root, root_ns, node)?;
                } else {
                    stack.push(node);
                }
            }
            Event::End(_) => {
                let node = stack
                    .pop()
                    .ok_or_else(|| xml_err("an end tag closes nothing".into()))?;
                close(&mut stack, &mut root, root_ns, node)?;
            }
            Event::Text(t) => append_text(&mut stack, &t.xml10_content())?,
            Event::CData(t) => append_text(&mut stack, &t.xml10_content())?,
            Event::GeneralRef(r) => {
                let text = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => {
                        let name = r.xml10_content();
                        quick_xml::escape::resolve_xml_entity(&name)
                            .ok_or_else(|| {
                                xml_err(format!(
                                    "entity &{name}; is not one of XML's five and no DTD is accepted"
                                ))
                            })?
                            .to_owned()
                    }
                    Err(e) => return Err(xml_err(format!("a character reference: {e}"))),
                };
                append_text(&mut stack, &text)?;
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(xml_err("the document ends inside an element".into()));
    }
    root.ok_or_else(|| xml_err("no root element".into()))
}

fn append_text(stack: &mut [Node], text: &str) -> Result<(), EdxmlError> {
    match stack.last_mut() {
        Some(node) => node.text.push_str(text),
        None if text.trim().is_empty() => {}
        None => return Err(refuse("xml", "text outside the root element")),
    }
    Ok(())
}

fn close(
    stack: &mut [Node],
    root: &mut Option<(Node, &'static str)>,
    root_ns: Option<&'static str>,
    node: Node,
) -> Result<(), EdxmlError> {
    match stack.last_mut() {
        Some(parent) => parent.children.push(node),
        None => *root = Some((node, root_ns.unwrap_or(NS_QCVN))),
    }
    Ok(())
}

/// The envelope and whatever holds the attachments, whichever form the
/// package takes.
fn envelope(root: &Node) -> Result<&Node, EdxmlError> {
    match root.name.as_str() {
        "edXMLEnvelope" | "EdXMLEnvelope" => Ok(root),
        "edXML" => root
            .child("edXMLEnvelope")
            .or_else(|| root.child("EdXMLEnvelope"))
            .ok_or_else(|| refuse("edXML", "no edXMLEnvelope")),
        other => Err(refuse(other, "the root is neither edXML nor edXMLEnvelope")),
    }
}

fn header(env: &Node) -> &Node {
    env.child("edXMLHeader")
        .or_else(|| env.child("Header"))
        .unwrap_or(env)
}

/// Reads an inbound package or status message and checks its fields.
pub fn read(xml: &str) -> Result<Inbound, EdxmlError> {
    let (root, _ns) = read_tree(xml)?;
    let env = envelope(&root)?;
    let head = header(env);
    if let Some(status) = head.child("MessageStatus") {
        let status: MessageStatus = status.decode("MessageStatus")?;
        check_status(&status)?;
        return Ok(Inbound::Status(Box::new(status)));
    }
    let message = head.child("MessageHeader").ok_or_else(|| {
        refuse(
            "MessageHeader",
            "missing: the package has neither MessageHeader nor MessageStatus",
        )
    })?;
    let header: MessageHeader = message.decode("MessageHeader")?;
    let trace: TraceHeaderList = match head.child("TraceHeaderList") {
        Some(t) => t.decode("TraceHeaderList")?,
        None => TraceHeaderList::default(),
    };
    check_header(&header)?;
    let attachments = attachments(&root, env)?;
    Ok(Inbound::Document(Box::new(Package {
        header,
        trace,
        attachments,
    })))
}

/// The attachments: the manifest's references, each with its bytes.
fn attachments(root: &Node, env: &Node) -> Result<Vec<Attachment>, EdxmlError> {
    let body = env.child("edXMLBody").or_else(|| env.child("Body"));
    let manifest = body
        .and_then(|b| b.child("edXMLManifest").or_else(|| b.child("Manifest")))
        .or_else(|| env.child("Manifest"));
    let encoded: Vec<&Node> = [root, env]
        .into_iter()
        .flat_map(|n| n.children("AttachmentEncoded"))
        .flat_map(|e| e.children("Attachment"))
        .collect();
    let mut out = Vec::new();
    let Some(manifest) = manifest else {
        return Ok(out);
    };
    for (i, r) in manifest.children("Reference").enumerate() {
        if i == MAX_ATTACHMENTS {
            return Err(refuse(
                "Manifest",
                format!("more than {MAX_ATTACHMENTS} attachments"),
            ));
        }
        let field = |name: &str| format!("Manifest/Reference[{i}]/{name}");
        let text = |name: &str| {
            r.child(name)
                .map(|n| n.text.trim().to_owned())
                .unwrap_or_default()
        };
        let content_id = text("ContentId");
        if content_id.is_empty() {
            return Err(refuse(&field("ContentId"), "missing"));
        }
        if out.iter().any(|a: &Attachment| a.content_id == content_id) {
            return Err(refuse(
                &field("ContentId"),
                format!("{content_id} is referenced twice"),
            ));
        }
        let name = text("AttachmentName");
        if name.is_empty() || name.contains(['/', '\\']) || name.len() > 255 {
            return Err(refuse(
                &field("AttachmentName"),
                "missing, longer than 255, or a path",
            ));
        }
        let data = encoded
            .iter()
            .find(|a| {
                a.child("ContentId")
                    .is_some_and(|c| c.text.trim() == content_id)
            })
            .ok_or_else(|| {
                refuse(
                    &field("ContentId"),
                    format!("no AttachmentEncoded/Attachment has ContentId {content_id}"),
                )
            })?;
        let b64: String = data
            .child("ContentTransferEncoded")
            .map(|n| n.text.split_whitespace().collect())
            .unwrap_or_default();
        let bytes = STANDARD.decode(b64.as_bytes()).map_err(|e| {
            refuse(
                &format!("Attachment[{content_id}]/ContentTransferEncoded"),
                format!("not base64: {e}"),
            )
        })?;
        out.push(Attachment {
            content_id,
            name,
            content_type: text("ContentType"),
            description: text("Description"),
            bytes,
        });
    }
    Ok(out)
}

fn check_organ(field: &str, organ: &Organ) -> Result<OrganId, EdxmlError> {
    OrganId::parse(organ.organ_id.trim())
        .map_err(|e| refuse(&format!("{field}/OrganId"), e.to_string()))
}

/// Fields 1.1–1.14 as vanthu needs them.
fn check_header(h: &MessageHeader) -> Result<(), EdxmlError> {
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

fn check_status(s: &MessageStatus) -> Result<(), EdxmlError> {
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

/// A date in any of the forms the field uses.
pub fn read_date(text: &str) -> Result<NaiveDate, String> {
    let t = text.trim();
    for f in ["%Y/%m/%d", "%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y"] {
        if let Ok(d) = NaiveDate::parse_from_str(t, f) {
            return plausible(d);
        }
    }
    read_instant(t)
        .map(|i| (i + chrono::Duration::hours(7)).date_naive())
        .map_err(|_| format!("{t:?} is not a date (YYYY/MM/DD, YYYY-MM-DD or DD/MM/YYYY)"))
        .and_then(plausible)
}

/// Years a package may name.
const YEARS: std::ops::RangeInclusive<i32> = 1900..=2200;

fn plausible(d: NaiveDate) -> Result<NaiveDate, String> {
    use chrono::Datelike;
    if YEARS.contains(&d.year()) {
        Ok(d)
    } else {
        Err(format!(
            "{d} is outside the years {}–{}",
            YEARS.start(),
            YEARS.end()
        ))
    }
}

/// An instant in any of the forms the field uses; without an offset it is
/// Vietnam time.
pub fn read_instant(text: &str) -> Result<DateTime<Utc>, String> {
    use chrono::Datelike;
    let t = text.trim();
    let in_range = |i: DateTime<Utc>| {
        if YEARS.contains(&i.year()) {
            Ok(i)
        } else {
            Err(format!(
                "{t:?} is outside the years {}–{}",
                YEARS.start(),
                YEARS.end()
            ))
        }
    };
    if let Ok(i) = DateTime::parse_from_rfc3339(t) {
        return in_range(i.with_timezone(&Utc));
    }
    for f in [
        "%Y/%m/%d %H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%d/%m/%Y %H:%M:%S",
    ] {
        if let Ok(local) = NaiveDateTime::parse_from_str(t, f) {
            let utc = local
                .checked_sub_signed(chrono::Duration::hours(7))
                .ok_or_else(|| format!("{t:?} is out of range"))?;
            return in_range(utc.and_utc());
        }
    }
    Err(format!(
        "{t:?} is not an instant (YYYY/MM/DD HH:MM:SS, or RFC 3339)"
    ))
}

#[cfg(test)]
#[path = "edxml_tests.rs"]
mod tests;
