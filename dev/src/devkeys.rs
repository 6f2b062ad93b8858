//! The development PKI: `vanthu-dev dev-keys` turns `keys-dev/org.toml`
//! into an Ed25519 root CA, an issuing CA, one document-signing certificate
//! per official, one seal certificate per agency, a CRL, the special
//! certificates the tests need (expired, wrong EKU, revoked at a known
//! instant, under an untrusted root) and the JWT key. Every key is derived
//! from a fixed seed and every validity period from one anchor instant
//! (recorded in the manifest), so the output is byte-for-byte reproducible
//! from the anchor; the committed `keys-dev/` is checked against a fresh
//! run by a test. Tests and `make demo` generate a fresh set anchored at
//! the clock's today, so nothing expires under them.
//!
//! Must never: be used for anything but development and tests (the seed is
//! public), or write outside the directory it is given.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use ed25519_dalek::pkcs8::{spki::der::pem::LineEnding, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signer, SigningKey};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyUsagePurpose, RevocationReason,
    RevokedCertParams, SanType, SerialNumber,
};
use sha2::{Digest, Sha256};

use vanthu::crypto::pki;
pub use vanthu::devkeys::*;

/// Why keys could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    DevKeys(#[from] DevKeysError),
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("{0}: {1}")]
    Io(std::path::PathBuf, #[source] std::io::Error),
}

/// The instant the special "revoked" certificate is revoked in the CRL.
pub const REVOKED_AT: &str = "2026-06-15T00:00:00Z";

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
) -> Result<CertificateParams, Error> {
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
) -> Result<CertificateParams, Error> {
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
pub fn generate(org: &DemoOrg, anchor: DateTime<Utc>) -> Result<(Files, Manifest), Error> {
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
        log_key: "log/log.key".into(),
        log_verifier_key: "log/log.vkey".into(),
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
     -> Result<CertEntry, Error> {
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

    // A TLS server certificate for localhost (tls.cert / tls.key), chained
    // to the development root through the issuing CA.
    {
        let label = "tls:localhost";
        let mut params = signer_params(
            label,
            "localhost",
            "vanthu development PKI (NOT FOR PRODUCTION)",
            signer_validity,
            vec![ExtendedKeyUsagePurpose::ServerAuth],
        )?;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.subject_alt_names = vec![
            SanType::DnsName("localhost".try_into()?),
            SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])),
        ];
        let entry = issue(&mut files, label, "tls/server", params, &issuing, None)?;
        let chain = files.get("ca/issuing.pem").cloned().unwrap_or_default();
        if let Some(pem) = files.get_mut("tls/server.pem") {
            pem.extend_from_slice(&chain);
        }
        manifest.tls_server = Some(entry);
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

    // The transparency log's key, and its verifier key for the development
    // origin (what `vanthu verify --log-key` and `vanthu log monitor` take).
    files.insert("log/log.key".into(), key_pem("log")?);
    let vkey = vanthu::crypto::note::verifier_key(
        vanthu::config::DEV_TLOG_ORIGIN,
        &dev_key("log").verifying_key().to_bytes(),
    );
    files.insert("log/log.vkey".into(), format!("{vkey}\n").into_bytes());

    // The key webhook secrets are derived from (32 bytes, base64). The
    // manifest lists it by the Ed25519 key these bytes seed, as the service
    // names it when refusing development material.
    {
        use base64::Engine;
        let bytes = dev_key("webhooks").to_bytes();
        let text = base64::engine::general_purpose::STANDARD.encode(bytes);
        files.insert(
            "webhooks/webhooks.key".into(),
            format!("{text}\n").into_bytes(),
        );
    }

    let mut labels = vec![
        "root".to_owned(),
        "webhooks".into(),
        "issuing".into(),
        "untrusted-root".into(),
        "jwt".into(),
        "log".into(),
        "tls:localhost".into(),
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
) -> Result<Vec<u8>, Error> {
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

/// Generates the set for the organisation at `org`, anchored at `anchor`,
/// into `out`, with a copy of `org.toml` (a complete keys directory).
pub fn generate_dir(
    org: &Path,
    out: &Path,
    anchor: DateTime<Utc>,
) -> Result<(Files, Manifest), Error> {
    let demo = DemoOrg::load(org)?;
    let (mut files, manifest) = generate(&demo, anchor)?;
    files.insert(
        "org.toml".into(),
        std::fs::read(org).map_err(|e| Error::Io(org.to_owned(), e))?,
    );
    write(out, &files)?;
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
