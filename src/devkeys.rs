//! What the service knows of the development keys: the demo organisation
//! (`keys-dev/org.toml`, recorded at a development start), the manifest of
//! a keys directory, and the public keys of the committed set, compiled in
//! so that a production start refuses them wherever they were copied.
//! Generating keys is `vanthu-dev dev-keys`'s (the `dev/` crate).
//!
//! Must never: hold or derive a private key (the service has no use for
//! development secrets), or be the only thing between production and the
//! development keys (the configuration's `dev` flag gates them too).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::org::{OrgEvent, Position};

/// `keys-dev/org.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoOrg {
    pub appointed_from: DateTime<Utc>,
    pub admins: Vec<String>,
    /// Officials with the auditor role (they read the log's raw entries).
    #[serde(default)]
    pub auditors: Vec<String>,
    /// The official the special (expired, wrong-EKU, revoked, untrusted)
    /// certificates are issued to.
    pub test_signer: String,
    pub agencies: Vec<DemoAgency>,
    /// Integration clients (id, name, scopes).
    #[serde(default)]
    pub clients: Vec<DemoClient>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoClient {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoAgency {
    pub code: String,
    pub name: String,
    #[serde(default)]
    pub collegial: bool,
    pub units: Vec<DemoUnit>,
    pub officials: Vec<DemoOfficial>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoUnit {
    pub code: String,
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoOfficial {
    pub id: String,
    pub name: String,
    pub position: Position,
    pub title: String,
    #[serde(default)]
    pub unit: Option<String>,
}

/// Why the demo organisation or the keys could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum DevKeysError {
    #[error("{0}: {1}")]
    Io(PathBuf, #[source] std::io::Error),
    #[error("{0}: {1}")]
    Toml(PathBuf, #[source] toml::de::Error),
    #[error("key encoding: {0}")]
    Key(String),
    #[error("{0}")]
    Manifest(String),
}

impl DemoOrg {
    /// Reads `org.toml`.
    pub fn load(path: &Path) -> Result<Self, DevKeysError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| DevKeysError::Io(path.to_owned(), e))?;
        toml::from_str(&text).map_err(|e| DevKeysError::Toml(path.to_owned(), e))
    }

    /// Every official with their agency.
    pub fn officials(&self) -> impl Iterator<Item = (&DemoAgency, &DemoOfficial)> {
        self.agencies
            .iter()
            .flat_map(|a| a.officials.iter().map(move |o| (a, o)))
    }

    /// The organisation as events: agencies, units, appointments, and the
    /// binding of each official's certificate (fingerprints from `manifest`).
    pub fn org_events(&self, manifest: &Manifest) -> Result<Vec<OrgEvent>, DevKeysError> {
        let at = self.appointed_from;
        let mut events = Vec::new();
        for a in &self.agencies {
            events.push(OrgEvent::AgencyCreated {
                code: a.code.clone(),
                name: a.name.clone(),
                parent: (a.code != "UBND").then(|| "UBND".to_owned()),
                collegial: a.collegial,
            });
            for u in &a.units {
                events.push(OrgEvent::UnitCreated {
                    agency: a.code.clone(),
                    code: u.code.clone(),
                    name: u.name.clone(),
                });
            }
        }
        for admin in &self.admins {
            events.push(OrgEvent::AdminGranted {
                official: admin.clone(),
                at,
            });
        }
        for auditor in &self.auditors {
            events.push(OrgEvent::AuditorGranted {
                official: auditor.clone(),
                at,
            });
        }
        for (a, o) in self.officials() {
            events.push(OrgEvent::OfficialAppointed {
                official: o.id.clone(),
                name: o.name.clone(),
                agency: a.code.clone(),
                unit: o.unit.clone(),
                position: o.position,
                title: Some(o.title.clone()),
                from: at,
            });
            let cert = manifest.officials.get(&o.id).ok_or_else(|| {
                DevKeysError::Manifest(format!("no certificate for {} in the manifest", o.id))
            })?;
            events.push(OrgEvent::CertificateBound {
                official: o.id.clone(),
                fingerprint: cert.fingerprint.clone(),
                serial: cert.serial.clone(),
                issuer: cert.issuer.clone(),
                at,
            });
        }
        for c in &self.clients {
            events.push(OrgEvent::ClientRegistered {
                id: c.id.clone(),
                name: c.name.clone(),
                scopes: c.scopes.clone(),
                at,
            });
        }
        Ok(events)
    }
}

/// Index of what `dev-keys` wrote (`keys-dev/manifest.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub note: String,
    pub root: String,
    pub issuing_ca: String,
    pub crl: String,
    pub jwt_key: String,
    pub jwt_public_key: String,
    /// The transparency log's checkpoint key (PKCS#8) and its note verifier
    /// key for the development origin.
    #[serde(default)]
    pub log_key: String,
    #[serde(default)]
    pub log_verifier_key: String,
    pub officials: BTreeMap<String, CertEntry>,
    pub seals: BTreeMap<String, CertEntry>,
    /// The TLS server certificate for localhost (`tls/server.pem`: the
    /// certificate then the issuing CA; `tls/server.key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_server: Option<CertEntry>,
    /// `expired`, `wrong-eku`, `revoked`, `untrusted` (all issued to `official`).
    pub special: BTreeMap<String, CertEntry>,
    pub untrusted_root: String,
    pub revoked_at: String,
    /// The instant every validity period was derived from (RFC 3339).
    #[serde(default)]
    pub anchor: String,
    /// SHA-256 (hex) of every development public key, by derivation label:
    /// what `vanthu serve` outside development mode refuses to trust.
    #[serde(default)]
    pub public_keys: BTreeMap<String, String>,
}

/// One certificate and its key, relative to the keys directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertEntry {
    pub cert: String,
    pub key: String,
    pub fingerprint: String,
    pub serial: String,
    pub issuer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub official: Option<String>,
}

impl Manifest {
    /// Reads `manifest.json` from a keys directory.
    pub fn load(dir: &Path) -> Result<Self, DevKeysError> {
        let path = dir.join("manifest.json");
        let text = std::fs::read_to_string(&path).map_err(|e| DevKeysError::Io(path.clone(), e))?;
        serde_json::from_str(&text)
            .map_err(|e| DevKeysError::Manifest(format!("{}: {e}", path.display())))
    }
}

/// SHA-256 (hex) of a raw Ed25519 public key: how development keys are
/// recognised whatever certificate carries them.
pub fn public_key_fingerprint(public: &[u8; 32]) -> String {
    hex::encode(Sha256::digest(public))
}

/// The committed development manifest, compiled in so that a production
/// start can recognise development keys wherever they were copied.
const COMMITTED_MANIFEST: &str = include_str!("../keys-dev/manifest.json");

/// Whether `public` is one of the development keys (whose private halves are
/// public). Derived keys are checked too, so a regenerated set is caught.
pub fn is_development_key(public: &[u8; 32]) -> bool {
    let fp = public_key_fingerprint(public);
    serde_json::from_str::<Manifest>(COMMITTED_MANIFEST)
        .map(|m| m.public_keys.values().any(|k| *k == fp))
        .unwrap_or(false)
}
