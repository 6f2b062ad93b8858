//! Interchange with other agencies' systems over the national document
//! axis (Decision 28/2018/QĐ-TTg): edXML packages per QCVN 102:2016
//! (`edxml`), sent to and taken from configured peers (`Peers`): another
//! vanthu, or an adapter to the provincial or national axis.
//!
//! The transport is the outbox's (`crate::outbox`): a package or a status
//! message is a delivery to `peer:{id}`, posted to the peer's URL with the
//! Standard Webhooks headers signed by the secret both sides hold, and
//! `Vanthu-Peer` naming this system. A peer's inbound requests carry the
//! same and are checked against the same secret.
//!
//! Must never: send a confidential document, accept a package it cannot
//! read whole, or take a package from a peer for an organisation that peer
//! does not speak for.

pub mod edxml;
mod settings;
pub mod spool;

pub use settings::{PeerSettings, Settings};

use std::collections::BTreeMap;

use crate::webhooks::WebhookSecret;

/// The header naming the sending system.
pub const PEER_HEADER: &str = "vanthu-peer";

/// The prefix of an outbox subscriber that is a peer: `peer:{id}`.
pub const PEER_PREFIX: &str = "peer:";

/// One configured peer.
pub struct Peer {
    pub id: String,
    pub url: String,
    pub secret: WebhookSecret,
    /// Its log's verifier key: when known, its packages' checkpoints must
    /// carry that key's signature.
    pub log_key: Option<String>,
    /// Bodies under its name being read before they are known to be its
    /// (D1): at most [`UNAUTHENTICATED_PER_PEER`] at once.
    unauthenticated: std::sync::Arc<tokio::sync::Semaphore>,
}

/// How many bodies claiming one peer are read at once before their
/// signature is checked. Its name is public (it travels in every outgoing
/// request), so this bounds what a stranger using it can make the server
/// read; the peer's own outbox sends one message at a time per document.
pub const UNAUTHENTICATED_PER_PEER: usize = 2;

/// How long a body waits for its turn before 503 (with `Retry-After`).
pub const ADMISSION_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

impl Peer {
    /// A turn to read a body under this peer's name, waiting at most
    /// [`ADMISSION_WAIT`]; `None` when others hold every turn.
    pub async fn admit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let turn = std::sync::Arc::clone(&self.unauthenticated).acquire_owned();
        tokio::time::timeout(ADMISSION_WAIT, turn).await.ok()?.ok()
    }
}

/// The configured peers, and this system's name at them.
#[derive(Default)]
pub struct Peers {
    pub system: Option<String>,
    /// Largest package accepted, bytes.
    pub max_package_bytes: usize,
    peers: BTreeMap<String, Peer>,
}

impl Peers {
    /// From the configuration, reading each peer's secret file.
    pub fn load(config: &Settings) -> Result<Self, String> {
        let mut peers = BTreeMap::new();
        for p in &config.peers {
            let text = std::fs::read_to_string(&p.key_file)
                .map_err(|e| format!("interchange peer {}: {}: {e}", p.id, p.key_file.display()))?;
            let secret = WebhookSecret::parse(text.trim()).map_err(|e| {
                format!(
                    "interchange peer {}: {}: {e} (a whsec_ secret: `whsec_` and the base64 of 24 to 64 random bytes)",
                    p.id,
                    p.key_file.display()
                )
            })?;
            url::Url::parse(&p.url)
                .map_err(|e| format!("interchange peer {}: url {:?}: {e}", p.id, p.url))?;
            let log_key = match &p.log_key_file {
                None => None,
                Some(path) => {
                    let text = std::fs::read_to_string(path).map_err(|e| {
                        format!("interchange peer {}: {}: {e}", p.id, path.display())
                    })?;
                    let vkey = text.trim().to_owned();
                    crate::crypto::note::verifier_name(&vkey).map_err(|e| {
                        format!("interchange peer {}: {}: {e}", p.id, path.display())
                    })?;
                    Some(vkey)
                }
            };
            if peers
                .insert(
                    p.id.clone(),
                    Peer {
                        id: p.id.clone(),
                        url: p.url.clone(),
                        secret,
                        log_key,
                        unauthenticated: std::sync::Arc::new(tokio::sync::Semaphore::new(
                            UNAUTHENTICATED_PER_PEER,
                        )),
                    },
                )
                .is_some()
            {
                return Err(format!("interchange peer {} is configured twice", p.id));
            }
        }
        if !peers.is_empty() && config.system.is_none() {
            return Err(
                "interchange.system is needed with interchange.peers: peers know this system by it"
                    .into(),
            );
        }
        Ok(Self {
            system: config.system.clone(),
            max_package_bytes: config.max_package_bytes,
            peers,
        })
    }

    pub fn get(&self, id: &str) -> Option<&Peer> {
        self.peers.get(id)
    }
}

/// Where the interchange's messages go: the seam between the outbox and
/// whatever carries packages. [`HttpAxis`] posts them to a configured peer
/// (another vanthu, or an adapter to the provincial or national axis); a
/// client of the national axis's own API would be another implementation
/// (docs/INTERCHANGE.md).
pub trait Axis: Send + Sync {
    /// Sends message `id` (an edXML package or status message) to `peer`.
    fn send<'a>(
        &'a self,
        peer: &'a str,
        id: &'a str,
        body: Vec<u8>,
    ) -> futures_util::future::BoxFuture<'a, crate::webhooks::Sent>;
}

/// The axis as HTTP to each peer's URL: `Content-Type: application/xml`,
/// `Vanthu-Peer` naming this system, the Standard Webhooks headers signed
/// with the secret both sides hold.
pub struct HttpAxis {
    pub http: reqwest::Client,
    pub peers: std::sync::Arc<Peers>,
    pub timeout: std::time::Duration,
    /// Unix seconds of this machine's clock (never a development clock:
    /// the peer checks it against its own).
    pub now: Box<dyn Fn() -> i64 + Send + Sync>,
}

impl Axis for HttpAxis {
    fn send<'a>(
        &'a self,
        peer: &'a str,
        id: &'a str,
        body: Vec<u8>,
    ) -> futures_util::future::BoxFuture<'a, crate::webhooks::Sent> {
        Box::pin(async move {
            let (Some(p), Some(system)) = (self.peers.get(peer), &self.peers.system) else {
                return crate::webhooks::Sent {
                    status: None,
                    error: Some(format!(
                        "no interchange peer {peer} is configured (interchange.peers, interchange.system)"
                    )),
                    retry_after: None,
                };
            };
            let message = crate::webhooks::Message {
                url: &p.url,
                id,
                timestamp: (self.now)(),
                secrets: std::slice::from_ref(&p.secret),
                content_type: "application/xml; charset=utf-8",
                headers: vec![(PEER_HEADER, system.clone())],
                body,
            };
            crate::webhooks::post(&self.http, message, self.timeout).await
        })
    }
}

/// The stream an arrived package is recorded in.
pub const ARRIVAL_PREFIX: &str = "arrival-";
/// Its event type.
pub const ARRIVED: &str = "interchange.arrived.v1";

/// A package that arrived from a peer, as recorded (stream
/// `arrival-{id}`, one event): it waits for a recipient's clerk (status
/// 01, Đã đến).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Arrived {
    /// Derived from the peer and the package's DocumentId: a package that
    /// arrives twice is one arrival.
    pub id: uuid::Uuid,
    pub peer: String,
    /// The sender's message id (`webhook-id`).
    pub message_id: String,
    /// The sending agency, by this system's code for it.
    pub from_agency: String,
    /// This system's agencies it is addressed to.
    pub to: Vec<String>,
    pub header: edxml::MessageHeader,
    /// The files, stored by SHA-256.
    pub files: Vec<crate::domain::signing::ContentRef>,
    /// The evidence bundle, stored by SHA-256.
    pub evidence: String,
    /// What the offline verification of the evidence found.
    pub verdict: ArrivalVerdict,
    pub at: chrono::DateTime<chrono::Utc>,
    /// Each agency of `to`'s reply deadline as the sealed evidence (the
    /// issuing record) states it; `None` in arrivals recorded before it was
    /// kept, whose deadline is the header's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_due: Option<BTreeMap<String, Option<chrono::NaiveDate>>>,
    /// Where the header disagreed with the sealed evidence ("field: why"),
    /// taken as the evidence says (only when the peer's log key is not
    /// configured; with it such a package is refused).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unsealed: Vec<String>,
}

/// The verification of an arrived package's evidence, in short.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ArrivalVerdict {
    pub passed: bool,
    /// The official who signed and the form (`TM.`, `KT.`…).
    pub signer: String,
    pub authority: String,
    /// The sealing agency's code in the sender's system.
    pub seal_agency: String,
    pub problems: Vec<String>,
}

/// The arrival id of package `document_id` from `peer`.
pub fn arrival_id(peer: &str, document_id: &str) -> uuid::Uuid {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("vanthu:arrival\n{peer}\n{document_id}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

impl Arrived {
    /// What a status message about this arrival answers: the sender's
    /// document, as its header names it.
    pub fn response_for(&self) -> edxml::ResponseFor {
        let h = &self.header;
        edxml::ResponseFor {
            organ_id: h.from.organ_id.clone(),
            code: format!("{}/{}", h.code.code_number, h.code.code_notation),
            promulgation_date: h.promulgation_info.promulgation_date.clone(),
            document_id: h.document_id.clone(),
        }
    }
}

/// The status message this system sends about the document
/// `response_for` names (an arrival's, or one of this system's) from
/// `agency` (identified as `organ_id`): `code` at `at`.
pub fn status_for(
    response_for: edxml::ResponseFor,
    organ_id: &str,
    organ_name: &str,
    code: crate::domain::interchange::StatusCode,
    description: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> edxml::MessageStatus {
    edxml::MessageStatus {
        response_for,
        from: edxml::Organ {
            organ_id: organ_id.into(),
            organ_name: organ_name.into(),
            ..Default::default()
        },
        status_code: code.code().into(),
        description: description.into(),
        timestamp: edxml::write_timestamp(at),
        staff_info: None,
    }
}
