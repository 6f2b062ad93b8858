//! Signatures and certificates: compact JWS with Ed25519, canonical JSON,
//! X.509 chain and revocation checks, the verification report in
//! ETSI EN 319 102-1 words, the RFC 6962 Merkle tree (`merkle`) and its
//! signed checkpoints (`note`).
//!
//! Must never: do I/O beyond what a caller hands in (bytes in, verdicts
//! out; `keystore` and `note` alone read key files), or decide *authority*; that is
//! `domain::authority`'s job.

pub mod jws;
pub mod keystore;
pub mod merkle;
pub mod note;
pub mod pki;
pub mod verify;
