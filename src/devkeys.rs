//! The development PKI and demo organisation: `vanthu dev-keys` turns
//! `keys-dev/org.toml` into an Ed25519 root CA, an issuing CA, one
//! document-signing certificate per official, one seal certificate per
//! agency, a CRL, the special certificates the tests need (expired, wrong
//! EKU, revoked at a known instant, under an untrusted root) and the JWT
//! key. Every key is derived from a fixed seed and every field is fixed, so
//! the output is byte-for-byte reproducible; the committed `keys-dev/` is
//! checked against a fresh run by a test.
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

/// Generates the whole development PKI for `org`.
pub fn generate(org: &DemoOrg) -> Result<(Files, Manifest), DevKeysError> {
    let mut files = Files::new();
    let long = (odt(2026, 1, 1), odt(2046, 1, 1));
    let signer_validity = (odt(2026, 1, 1), odt(2029, 1, 1)); // at most 3 years (Decree 23/2025)
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
        (odt(2026, 1, 1), odt(2036, 1, 1)),
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
        (
            "expired",
            (odt(2023, 1, 1), odt(2026, 1, 1)),
            doc_signing.clone(),
        ),
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
        this_update: odt(2026, 11, 1),
        next_update: odt(2027, 11, 1),
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

    let mut json =
        serde_json::to_vec_pretty(&manifest).map_err(|e| DevKeysError::Manifest(e.to_string()))?;
    json.push(b'\n');
    files.insert("manifest.json".into(), json);
    Ok((files, manifest))
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
