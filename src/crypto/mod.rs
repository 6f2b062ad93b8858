//! Signatures and certificates: compact JWS with Ed25519, canonical JSON,
//! X.509 chain and revocation checks, and the verification report in
//! ETSI EN 319 102-1 words.
//!
//! Must never: do I/O beyond what a caller hands in (bytes in, verdicts
//! out; `keystore` alone reads key files), or decide *authority*; that is
//! `domain::authority`'s job.

pub mod jws;
pub mod keystore;
pub mod pki;
pub mod verify;
