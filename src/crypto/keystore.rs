//! Keys the server itself signs with: each agency's seal key (applied at
//! issuance). `SealSigner` is the seam an HSM or KMS implements; the
//! development implementation reads PKCS#8 files named by
//! `keys-dev/manifest.json`.
//!
//! Must never: hand out private key bytes, or sign for an agency it holds
//! no key for. This is the one place in `crypto` that reads files.

use std::collections::BTreeMap;
use std::path::Path;

use ed25519_dalek::pkcs8::DecodePrivateKey;
use ed25519_dalek::{Signer, SigningKey};

use super::jws;
use super::pki;

/// Why a seal could not be made.
#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    #[error("no seal key for agency {0}")]
    NoSeal(String),
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    #[error("{0}: {1}")]
    Key(String, String),
    #[error("the signing device failed: {0}")]
    Device(String),
}

/// Something that signs with an agency's seal key (file, HSM, KMS).
pub trait SealSigner: Send + Sync {
    /// The seal certificate chain, DER, seal certificate first.
    fn chain(&self) -> &[Vec<u8>];
    /// Ed25519 signature over `message`.
    fn sign(&self, message: &[u8]) -> Result<[u8; 64], KeystoreError>;
}

/// Seal keys by agency code.
pub trait Keystore: Send + Sync {
    fn seal(&self, agency: &str) -> Result<&dyn SealSigner, KeystoreError>;
}

/// A private key and its certificate chain, loaded from files (a seal key, or an official's key in `vanthu sign`).
pub struct FileKey {
    key: SigningKey,
    chain: Vec<Vec<u8>>,
}

impl SealSigner for FileKey {
    fn chain(&self) -> &[Vec<u8>] {
        &self.chain
    }
    fn sign(&self, message: &[u8]) -> Result<[u8; 64], KeystoreError> {
        Ok(self.key.sign(message).to_bytes())
    }
}

fn read(path: &Path) -> Result<String, KeystoreError> {
    std::fs::read_to_string(path).map_err(|e| KeystoreError::Io(path.display().to_string(), e))
}

impl FileKey {
    /// Loads a PKCS#8 PEM key and PEM certificates (seal certificate first).
    pub fn load(key: &Path, certs: &[&Path]) -> Result<Self, KeystoreError> {
        let signing = SigningKey::from_pkcs8_pem(&read(key)?)
            .map_err(|e| KeystoreError::Key(key.display().to_string(), e.to_string()))?;
        let mut chain = Vec::new();
        for c in certs {
            let blocks = pki::pem_blocks(&read(c)?, "CERTIFICATE")
                .map_err(|e| KeystoreError::Key(c.display().to_string(), e.to_string()))?;
            chain.extend(blocks);
        }
        let first = chain.first().ok_or_else(|| {
            KeystoreError::Key(key.display().to_string(), "no certificate".into())
        })?;
        let info = pki::parse_certificate(first)
            .map_err(|e| KeystoreError::Key(key.display().to_string(), e.to_string()))?;
        if info.public_key != signing.verifying_key().to_bytes() {
            return Err(KeystoreError::Key(
                key.display().to_string(),
                "the key does not match the certificate".into(),
            ));
        }
        Ok(Self {
            key: signing,
            chain,
        })
    }
}

/// Seal keys read from files.
#[derive(Default)]
pub struct FileKeystore {
    seals: BTreeMap<String, FileKey>,
}

impl FileKeystore {
    /// Adds an agency's seal.
    pub fn insert(&mut self, agency: &str, seal: FileKey) {
        self.seals.insert(agency.to_owned(), seal);
    }
}

impl Keystore for FileKeystore {
    fn seal(&self, agency: &str) -> Result<&dyn SealSigner, KeystoreError> {
        self.seals
            .get(agency)
            .map(|s| s as &dyn SealSigner)
            .ok_or_else(|| KeystoreError::NoSeal(agency.to_owned()))
    }
}

/// Signs `payload` (canonical JSON) with a seal as a compact JWS.
pub fn seal_compact(
    signer: &dyn SealSigner,
    payload: &[u8],
    iat: i64,
) -> Result<String, KeystoreError> {
    let input = jws::signing_input(payload, signer.chain(), iat);
    let sig = signer.sign(input.as_bytes())?;
    Ok(jws::finish(input, &sig))
}
