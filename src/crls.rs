//! The revocation lists the service judges signatures with: the CRL file of
//! the keys directory, reloaded when it changes, and CRLs fetched from
//! configured URLs (the CAs' CRL distribution points) on a schedule. Each
//! refresh swaps in a new immutable snapshot; a signature is judged against
//! the snapshot current when it arrives. `/readyz` reports each issuer's
//! newest CRL and turns not-ready once one is past its nextUpdate (then
//! signatures by that issuer's certificates are INDETERMINATE/TRY_LATER).
//!
//! Must never: drop a CRL it has for one that does not parse or verify, or
//! block a request on a fetch (refreshes run in their own task).

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::crypto::pki::{self, ChainCache, Trust};

/// One set of trust anchors and CRLs, as of one refresh.
pub struct Snapshot {
    pub trust: Trust,
    /// The CRLs as PEM, for bundles (receivers check revocation offline).
    pub pems: Vec<String>,
}

/// What `/readyz` says about one CRL.
#[derive(Debug, Clone, Serialize)]
pub struct CrlStatus {
    pub issuer: String,
    pub source: String,
    pub this_update: DateTime<Utc>,
    pub next_update: Option<DateTime<Utc>>,
}

/// The CRL sources and the current snapshot.
pub struct CrlStore {
    anchors: Vec<Vec<u8>>,
    file: PathBuf,
    urls: Vec<String>,
    current: RwLock<Arc<Snapshot>>,
    status: RwLock<Vec<CrlStatus>>,
    /// The CRL file's modification time at the last load.
    file_mtime: RwLock<Option<SystemTime>>,
    /// CRLs last fetched from each URL (kept when a later fetch fails).
    fetched: RwLock<Vec<(String, String)>>,
    /// Valid paths to `anchors`, kept across refreshes.
    chains: Arc<ChainCache>,
}

/// Why CRLs could not be loaded at start.
#[derive(Debug, thiserror::Error)]
pub enum CrlError {
    #[error("{0}: {1}")]
    Read(String, String),
}

impl CrlStore {
    /// Loads the CRL file (it must be readable and hold PEM CRLs).
    pub fn open(anchors: Vec<Vec<u8>>, file: PathBuf, urls: Vec<String>) -> Result<Self, CrlError> {
        let store = Self {
            anchors,
            file,
            urls,
            current: RwLock::new(Arc::new(Snapshot {
                trust: Trust::default(),
                pems: Vec::new(),
            })),
            status: RwLock::new(Vec::new()),
            file_mtime: RwLock::new(None),
            fetched: RwLock::new(Vec::new()),
            chains: Default::default(),
        };
        let pem = store.read_file()?;
        store.install(&pem);
        Ok(store)
    }

    /// The trust anchors and CRLs to judge a signature with now.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Each CRL's issuer and validity.
    pub fn status(&self) -> Vec<CrlStatus> {
        self.status
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Issuers whose newest CRL is past its nextUpdate at `now` (or has none).
    pub fn expired(&self, now: DateTime<Utc>) -> Vec<String> {
        let status = self.status();
        let mut issuers: Vec<&str> = status.iter().map(|s| s.issuer.as_str()).collect();
        issuers.sort();
        issuers.dedup();
        issuers
            .into_iter()
            .filter(|issuer| {
                !status
                    .iter()
                    .any(|s| s.issuer == *issuer && s.next_update.is_some_and(|n| n >= now))
            })
            .map(str::to_owned)
            .collect()
    }

    fn read_file(&self) -> Result<String, CrlError> {
        let name = self.file.display().to_string();
        let mtime = std::fs::metadata(&self.file)
            .and_then(|m| m.modified())
            .ok();
        let pem = std::fs::read_to_string(&self.file)
            .map_err(|e| CrlError::Read(name.clone(), e.to_string()))?;
        pki::pem_blocks(&pem, "X509 CRL").map_err(|e| CrlError::Read(name, e.to_string()))?;
        *self.file_mtime.write().unwrap_or_else(|e| e.into_inner()) = mtime;
        Ok(pem)
    }

    /// Builds a snapshot from the file's PEM and the fetched CRLs.
    fn install(&self, file_pem: &str) {
        let fetched = self
            .fetched
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut pems = vec![file_pem.to_owned()];
        pems.extend(fetched.iter().map(|(_, pem)| pem.clone()));
        let mut crls = Vec::new();
        let mut status = Vec::new();
        let sources =
            std::iter::once((self.file.display().to_string(), file_pem.to_owned())).chain(fetched);
        for (source, pem) in sources {
            for der in pki::pem_blocks(&pem, "X509 CRL").unwrap_or_default() {
                let crl = pki::Crl::new(der);
                if let Some(facts) = crl.facts() {
                    status.push(CrlStatus {
                        issuer: facts.issuer,
                        source: source.clone(),
                        this_update: facts.this_update,
                        next_update: facts.next_update,
                    });
                }
                crls.push(Arc::new(crl));
            }
        }
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(Snapshot {
            trust: Trust {
                anchors: self.anchors.clone(),
                crls,
                // The anchors never change, so neither do the valid paths.
                chains: self.chains.clone(),
            },
            pems,
        });
        *self.status.write().unwrap_or_else(|e| e.into_inner()) = status;
    }

    /// One refresh: reload the file if it changed, fetch every URL. Failures
    /// keep what was there and are logged.
    pub async fn refresh(&self, http: &reqwest::Client) {
        let mut changed = false;
        let mtime = std::fs::metadata(&self.file)
            .and_then(|m| m.modified())
            .ok();
        if mtime != *self.file_mtime.read().unwrap_or_else(|e| e.into_inner()) {
            changed = true;
        }
        for url in &self.urls {
            match fetch(http, url).await {
                Ok(pem) => {
                    let mut fetched = self.fetched.write().unwrap_or_else(|e| e.into_inner());
                    fetched.retain(|(u, _)| u != url);
                    fetched.push((url.clone(), pem));
                    changed = true;
                }
                Err(e) => {
                    tracing::warn!(url = %url, error = %e, "CRL fetch failed; keeping the last one")
                }
            }
        }
        if !changed {
            return;
        }
        match self.read_file() {
            Ok(pem) => {
                self.install(&pem);
                tracing::info!(file = %self.file.display(), "CRLs reloaded");
            }
            Err(e) => {
                tracing::warn!(error = %e, "the CRL file does not load; keeping the last one")
            }
        }
    }
}

/// A CRL from a URL, DER or PEM, as PEM.
async fn fetch(http: &reqwest::Client, url: &str) -> Result<String, String> {
    let r = http.get(url).send().await.map_err(|e| e.to_string())?;
    if !r.status().is_success() {
        return Err(format!("HTTP {}", r.status()));
    }
    let bytes = r.bytes().await.map_err(|e| e.to_string())?;
    let pem = match std::str::from_utf8(&bytes) {
        Ok(text) if text.contains("-----BEGIN X509 CRL-----") => text.to_owned(),
        _ => pem::encode(&pem::Pem::new("X509 CRL", bytes.to_vec())),
    };
    let blocks = pki::pem_blocks(&pem, "X509 CRL").map_err(|e| e.to_string())?;
    if blocks.is_empty() || blocks.iter().any(|der| pki::crl_facts(der).is_none()) {
        return Err("not a CRL".into());
    }
    Ok(pem)
}
