//! The development PKI and demo organisation: `vanthu dev-keys` turns
//! `keys-dev/org.toml` into an Ed25519 root CA, an issuing CA, one
//! document-signing certificate per official, one seal certificate per
//! agency, a CRL, the special certificates the tests need (expired, wrong
//! EKU, revoked at a known instant, under an untrusted root) and the JWT
//! key. Every key is derived from a fixed seed and every validity period
//! from one anchor instant (recorded in the manifest), so the output is
//! byte-for-byte reproducible from the anchor; the committed `keys-dev/` is
//! checked against a fresh run by a test. Tests and `make demo` generate a
//! fresh set anchored at the clock's today, so nothing expires under them.
//!
//! Must never: be used for anything but development and tests (the seed is
//! public), or write outside the directory it is given.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use ed25519_dalek::pkcs8::{spki::der::pem::LineEnding, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signer, SigningKey};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyUsagePurpose, RevocationReason,
    RevokedCertParams, SerialNumber,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::crypto::pki;
use crate::domain::org::{OrgEvent, Position};

/// The instant the special "revoked" certificate is revoked in the CRL.
pub const REVOKED_AT: &str = "2026-06-15T00:00:00Z";

/// `keys-dev/org.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoOrg {
    pub appointed_from: DateTime<Utc>,
    pub admins: Vec<String>,
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
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
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
    pub officials: BTreeMap<String, CertEntry>,
    pub seals: BTreeMap<String, CertEntry>,
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

/// An Ed25519 key derived from the public development seed and a label.
pub fn dev_key(label: &str) -> SigningKey {
    let mut h = Sha256::new();
    h.update(b"vanthu dev-keys v1\0");
    h.update(label.as_bytes());
    SigningKey::from_bytes(&h.finalize().into())
}

/// A stable serial number for a label: 8 bytes of its hash, positive.
fn serial_for(label: &str) -> SerialNumber {
    let d = Sha256::digest(format!("serial:{label}").as_bytes());
    let mut s = [0u8; 8];
    s.copy_from_slice(&d[..8]);
    s[0] = (s[0] & 0x7f) | 0x10;
    SerialNumber::from_slice(&s)
}

/// ed25519-dalek key usable by rcgen.
struct DevKey {
    key: SigningKey,
    public: [u8; 32],
}

impl DevKey {
    fn new(label: &str) -> Self {
        let key = dev_key(label);
        let public = key.verifying_key().to_bytes();
        Self { key, public }
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

/// Validity periods, all derived from one anchor instant.
struct Validity {
    /// January 1st of the anchor's year: every certificate starts then.
    start: time::OffsetDateTime,
    /// The anchor's day (00:00 UTC): the CRL's thisUpdate.
    day: time::OffsetDateTime,
}

impl Validity {
    fn new(anchor: DateTime<Utc>) -> Result<Self, DevKeysError> {
        use chrono::Datelike;
        let bad = |e: String| DevKeysError::Manifest(format!("anchor {anchor}: {e}"));
        let month = time::Month::try_from(anchor.month() as u8).map_err(|e| bad(e.to_string()))?;
        let day = time::Date::from_calendar_date(anchor.year(), month, anchor.day() as u8)
            .map_err(|e| bad(e.to_string()))?;
        Ok(Self {
            start: odt(anchor.year(), 1, 1),
            day: day.midnight().assume_utc(),
        })
    }

    fn years(&self, from: i32, to: i32) -> (time::OffsetDateTime, time::OffsetDateTime) {
        let shift = |y: i32| {
            self.start
                .replace_year(self.start.year() + y)
                .expect("Jan 1")
        };
        (shift(from), shift(to))
    }
}

impl rcgen::PublicKeyData for DevKey {
    fn der_bytes(&self) -> &[u8] {
        &self.public
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ED25519
    }
}

impl rcgen::SigningKey for DevKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        Ok(self.key.sign(msg).to_bytes().to_vec())
    }
}

fn odt(y: i32, m: u8, d: u8) -> time::OffsetDateTime {
    rcgen::date_time_ymd(y, m, d)
}

fn name(cn: &str, org: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "VN");
    dn.push(DnType::OrganizationName, org);
    dn.push(DnType::CommonName, cn);
    dn
}

/// End-entity certificate parameters for a document signer.
fn signer_params(
    label: &str,
    cn: &str,
    org: &str,
    validity: (time::OffsetDateTime, time::OffsetDateTime),
    eku: Vec<ExtendedKeyUsagePurpose>,
) -> Result<CertificateParams, DevKeysError> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name = name(cn, org);
    p.serial_number = Some(serial_for(label));
    (p.not_before, p.not_after) = validity;
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::ContentCommitment,
    ];
    p.extended_key_usages = eku;
    p.use_authority_key_identifier_extension = true;
    p.key_identifier_method = KeyIdMethod::Sha256;
    Ok(p)
}

fn ca_params(
    label: &str,
    cn: &str,
    validity: (time::OffsetDateTime, time::OffsetDateTime),
    path_len: Option<u8>,
) -> Result<CertificateParams, DevKeysError> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name = name(cn, "vanthu development PKI (NOT FOR PRODUCTION)");
    p.serial_number = Some(serial_for(label));
    (p.not_before, p.not_after) = validity;
    p.is_ca = IsCa::Ca(match path_len {
        Some(n) => BasicConstraints::Constrained(n),
        None => BasicConstraints::Unconstrained,
    });
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.key_identifier_method = KeyIdMethod::Sha256;
    Ok(p)
}

/// Generated files: path relative to the keys directory → contents.
pub type Files = BTreeMap<String, Vec<u8>>;

/// PKCS#8 v1 PEM (no embedded public key: OpenSSL 3.0 reads only that form).
fn key_pem(label: &str) -> Result<Vec<u8>, DevKeysError> {
    let pem = ed25519_dalek::pkcs8::KeypairBytes {
        secret_key: dev_key(label).to_bytes(),
        public_key: None,
    }
    .to_pkcs8_pem(LineEnding::LF)
    .map_err(|e| DevKeysError::Key(e.to_string()))?;
    Ok(pem.as_bytes().to_vec())
}

/// Generates the whole development PKI for `org`, valid around `anchor`:
/// CAs and signers from January 1st of its year (root 20 years, issuing CA
/// 10, signers 3), the "expired" certificate in the 3 years before, the CRL
/// from the anchor's day for one year.
pub fn generate(org: &DemoOrg, anchor: DateTime<Utc>) -> Result<(Files, Manifest), DevKeysError> {
    let mut files = Files::new();
    let validity = Validity::new(anchor)?;
    let long = validity.years(0, 20);
    let signer_validity = validity.years(0, 3); // at most 3 years (Decree 23/2025)
    let doc_signing = ExtendedKeyUsagePurpose::Other(vec![1, 3, 6, 1, 5, 5, 7, 3, 36]);
    // pki::AGENCY_SEAL_EKU
    let agency_seal = ExtendedKeyUsagePurpose::Other(vec![1, 3, 6, 1, 4, 1, 32473, 1, 1]);

    let root_key = DevKey::new("root");
    let root_params = ca_params("root", "vanthu Dev Root CA", long, None)?;
    let root_cert = root_params.self_signed(&root_key)?;
    let root = Issuer::new(root_params, root_key);
    files.insert("ca/root.pem".into(), root_cert.pem().into_bytes());
    files.insert("ca/root.key".into(), key_pem("root")?);

    let issuing_key = DevKey::new("issuing");
    let issuing_params = ca_params(
        "issuing",
        "vanthu Dev Issuing CA",
        validity.years(0, 10),
        Some(0),
    )?;
    let issuing_cert = issuing_params.signed_by(&issuing_key, &root)?;
    let issuing = Issuer::new(issuing_params, issuing_key);
    files.insert("ca/issuing.pem".into(), issuing_cert.pem().into_bytes());
    files.insert("ca/issuing.key".into(), key_pem("issuing")?);

    let mut manifest = Manifest {
        note: "Development keys only: public, committed, never for real documents. Regenerate with `vanthu dev-keys`.".into(),
        root: "ca/root.pem".into(),
        issuing_ca: "ca/issuing.pem".into(),
        crl: "ca/crl.pem".into(),
        jwt_key: "jwt/jwt.key".into(),
        jwt_public_key: "jwt/jwt.pub.pem".into(),
        untrusted_root: "special/untrusted-root.pem".into(),
        revoked_at: REVOKED_AT.into(),
        anchor: anchor.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ..Default::default()
    };

    let issue = |files: &mut Files,
                 label: &str,
                 path: &str,
                 params: CertificateParams,
                 issuer: &Issuer<'_, DevKey>,
                 official: Option<&str>|
     -> Result<CertEntry, DevKeysError> {
        let key = DevKey::new(label);
        let cert = params.signed_by(&key, issuer)?;
        let der = cert.der().to_vec();
        let info =
            pki::parse_certificate(&der).map_err(|e| DevKeysError::Manifest(e.to_string()))?;
        files.insert(format!("{path}.pem"), cert.pem().into_bytes());
        files.insert(format!("{path}.key"), key_pem(label)?);
        Ok(CertEntry {
            cert: format!("{path}.pem"),
            key: format!("{path}.key"),
            fingerprint: info.fingerprint,
            serial: info.serial,
            issuer: info.issuer,
            official: official.map(str::to_owned),
        })
    };

    for (agency, o) in org.officials() {
        let label = format!("official:{}", o.id);
        let params = signer_params(
            &label,
            &o.name,
            &agency.name,
            signer_validity,
            vec![doc_signing.clone()],
        )?;
        let entry = issue(
            &mut files,
            &label,
            &format!("officials/{}", o.id),
            params,
            &issuing,
            Some(&o.id),
        )?;
        manifest.officials.insert(o.id.clone(), entry);
    }
    for agency in &org.agencies {
        let label = format!("seal:{}", agency.code);
        let params = signer_params(
            &label,
            &agency.name,
            &agency.name,
            signer_validity,
            vec![doc_signing.clone(), agency_seal.clone()],
        )?;
        let entry = issue(
            &mut files,
            &label,
            &format!("seals/{}", agency.code),
            params,
            &issuing,
            None,
        )?;
        manifest.seals.insert(agency.code.clone(), entry);
    }

    // Special certificates, all for one deputy director, for negative tests.
    let (agency, victim) = org
        .officials()
        .find(|(_, o)| o.id == org.test_signer)
        .ok_or_else(|| {
            DevKeysError::Manifest(format!(
                "test_signer {} is not an official",
                org.test_signer
            ))
        })?;
    let specials: [(
        &str,
        (time::OffsetDateTime, time::OffsetDateTime),
        ExtendedKeyUsagePurpose,
    ); 3] = [
        ("expired", validity.years(-3, 0), doc_signing.clone()),
        (
            "wrong-eku",
            signer_validity,
            ExtendedKeyUsagePurpose::EmailProtection,
        ),
        ("revoked", signer_validity, doc_signing.clone()),
    ];
    for (kind, validity, eku) in specials {
        let label = format!("special:{kind}");
        let params = signer_params(&label, &victim.name, &agency.name, validity, vec![eku])?;
        let entry = issue(
            &mut files,
            &label,
            &format!("special/{kind}"),
            params,
            &issuing,
            Some(&victim.id),
        )?;
        manifest.special.insert(kind.into(), entry);
    }
    let rogue_key = DevKey::new("untrusted-root");
    let rogue_params = ca_params("untrusted-root", "Untrusted Root CA", long, None)?;
    let rogue_cert = rogue_params.self_signed(&rogue_key)?;
    let rogue = Issuer::new(rogue_params, rogue_key);
    files.insert(
        "special/untrusted-root.pem".into(),
        rogue_cert.pem().into_bytes(),
    );
    let label = "special:untrusted";
    let params = signer_params(
        label,
        &victim.name,
        &agency.name,
        signer_validity,
        vec![doc_signing],
    )?;
    let entry = issue(
        &mut files,
        label,
        "special/untrusted",
        params,
        &rogue,
        Some(&victim.id),
    )?;
    manifest.special.insert("untrusted".into(), entry);

    let revoked_at = revoked_at();
    let crl = CertificateRevocationListParams {
        this_update: validity.day,
        next_update: validity.day + time::Duration::days(365),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: vec![RevokedCertParams {
            serial_number: serial_for("special:revoked"),
            revocation_time: time::OffsetDateTime::from_unix_timestamp(revoked_at.timestamp())
                .map_err(|e| DevKeysError::Manifest(e.to_string()))?,
            reason_code: Some(RevocationReason::KeyCompromise),
            invalidity_date: None,
        }],
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&issuing)?;
    files.insert("ca/crl.pem".into(), crl.pem()?.into_bytes());

    let jwt = dev_key("jwt");
    files.insert("jwt/jwt.key".into(), key_pem("jwt")?);
    let jwt_pub = jwt
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| DevKeysError::Key(e.to_string()))?;
    files.insert("jwt/jwt.pub.pem".into(), jwt_pub.into_bytes());

    let mut labels = vec![
        "root".to_owned(),
        "issuing".into(),
        "untrusted-root".into(),
        "jwt".into(),
        "special:untrusted".into(),
    ];
    labels.extend(org.officials().map(|(_, o)| format!("official:{}", o.id)));
    labels.extend(org.agencies.iter().map(|a| format!("seal:{}", a.code)));
    labels.extend(["expired", "wrong-eku", "revoked"].map(|k| format!("special:{k}")));
    manifest.public_keys = labels
        .into_iter()
        .map(|l| {
            let fp = public_key_fingerprint(&dev_key(&l).verifying_key().to_bytes());
            (l, fp)
        })
        .collect();

    let mut json =
        serde_json::to_vec_pretty(&manifest).map_err(|e| DevKeysError::Manifest(e.to_string()))?;
    json.push(b'\n');
    files.insert("manifest.json".into(), json);
    Ok((files, manifest))
}

/// Signs `crl` as the development issuing CA of the set anchored at
/// `anchor` (same name, same key): CRLs of every shape for tests.
pub fn sign_crl_as_issuing_ca(
    anchor: DateTime<Utc>,
    crl: CertificateRevocationListParams,
) -> Result<Vec<u8>, DevKeysError> {
    let validity = Validity::new(anchor)?;
    let params = ca_params(
        "issuing",
        "vanthu Dev Issuing CA",
        validity.years(0, 10),
        Some(0),
    )?;
    let issuing = Issuer::new(params, DevKey::new("issuing"));
    Ok(crl.signed_by(&issuing)?.der().to_vec())
}

/// Writes generated files under `out`.
pub fn write(out: &Path, files: &Files) -> Result<(), DevKeysError> {
    for (rel, bytes) in files {
        let path = out.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| DevKeysError::Io(dir.to_owned(), e))?;
        }
        std::fs::write(&path, bytes).map_err(|e| DevKeysError::Io(path.clone(), e))?;
    }
    Ok(())
}

/// The instant the special "revoked" certificate is revoked, parsed.
pub fn revoked_at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(REVOKED_AT)
        .expect("REVOKED_AT is RFC 3339")
        .with_timezone(&Utc)
}
