//! Reading edXML: a bounded, namespace-aware pass over quick-xml's events
//! into a small tree of local names, whose parts serde then maps onto the
//! package types; attachments are taken from the manifest's references.
//!
//! Must never: accept a DTD or an entity it does not know, nest deeper or
//! read more elements or attachments than the limits, or let a package
//! through unchecked (`check`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

use super::check::{check_header, check_status};
use super::{
    refuse, Attachment, EdxmlError, Inbound, MessageHeader, MessageStatus, Package,
    TraceHeaderList, MAX_ATTACHMENTS, MAX_DEPTH, MAX_ELEMENTS, NS_EDOC, NS_QCVN,
};

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
