//! Writing edXML: a package or a status message as XML in the QCVN 102
//! namespace, by serde over quick-xml.
//!
//! Must never: paste strings into XML; every value goes through the
//! serialiser, which escapes it.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Serialize;

use super::{MessageHeader, MessageStatus, Package, TraceHeaderList, NS_QCVN};

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
