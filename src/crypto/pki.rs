//! X.509 for Ed25519 signers: certificate facts, chain validation to the
//! configured trust anchors at a given instant (rustls-webpki, with the
//! RFC 9336 document-signing EKU), and revocation from CRLs judged against
//! that instant (a certificate revoked *after* it still passes).
//!
//! Must never: read the clock (the instant is always passed in), or let
//! webpki decide revocation: it treats any listed serial as revoked whatever
//! the revocation date, which is wrong for signatures made before it.

use chrono::{DateTime, TimeZone, Utc};
use rustls_pki_types::{CertificateDer, UnixTime};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use x509_parser::prelude::*;

/// RFC 9336 `id-kp-documentSigning`.
pub const DOCUMENT_SIGNING_EKU: &str = "1.3.6.1.5.5.7.3.36";
/// Marks a certificate issued to an agency for its seal (organisation
/// signature), as opposed to a person. This OID sits under the RFC 5612
/// documentation arc: a deployment replaces it with its CA's policy OID for
/// organisation certificates.
pub const AGENCY_SEAL_EKU: &str = "1.3.6.1.4.1.32473.1.1";
/// The same OID as DER content octets, for webpki.
const DOCUMENT_SIGNING_EKU_DER: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x24];
/// OID of Ed25519 keys and signatures (RFC 8410).
const ED25519_OID: &str = "1.3.101.112";

/// Why certificate material could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PkiError {
    #[error("not a DER X.509 certificate: {0}")]
    Certificate(String),
    #[error("the certificate's key is not Ed25519 (OID {0})")]
    NotEd25519(String),
    #[error("not a DER X.509 CRL: {0}")]
    Crl(String),
    #[error("no PEM block of type {0} found")]
    Pem(&'static str),
}

/// What a verifier needs to know about a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    /// Serial number, lower-case hex.
    pub serial: String,
    /// SHA-256 of the DER, lower-case hex: the id officials' certificates are bound by.
    pub fingerprint: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    #[serde(skip)]
    pub public_key: [u8; 32],
    /// Whether the EKU extension lists id-kp-documentSigning.
    pub document_signing: bool,
    /// Whether the EKU extension marks an agency seal ([`AGENCY_SEAL_EKU`]).
    pub agency_seal: bool,
    /// The subject's common name, if any.
    pub common_name: Option<String>,
}

/// SHA-256 of DER bytes, lower-case hex.
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

fn to_utc(t: ASN1Time) -> DateTime<Utc> {
    Utc.timestamp_opt(t.timestamp(), 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Parses an Ed25519 certificate.
pub fn parse_certificate(der: &[u8]) -> Result<CertInfo, PkiError> {
    let (rest, cert) =
        X509Certificate::from_der(der).map_err(|e| PkiError::Certificate(e.to_string()))?;
    if !rest.is_empty() {
        return Err(PkiError::Certificate(format!(
            "{} trailing bytes",
            rest.len()
        )));
    }
    let spki = cert.public_key();
    let alg = spki.algorithm.algorithm.to_id_string();
    if alg != ED25519_OID {
        return Err(PkiError::NotEd25519(alg));
    }
    let public_key: [u8; 32] = spki
        .subject_public_key
        .data
        .as_ref()
        .try_into()
        .map_err(|_| PkiError::Certificate("an Ed25519 key is 32 bytes".into()))?;
    let has_eku = |wanted: &str| match cert.extended_key_usage() {
        Ok(Some(eku)) => eku
            .value
            .other
            .iter()
            .any(|oid| oid.to_id_string() == wanted),
        _ => false,
    };
    let common_name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned);
    Ok(CertInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        serial: hex::encode(cert.raw_serial()),
        fingerprint: fingerprint(der),
        not_before: to_utc(cert.validity().not_before),
        not_after: to_utc(cert.validity().not_after),
        public_key,
        document_signing: has_eku(DOCUMENT_SIGNING_EKU),
        agency_seal: has_eku(AGENCY_SEAL_EKU),
        common_name,
    })
}

/// DER blocks of the given PEM type (`CERTIFICATE`, `X509 CRL`) in `text`.
pub fn pem_blocks(text: &str, label: &'static str) -> Result<Vec<Vec<u8>>, PkiError> {
    let blocks: Vec<Vec<u8>> = ::pem::parse_many(text)
        .map_err(|_| PkiError::Pem(label))?
        .into_iter()
        .filter(|p| p.tag() == label)
        .map(|p| p.into_contents())
        .collect();
    if blocks.is_empty() {
        return Err(PkiError::Pem(label));
    }
    Ok(blocks)
}

/// Trust anchors and the revocation lists in force.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// Root certificates (DER).
    pub anchors: Vec<Vec<u8>>,
    /// CRLs of the CAs under those roots, each parsed once.
    pub crls: Vec<std::sync::Arc<Crl>>,
    /// Chains already validated to these anchors. Shared by every `Trust`
    /// with the same anchors (a CRL refresh keeps it: a path's validity does
    /// not depend on revocation, which is judged separately).
    pub chains: std::sync::Arc<ChainCache>,
}

impl Trust {
    /// Anchors and CRLs with an empty chain cache.
    pub fn new(anchors: Vec<Vec<u8>>, crls: Vec<std::sync::Arc<Crl>>) -> Self {
        Self {
            anchors,
            crls,
            chains: Default::default(),
        }
    }

    /// [`verify_chain`] to these anchors, remembering valid paths: a chain
    /// found valid is valid again at any instant at which every certificate
    /// presented is within its validity period (webpki's path building
    /// depends on the instant only through those periods), so such an
    /// instant is answered from the cache, any other is validated afresh.
    /// Only `Valid` verdicts are remembered.
    pub fn verify_chain(&self, chain: &[Vec<u8>], at: DateTime<Utc>) -> ChainVerdict {
        let key = chain_key(chain);
        if let Some(issuer) = self.chains.valid_at(&key, at) {
            return ChainVerdict::Valid { issuer };
        }
        let verdict = verify_chain(chain, &self.anchors, at);
        if let ChainVerdict::Valid { issuer } = &verdict {
            if let Some(window) = common_validity(chain) {
                self.chains.remember(key, issuer.clone(), window);
            }
        }
        verdict
    }
}

/// Valid paths by the SHA-256 of the chain presented, each with the window
/// of instants it is known valid at. Bounded: when full it starts over.
#[derive(Debug, Default)]
pub struct ChainCache {
    paths: std::sync::Mutex<std::collections::HashMap<[u8; 32], CachedPath>>,
    hits: std::sync::atomic::AtomicU64,
}

#[derive(Debug)]
struct CachedPath {
    issuer: Vec<u8>,
    window: (DateTime<Utc>, DateTime<Utc>),
}

impl ChainCache {
    /// At most this many chains are remembered (a province's officials'
    /// certificates fit many times over).
    pub const CAPACITY: usize = 16_384;

    fn valid_at(&self, key: &[u8; 32], at: DateTime<Utc>) -> Option<Vec<u8>> {
        let paths = self.paths.lock().unwrap_or_else(|e| e.into_inner());
        let path = paths.get(key)?;
        let (from, until) = path.window;
        if from <= at && at <= until {
            self.hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Some(path.issuer.clone())
        } else {
            None
        }
    }

    fn remember(&self, key: [u8; 32], issuer: Vec<u8>, window: (DateTime<Utc>, DateTime<Utc>)) {
        let mut paths = self.paths.lock().unwrap_or_else(|e| e.into_inner());
        if paths.len() >= Self::CAPACITY {
            paths.clear();
        }
        paths.insert(key, CachedPath { issuer, window });
    }

    /// How many verdicts were answered from the cache.
    pub fn hits(&self) -> u64 {
        self.hits.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// SHA-256 over the chain, each certificate prefixed by its length.
fn chain_key(chain: &[Vec<u8>]) -> [u8; 32] {
    let mut h = Sha256::new();
    for der in chain {
        h.update((der.len() as u64).to_be_bytes());
        h.update(der);
    }
    h.finalize().into()
}

/// The instants at which every certificate of `chain` is within its
/// validity period (latest notBefore, earliest notAfter), if any.
fn common_validity(chain: &[Vec<u8>]) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let mut from = DateTime::<Utc>::MIN_UTC;
    let mut until = DateTime::<Utc>::MAX_UTC;
    for der in chain {
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        from = from.max(to_utc(cert.validity().not_before));
        until = until.min(to_utc(cert.validity().not_after));
    }
    (from <= until).then_some((from, until))
}

/// A CRL parsed once when it is loaded; revocation checks read these facts
/// and verify its signature once per issuer key (then remember the answer).
#[derive(Debug)]
pub struct Crl {
    der: Vec<u8>,
    parsed: Option<ParsedCrl>,
    /// Issuer public keys (SPKI DER) this CRL's signature was checked
    /// against, with the outcome.
    checked: std::sync::Mutex<Vec<(Vec<u8>, bool)>>,
}

#[derive(Debug)]
struct ParsedCrl {
    /// The issuer's name, DER, as it appears in certificates it issued.
    issuer: Vec<u8>,
    issuer_name: String,
    this_update: DateTime<Utc>,
    next_update: Option<DateTime<Utc>>,
    /// `Err` when the list may not be used as complete (see `complete_crl`).
    complete: Result<(), String>,
    /// Revoked serials (raw DER integer content) with the revocation date.
    revoked: std::collections::HashMap<Vec<u8>, DateTime<Utc>>,
}

impl Crl {
    /// Parses a DER CRL (one that does not parse is kept, and reported as
    /// such by every revocation check that could have used it).
    pub fn new(der: Vec<u8>) -> Self {
        let parsed = CertificateRevocationList::from_der(&der)
            .ok()
            .map(|(_, crl)| ParsedCrl {
                issuer: crl.issuer().as_raw().to_vec(),
                issuer_name: crl.issuer().to_string(),
                this_update: to_utc(crl.last_update()),
                next_update: crl.next_update().map(to_utc),
                complete: complete_crl(&crl),
                revoked: crl
                    .iter_revoked_certificates()
                    .map(|r| (r.raw_serial().to_vec(), to_utc(r.revocation_date)))
                    .collect(),
            });
        Self {
            der,
            parsed,
            checked: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The CRL as DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// Its issuer and validity, if it parses.
    pub fn facts(&self) -> Option<CrlFacts> {
        self.parsed.as_ref().map(|p| CrlFacts {
            issuer: p.issuer_name.clone(),
            this_update: p.this_update,
            next_update: p.next_update,
        })
    }

    /// Whether `issuer` signed this CRL; checked once per issuer key.
    fn signed_by(&self, issuer: &X509Certificate<'_>) -> bool {
        let key = issuer.public_key().raw;
        let mut checked = self.checked.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, ok)) = checked.iter().find(|(k, _)| k == key) {
            return *ok;
        }
        let ok = CertificateRevocationList::from_der(&self.der)
            .is_ok_and(|(_, crl)| crl.verify_signature(issuer.public_key()).is_ok());
        checked.push((key.to_vec(), ok));
        ok
    }

    /// How many issuer keys this CRL's signature has been checked against.
    pub fn signature_checks(&self) -> usize {
        self.checked.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// Parses each DER CRL once, for a [`Trust`].
pub fn parse_crls(ders: Vec<Vec<u8>>) -> Vec<std::sync::Arc<Crl>> {
    ders.into_iter()
        .map(|der| std::sync::Arc::new(Crl::new(der)))
        .collect()
}

/// Outcome of chain validation at an instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainVerdict {
    /// A path exists; `issuer` is the DER of the certificate (from that
    /// verified path, or a trust anchor) that issued the signer's.
    Valid { issuer: Vec<u8> },
    /// No path to a trust anchor.
    Untrusted(String),
    /// The signer's certificate had expired at the instant.
    Expired,
    /// The signer's certificate was not yet valid at the instant.
    NotYetValid,
    /// The certificate is not for document signing.
    WrongUsage(String),
    /// Anything else wrong with the path (a CA expired, a bad extension, …).
    Invalid(String),
}

/// Validates `chain` (signer first, then intermediates) to one of
/// `anchors` at instant `at`, requiring the document-signing EKU.
pub fn verify_chain(chain: &[Vec<u8>], anchors: &[Vec<u8>], at: DateTime<Utc>) -> ChainVerdict {
    let Some((ee, intermediates)) = chain.split_first() else {
        return ChainVerdict::Untrusted("no certificate".into());
    };
    let anchor_ders: Vec<CertificateDer<'_>> = anchors
        .iter()
        .map(|a| CertificateDer::from(a.as_slice()))
        .collect();
    let mut trust_anchors = Vec::new();
    for a in &anchor_ders {
        match webpki::anchor_from_trusted_cert(a) {
            Ok(t) => trust_anchors.push(t),
            Err(e) => return ChainVerdict::Invalid(format!("a trust anchor is unusable: {e}")),
        }
    }
    let ee_der = CertificateDer::from(ee.as_slice());
    let ee_cert = match webpki::EndEntityCert::try_from(&ee_der) {
        Ok(c) => c,
        Err(e) => return ChainVerdict::Invalid(format!("signer certificate: {e}")),
    };
    let inter: Vec<CertificateDer<'_>> = intermediates
        .iter()
        .map(|c| CertificateDer::from(c.as_slice()))
        .collect();
    let secs = at.timestamp().max(0) as u64;
    let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs));
    let result = ee_cert.verify_for_usage(
        &[webpki::ring::ED25519],
        &trust_anchors,
        &inter,
        time,
        // Required-if-present, because webpki applies it to every certificate
        // of the path and CAs commonly carry no EKU; the signer's own EKU is
        // required below.
        webpki::KeyUsage::required_if_present(DOCUMENT_SIGNING_EKU_DER),
        None,
        None,
    );
    let ee_info = parse_certificate(ee).ok();
    match result {
        Ok(_) if !ee_info.as_ref().is_some_and(|c| c.document_signing) => {
            ChainVerdict::WrongUsage(format!(
                "the certificate is not for document signing: its EKU lacks {DOCUMENT_SIGNING_EKU}"
            ))
        }
        Ok(path) => {
            // Only certificates of the verified path (and the anchors) may
            // vouch for revocation: an extra x5c entry must not.
            let mut candidates: Vec<Vec<u8>> = path
                .intermediate_certificates()
                .map(|c| c.der().to_vec())
                .collect();
            candidates.extend(anchors.iter().cloned());
            match direct_issuer(ee, &candidates) {
                Some(issuer) => ChainVerdict::Valid { issuer },
                None => ChainVerdict::Invalid(
                    "the issuer of the signer's certificate is not in the verified path".into(),
                ),
            }
        }
        Err(webpki::Error::CertExpired { .. })
            if ee_info.as_ref().is_some_and(|c| at > c.not_after) =>
        {
            ChainVerdict::Expired
        }
        Err(webpki::Error::CertNotValidYet { .. })
            if ee_info.as_ref().is_some_and(|c| at < c.not_before) =>
        {
            ChainVerdict::NotYetValid
        }
        Err(e @ webpki::Error::RequiredEkuNotFoundContext(_)) => ChainVerdict::WrongUsage(format!(
            "the certificate is not for document signing ({DOCUMENT_SIGNING_EKU}): {e}"
        )),
        Err(e @ webpki::Error::UnknownIssuer) => {
            ChainVerdict::Untrusted(format!("no path to a configured trust anchor: {e}"))
        }
        Err(e) => ChainVerdict::Invalid(e.to_string()),
    }
}

/// The certificate among `candidates` whose subject is `ee`'s issuer and
/// whose key verifies `ee`'s signature.
fn direct_issuer(ee: &[u8], candidates: &[Vec<u8>]) -> Option<Vec<u8>> {
    let (_, ee) = X509Certificate::from_der(ee).ok()?;
    candidates
        .iter()
        .find(|c| {
            X509Certificate::from_der(c).is_ok_and(|(_, c)| {
                c.subject().as_raw() == ee.issuer().as_raw()
                    && ee.verify_signature(Some(c.public_key())).is_ok()
            })
        })
        .cloned()
}

/// Revocation status of a certificate at an instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// A CRL current at the instant does not list it.
    Good { crl_this_update: DateTime<Utc> },
    /// Listed, but revoked after the instant: the signature stands.
    RevokedAfter { revoked_at: DateTime<Utc> },
    /// Listed and revoked at or before the instant.
    RevokedBefore { revoked_at: DateTime<Utc> },
    /// No usable CRL from the certificate's issuer covers the instant.
    Unknown(String),
}

/// A CRL's issuer and validity, for status reports.
pub struct CrlFacts {
    pub issuer: String,
    pub this_update: DateTime<Utc>,
    pub next_update: Option<DateTime<Utc>>,
}

/// The facts of a DER CRL, if it parses.
pub fn crl_facts(der: &[u8]) -> Option<CrlFacts> {
    Crl::new(der.to_vec()).facts()
}

/// Whether a CRL may be used as the complete list of its issuer's revoked
/// certificates (RFC 5280 §5.2, §6.3.3): not a delta CRL, not partitioned or
/// scoped by an issuing distribution point, no unrecognised critical
/// extension on the list or on an entry (e.g. an indirect CRL's
/// certificateIssuer). Anything else could report a revoked certificate as good.
fn complete_crl(crl: &CertificateRevocationList<'_>) -> Result<(), String> {
    use x509_parser::oid_registry::{
        OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER, OID_X509_EXT_CRL_NUMBER,
        OID_X509_EXT_DELTA_CRL_INDICATOR, OID_X509_EXT_ISSUER_DISTRIBUTION_POINT,
    };
    for ext in crl.extensions() {
        if ext.oid == OID_X509_EXT_DELTA_CRL_INDICATOR {
            return Err("a CRL is a delta CRL, not a complete one (not used)".into());
        }
        if ext.oid == OID_X509_EXT_ISSUER_DISTRIBUTION_POINT {
            return Err(
                "a CRL is scoped by an issuing distribution point (a partition, not the complete list; not used)"
                    .into(),
            );
        }
        let known =
            ext.oid == OID_X509_EXT_CRL_NUMBER || ext.oid == OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER;
        if ext.critical && !known {
            return Err(format!(
                "a CRL has an unrecognised critical extension {} (not used)",
                ext.oid
            ));
        }
    }
    for entry in crl.iter_revoked_certificates() {
        if let Some(ext) = entry.extensions().iter().find(|e| e.critical) {
            return Err(format!(
                "a CRL entry has a critical extension {} (not used)",
                ext.oid
            ));
        }
    }
    Ok(())
}

/// Judges `ee` against the CRLs signed by `issuer` (DER of the issuing CA's
/// certificate, which chain validation has already vouched for).
pub fn revocation(
    ee: &[u8],
    issuer: &[u8],
    crls: &[std::sync::Arc<Crl>],
    at: DateTime<Utc>,
) -> Revocation {
    let Ok((_, ee)) = X509Certificate::from_der(ee) else {
        return Revocation::Unknown("the signer certificate does not parse".into());
    };
    let Ok((_, issuer)) = X509Certificate::from_der(issuer) else {
        return Revocation::Unknown("the issuer certificate does not parse".into());
    };
    if let Ok(Some(ku)) = issuer.key_usage() {
        if !ku.value.crl_sign() {
            return Revocation::Unknown(
                "the issuer may not sign CRLs (no cRLSign key usage)".into(),
            );
        }
    }
    let mut reasons = Vec::new();
    // Of the CRLs that are the issuer's, correctly signed and current at the
    // instant, the newest decides.
    let mut newest: Option<(DateTime<Utc>, Revocation)> = None;
    for crl in crls {
        let Some(p) = &crl.parsed else {
            reasons.push("a CRL does not parse".to_owned());
            continue;
        };
        if p.issuer != ee.issuer().as_raw() {
            continue;
        }
        if !crl.signed_by(&issuer) {
            reasons.push("a CRL's signature does not verify with the issuer's key".into());
            continue;
        }
        if let Err(why) = &p.complete {
            reasons.push(why.clone());
            continue;
        }
        let Some(next) = p.next_update else {
            reasons.push("a CRL has no nextUpdate".into());
            continue;
        };
        if next < at {
            reasons.push(format!(
                "the CRL expired at {next} (nextUpdate), before the signing instant"
            ));
            continue;
        }
        if newest.as_ref().is_some_and(|(t, _)| *t >= p.this_update) {
            continue;
        }
        let status = match p.revoked.get(ee.raw_serial()) {
            None => Revocation::Good {
                crl_this_update: p.this_update,
            },
            Some(&revoked_at) if revoked_at <= at => Revocation::RevokedBefore { revoked_at },
            Some(&revoked_at) => Revocation::RevokedAfter { revoked_at },
        };
        newest = Some((p.this_update, status));
    }
    if let Some((_, status)) = newest {
        return status;
    }
    if reasons.is_empty() {
        reasons.push(format!("no CRL from {}", ee.issuer()));
    }
    Revocation::Unknown(reasons.join("; "))
}
