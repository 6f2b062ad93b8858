//! The interchange's settings: this system's name at its peers, the
//! package limit, and the peers (the `[interchange]` section of the
//! settings file is this type; `crate::config` embeds it).
//!
//! Must never: read a file or the environment (`Peers::load` reads the
//! secrets these name).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Interchange with other agencies' systems: edXML packages (QCVN
/// 102:2016) and status messages, to and from peers (docs/INTERCHANGE.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// This system's name at its peers: sent with every package
    /// (`Vanthu-Peer`), and what a peer's configuration calls it.
    pub system: Option<String>,
    /// Largest package accepted, bytes (attachments are base64 inside).
    pub max_package_bytes: usize,
    /// The systems packages go to and come from.
    pub peers: Vec<PeerSettings>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            system: None,
            max_package_bytes: 32 << 20,
            peers: Vec::new(),
        }
    }
}

/// One interchange peer: another vanthu, or an adapter to the axis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerSettings {
    /// The name external agencies' registrations give (`peer`), and the
    /// name the peer sends as its `Vanthu-Peer`.
    pub id: String,
    /// Where packages and status messages are posted.
    pub url: String,
    /// A file holding the `whsec_` secret both sides sign with.
    pub key_file: PathBuf,
    /// A file holding the peer's log verifier key (C2SP signed-note
    /// `name+id+key`, as its `GET /v1/log/key` answers). When given, a package's
    /// log evidence must rest on a checkpoint that key signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_key_file: Option<PathBuf>,
}
