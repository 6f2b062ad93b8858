//! Signatures judged at the signing instant, with the development PKI in
//! keys-dev/: every case asserts the exact EN 319 102-1 indication and
//! sub-indication, and the authority verdict.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, TimeZone, Utc};
use ed25519_dalek::pkcs8::DecodePrivateKey;
use ed25519_dalek::SigningKey;
use vanthu::crypto::jws::sign_compact;
use vanthu::crypto::pki::{pem_blocks, Trust};
use vanthu::crypto::verify::{verify, Expectation, Indication, Report, SubIndication};
use vanthu::domain::authority::{judge, SigningAct};
use vanthu::domain::document::judge_signature;
use vanthu::domain::org::{Authority, Org, OrgEvent, Position};
use vanthu::domain::signing::{ContentRef, SigningPayload};
use vanthu_dev::devkeys::{self, DemoOrg, Manifest};

/// The committed keys: these tests judge at fixed instants inside their
/// validity, never at the running clock.
fn keys() -> PathBuf {
    crate::helpers::committed_keys_dir()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(keys().join(rel)).unwrap()
}

fn cert_der(rel: &str) -> Vec<u8> {
    pem_blocks(&read(rel), "CERTIFICATE").unwrap().remove(0)
}

fn key(rel: &str) -> SigningKey {
    SigningKey::from_pkcs8_pem(&read(rel)).unwrap()
}

struct Fixture {
    org: Org,
    /// The events `org` was folded from (what a bundle carries).
    events: Vec<OrgEvent>,
    trust: Trust,
    issuing: Vec<u8>,
}

fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 9, 0, 0).unwrap()
}

/// The demo organisation, plus the special certificates bound to their
/// official, plus the SVHTT director relieved at 2026-11-20 10:00.
fn fixture() -> Fixture {
    let manifest = Manifest::load(&keys()).unwrap();
    let demo = DemoOrg::load(&keys().join("org.toml")).unwrap();
    let mut events = demo.org_events(&manifest).unwrap();
    // The official's main certificate stays bound; the special ones are
    // additional certificates of the same official.
    for c in manifest.special.values() {
        events.push(OrgEvent::CertificateBound {
            official: c.official.clone().unwrap(),
            fingerprint: c.fingerprint.clone(),
            serial: c.serial.clone(),
            issuer: c.issuer.clone(),
            at: demo.appointed_from - Duration::days(1000),
        });
    }
    events.push(OrgEvent::OfficialRelieved {
        official: "svhtt-giam-doc".into(),
        agency: "SVHTT".into(),
        position: Position::Head,
        at: Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap(),
    });
    let mut org = Org::default();
    for e in &events {
        org.validate(e).unwrap_or_else(|err| panic!("{e:?}: {err}"));
        org.apply(e);
    }
    let trust = Trust::new(
        vec![cert_der("ca/root.pem")],
        vanthu::crypto::pki::parse_crls(pem_blocks(&read("ca/crl.pem"), "X509 CRL").unwrap()),
    );
    Fixture {
        org,
        events,
        trust,
        issuing: cert_der("ca/issuing.pem"),
    }
}

fn payload(
    signer: &str,
    authority: Authority,
    version: u64,
    when: DateTime<Utc>,
) -> SigningPayload {
    SigningPayload {
        doc: "0192f3a4-0000-7000-8000-000000000001".into(),
        version,
        content: vec![ContentRef {
            name: "bao-cao.pdf".into(),
            sha256: "ab".repeat(32),
        }],
        title: "Báo cáo kết quả thực hiện nhiệm vụ năm 2026".into(),
        doc_type: "BC".into(),
        agency: "SVHTT".into(),
        signer: signer.into(),
        authority,
        on_behalf_of: None,
        position: Position::DeputyHead,
        at: when,
    }
}

/// Turns (good JWS, expected payload, signer's key, chain) into what is submitted.
type Mutate = fn(String, &[u8], &SigningKey, &[Vec<u8>]) -> String;

struct Case {
    name: &'static str,
    /// Official the server authenticated.
    signer: &'static str,
    /// Certificate/key entry: `officials/<id>` or `special/<kind>`.
    cert: String,
    form: Authority,
    when: DateTime<Utc>,
    mutate: Mutate,
    want: (Indication, Option<SubIndication>),
    authority: bool,
}

fn keep(jws: String, _: &[u8], _: &SigningKey, _: &[Vec<u8>]) -> String {
    jws
}

#[test]
fn signatures_are_judged_at_the_signing_instant() {
    let _limit = crate::helpers::time_limit();
    let f = fixture();
    let now = at(2026, 11, 24);
    use Indication::*;
    use SubIndication::*;
    let official = |id: &str| format!("officials/{id}");
    let special = |k: &str| format!("special/{k}");
    let cases = vec![
        Case {
            name: "valid deputy KT.",
            signer: "svhtt-pgd-1",
            cert: official("svhtt-pgd-1"),
            form: Authority::Kt,
            when: now,
            mutate: keep,
            want: (TotalPassed, None),
            authority: true,
        },
        Case {
            name: "deputy signing without KT.",
            signer: "svhtt-pgd-1",
            cert: official("svhtt-pgd-1"),
            form: Authority::Direct,
            when: now,
            mutate: keep,
            want: (Indeterminate, Some(SigConstraintsFailure)),
            authority: false,
        },
        Case {
            name: "deputy of another agency",
            signer: "snv-pgd-1",
            cert: official("snv-pgd-1"),
            form: Authority::Kt,
            when: now,
            mutate: keep,
            want: (Indeterminate, Some(SigConstraintsFailure)),
            authority: false,
        },
        Case {
            name: "head relieved one minute before signing",
            signer: "svhtt-giam-doc",
            cert: official("svhtt-giam-doc"),
            form: Authority::Direct,
            when: Utc.with_ymd_and_hms(2026, 11, 20, 10, 1, 0).unwrap(),
            mutate: keep,
            want: (Indeterminate, Some(SigConstraintsFailure)),
            authority: false,
        },
        Case {
            name: "head one minute before being relieved",
            signer: "svhtt-giam-doc",
            cert: official("svhtt-giam-doc"),
            form: Authority::Direct,
            when: Utc.with_ymd_and_hms(2026, 11, 20, 9, 59, 0).unwrap(),
            mutate: keep,
            want: (TotalPassed, None),
            authority: true,
        },
        Case {
            name: "revoked before the signing instant",
            signer: "svhtt-pgd-2",
            cert: special("revoked"),
            form: Authority::Kt,
            when: at(2026, 7, 1),
            mutate: keep,
            want: (TotalFailed, Some(Revoked)),
            authority: true,
        },
        Case {
            name: "revoked after the signing instant",
            signer: "svhtt-pgd-2",
            cert: special("revoked"),
            form: Authority::Kt,
            when: at(2026, 6, 1),
            mutate: keep,
            want: (TotalPassed, None),
            authority: true,
        },
        Case {
            name: "expired",
            signer: "svhtt-pgd-2",
            cert: special("expired"),
            form: Authority::Kt,
            when: at(2026, 6, 1),
            mutate: keep,
            want: (TotalFailed, Some(Expired)),
            authority: true,
        },
        Case {
            name: "not yet valid",
            signer: "svhtt-pgd-1",
            cert: official("svhtt-pgd-1"),
            form: Authority::Kt,
            when: at(2025, 6, 1),
            mutate: keep,
            want: (TotalFailed, Some(NotYetValid)),
            authority: false,
        },
        Case {
            name: "wrong EKU",
            signer: "svhtt-pgd-2",
            cert: special("wrong-eku"),
            form: Authority::Kt,
            when: now,
            mutate: keep,
            want: (Indeterminate, Some(ChainConstraintsFailure)),
            authority: true,
        },
        Case {
            name: "untrusted root",
            signer: "svhtt-pgd-2",
            cert: special("untrusted"),
            form: Authority::Kt,
            when: now,
            mutate: keep,
            want: (Indeterminate, Some(NoCertificateChainFound)),
            authority: true,
        },
        Case {
            name: "certificate bound to a different official",
            signer: "svhtt-pgd-1",
            cert: official("svhtt-pgd-2"),
            form: Authority::Kt,
            when: now,
            mutate: keep,
            want: (Indeterminate, Some(SigConstraintsFailure)),
            authority: true,
        },
        Case {
            name: "payload of an older version (replay)",
            signer: "svhtt-pgd-1",
            cert: official("svhtt-pgd-1"),
            form: Authority::Kt,
            when: now,
            mutate: |_, _, k, chain| {
                let old = payload("svhtt-pgd-1", Authority::Kt, 2, at(2026, 11, 24)).canonical();
                sign_compact(&old, k, chain, 0)
            },
            want: (TotalFailed, Some(HashFailure)),
            authority: true,
        },
        Case {
            name: "tampered payload",
            signer: "svhtt-pgd-1",
            cert: official("svhtt-pgd-1"),
            form: Authority::Kt,
            when: now,
            mutate: |jws, expected, _, _| {
                use base64::Engine;
                let tampered = String::from_utf8(expected.to_vec())
                    .unwrap()
                    .replace("2026", "2027");
                let parts: Vec<&str> = jws.split('.').collect();
                let p = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tampered);
                format!("{}.{p}.{}", parts[0], parts[2])
            },
            want: (TotalFailed, Some(SigCryptoFailure)),
            authority: true,
        },
        Case {
            name: "non-canonical JSON",
            signer: "svhtt-pgd-1",
            cert: official("svhtt-pgd-1"),
            form: Authority::Kt,
            when: now,
            mutate: |_, expected, k, chain| {
                let v: serde_json::Value = serde_json::from_slice(expected).unwrap();
                sign_compact(
                    serde_json::to_string_pretty(&v).unwrap().as_bytes(),
                    k,
                    chain,
                    0,
                )
            },
            want: (TotalFailed, Some(FormatFailure)),
            authority: true,
        },
        Case {
            name: "malformed JWS",
            signer: "svhtt-pgd-1",
            cert: official("svhtt-pgd-1"),
            form: Authority::Kt,
            when: now,
            mutate: |_, _, _, _| "eyJhbGciOiJFZERTQSJ9.e30".into(),
            want: (TotalFailed, Some(FormatFailure)),
            authority: true,
        },
        Case {
            name: "garbage base64",
            signer: "svhtt-pgd-1",
            cert: official("svhtt-pgd-1"),
            form: Authority::Kt,
            when: now,
            mutate: |_, _, _, _| "***.###.@@@".into(),
            want: (TotalFailed, Some(FormatFailure)),
            authority: true,
        },
        Case {
            name: "malformed DER in x5c",
            signer: "svhtt-pgd-1",
            cert: official("svhtt-pgd-1"),
            form: Authority::Kt,
            when: now,
            mutate: |_, expected, k, _| {
                sign_compact(expected, k, &[vec![0x30, 0x03, 0x02, 0x01]], 0)
            },
            want: (Indeterminate, Some(NoSigningCertificateFound)),
            authority: true,
        },
        Case {
            name: "no revocation information",
            signer: "svhtt-pgd-1",
            cert: official("svhtt-pgd-1"),
            form: Authority::Kt,
            when: at(2028, 1, 1),
            mutate: keep,
            want: (Indeterminate, Some(TryLater)),
            authority: true,
        },
    ];
    let mut failures = Vec::new();
    // Twice: the second pass meets every valid chain in the trust's chain
    // cache, which must answer only at instants it knows the path valid at
    // (a cached path of svhtt-pgd-1 must not make 2025 "valid").
    for (pass, c) in cases.iter().chain(cases.iter()).enumerate() {
        let pass = pass / cases.len() + 1;
        let k = key(&format!("{}.key", c.cert));
        let ee = cert_der(&format!("{}.pem", c.cert));
        let chain = if c.cert.ends_with("untrusted") {
            vec![ee]
        } else {
            vec![ee, f.issuing.clone()]
        };
        let expected = payload(c.signer, c.form, 3, c.when).canonical();
        let good = sign_compact(&expected, &k, &chain, c.when.timestamp());
        let submitted = (c.mutate)(good, &expected, &k, &chain);
        let act = SigningAct {
            official: c.signer,
            agency: "SVHTT",
            doc_type: "BC",
            form: c.form,
            at: c.when,
        };
        // Live: the judgement `document::accept` makes once it has parsed
        // the JWS and judged the authority.
        let authority = judge(&f.org, &act);
        let report = match vanthu::crypto::jws::parse_compact(&submitted) {
            Ok(jws) => judge_signature(
                &jws,
                &payload(c.signer, c.form, 3, c.when),
                &f.org,
                &act,
                &authority,
                &f.trust,
            ),
            Err(e) => Report::format_failure(c.when, e.to_string()),
        };
        let got = (report.indication, report.sub_indication);
        // The same signature in a bundle, judged offline by `vanthu verify`'s
        // function: the same verdict, or live and offline disagree.
        let b = sealed_bundle(
            payload(c.signer, c.form, 3, c.when),
            submitted.clone(),
            f.events.clone(),
            c.when,
        );
        let offline =
            vanthu::bundle::verify_bundle(&b, vec![cert_der("ca/root.pem")], None).unwrap();
        let offline_got = (offline.personal.indication, offline.personal.sub_indication);
        if offline_got != got || offline.authority.passed != authority.passed {
            failures.push(format!(
                "{}: live {got:?} authority {}, offline {offline_got:?} authority {}",
                c.name, authority.passed, offline.authority.passed
            ));
        }
        if got != c.want || authority.passed != c.authority {
            failures.push(format!(
                "{} (pass {pass}): got {got:?}, authority {} ({}); want {:?}, authority {}\n  checks: {:?}",
                c.name, authority.passed, authority.reason, c.want, c.authority, report.checks
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        f.trust.chains.hits() >= 4,
        "the second pass found no valid chain in the cache ({} hits)",
        f.trust.chains.hits()
    );
    // Every CRL was parsed once, when the trust was built, and its signature
    // checked once for the one issuing CA, however many signatures it judged.
    for crl in &f.trust.crls {
        assert_eq!(
            crl.signature_checks(),
            1,
            "{:?}",
            crl.facts().map(|x| x.issuer)
        );
    }
}

#[test]
fn a_revoked_after_signature_says_so() {
    let _limit = crate::helpers::time_limit();
    let f = fixture();
    let when = at(2026, 6, 1);
    let k = key("special/revoked.key");
    let chain = vec![cert_der("special/revoked.pem"), f.issuing.clone()];
    let expected = payload("svhtt-pgd-2", Authority::Kt, 1, when).canonical();
    let jws = sign_compact(&expected, &k, &chain, when.timestamp());
    let report = verify(
        &jws,
        &Expectation {
            payload: &expected,
            at: when,
            trust: &f.trust,
        },
    );
    assert!(report.passed());
    let rev = report
        .checks
        .iter()
        .find(|c| c.name == "revocation")
        .unwrap();
    assert!(
        rev.detail.contains("after the signing instant"),
        "{}",
        rev.detail
    );
    assert_eq!(
        devkeys::revoked_at(),
        Utc.with_ymd_and_hms(2026, 6, 15, 0, 0, 0).unwrap()
    );
}

/// The committed keys-dev/ is exactly what `vanthu dev-keys` produces.
#[test]
fn committed_dev_keys_are_reproducible() {
    let _limit = crate::helpers::time_limit();
    let demo = DemoOrg::load(&keys().join("org.toml")).unwrap();
    let committed = Manifest::load(&keys()).unwrap();
    let anchor = DateTime::parse_from_rfc3339(&committed.anchor)
        .expect("the manifest records its anchor")
        .with_timezone(&Utc);
    let (files, manifest) = devkeys::generate(&demo, anchor).unwrap();
    for (rel, bytes) in &files {
        let committed = std::fs::read(keys().join(rel)).unwrap_or_default();
        assert!(
            committed == *bytes,
            "keys-dev/{rel} differs from a fresh `vanthu dev-keys` run"
        );
    }
    assert_eq!(manifest.officials.len(), demo.officials().count());
    assert_eq!(manifest.seals.len(), 4);
}

/// A bundle signed by the SVHTT deputy (KT.) and sealed by SVHTT, as the
/// server will produce at issuance.
fn bundle(when: DateTime<Utc>) -> vanthu::bundle::Bundle {
    let manifest = Manifest::load(&keys()).unwrap();
    let demo = DemoOrg::load(&keys().join("org.toml")).unwrap();
    let org_events = demo.org_events(&manifest).unwrap();
    let mut p = payload("svhtt-pgd-1", Authority::Kt, 4, when);
    p.on_behalf_of = Some("svhtt-giam-doc".into());
    let k = key("officials/svhtt-pgd-1.key");
    let chain = vec![
        cert_der("officials/svhtt-pgd-1.pem"),
        cert_der("ca/issuing.pem"),
    ];
    let personal = sign_compact(&p.canonical(), &k, &chain, when.timestamp());
    sealed_bundle(p, personal, org_events, when)
}

/// A bundle around `personal` over `p`, accepted at `when` and sealed by
/// SVHTT five minutes later, attesting `org_events`.
fn sealed_bundle(
    p: SigningPayload,
    personal: String,
    org_events: Vec<OrgEvent>,
    when: DateTime<Utc>,
) -> vanthu::bundle::Bundle {
    use vanthu::crypto::keystore::{seal_compact, FileKey};
    use vanthu::domain::signing::{jws_sha256, org_sha256, sealed_org, SealPayload, SEAL_VERSION};
    // What the server seals and carries: the authority-relevant events.
    let org_events = sealed_org(SEAL_VERSION, &org_events).unwrap();
    let seal_payload = SealPayload {
        seal_version: SEAL_VERSION,
        signed: p.clone(),
        number: 12,
        symbol: "12/BC-SVHTT".into(),
        issued_on: when.date_naive(),
        signature_sha256: jws_sha256(&personal),
        signed_at: when,
        org_sha256: org_sha256(&org_events),
    };
    let seal_key = FileKey::load(
        &keys().join("seals/SVHTT.key"),
        &[
            &keys().join("seals/SVHTT.pem"),
            &keys().join("ca/issuing.pem"),
        ],
    )
    .unwrap();
    let later = when + Duration::minutes(5);
    let seal = seal_compact(&seal_key, &seal_payload.canonical(), later.timestamp()).unwrap();
    vanthu::bundle::Bundle {
        format: vanthu::bundle::FORMAT.into(),
        personal: vanthu::bundle::Signed {
            jws: personal,
            payload: p,
            recorded_at: when,
        },
        seal: vanthu::bundle::Signed {
            jws: seal,
            payload: seal_payload,
            recorded_at: later,
        },
        crls: vec![read("ca/crl.pem")],
        org: org_events,
        log: None,
    }
    .with_log_evidence()
}

/// Test bundles carry log evidence as the server makes it: the signing and
/// issuing records at positions 5 and 7 of a nine-record log, each with a
/// tlog-proof against a checkpoint signed by the development log key.
trait WithLog {
    fn with_log_evidence(self) -> Self;
}

impl WithLog for vanthu::bundle::Bundle {
    fn with_log_evidence(mut self) -> Self {
        use vanthu::crypto::{merkle, note};
        let record = |position: u64, kind: &str, payload: serde_json::Value| {
            let r = vanthu::store::Record {
                position,
                stream: if kind.is_empty() {
                    format!("other-{position}")
                } else {
                    "doc-0001".into()
                },
                version: position,
                event_id: uuid::Uuid::now_v7(),
                event_type: if kind.is_empty() {
                    "test.filler.v1".into()
                } else {
                    format!("document.{kind}.v1")
                },
                recorded_at: Utc::now(),
                payload,
                metadata: Default::default(),
            };
            String::from_utf8(vanthu::store::codec::encode(&r).unwrap()).unwrap()
        };
        let at = |t: DateTime<Utc>| serde_json::to_value(t).unwrap();
        let records: Vec<String> = (1..=9)
            .map(|p| match p {
                5 => record(p, "signed", serde_json::json!({ "jws": self.personal.jws, "at": at(self.personal.recorded_at) })),
                7 => record(p, "issued", serde_json::json!({ "seal": self.seal.jws, "at": at(self.seal.recorded_at) })),
                _ => record(p, "", serde_json::json!({})),
            })
            .collect();
        let leaves: Vec<merkle::Hash> = records
            .iter()
            .map(|r| merkle::leaf_hash(r.as_bytes()))
            .collect();
        let Ok(root) = merkle::root(&leaves[..], 9);
        let signer =
            note::LogKey::load(&keys().join("log/log.key"), vanthu::config::DEV_TLOG_ORIGIN)
                .unwrap();
        let checkpoint = note::sign(
            &note::Checkpoint {
                origin: vanthu::config::DEV_TLOG_ORIGIN.into(),
                size: 9,
                root,
            },
            &signer,
        )
        .unwrap();
        let logged = [5u64, 7]
            .into_iter()
            .map(|p| {
                let Ok(path) = merkle::inclusion_proof(&leaves[..], p - 1, 9);
                vanthu::bundle::LoggedRecord {
                    position: p,
                    record: records[p as usize - 1].clone(),
                    proof: note::tlog_proof(p - 1, &path, &checkpoint),
                }
            })
            .collect();
        self.log = Some(vanthu::bundle::LogEvidence {
            checkpoint: String::from_utf8(checkpoint).unwrap(),
            records: logged,
        });
        self
    }
}

#[test]
fn vanthu_verify_checks_the_log_evidence_with_the_log_key() {
    let _limit = crate::helpers::time_limit();
    let dir = tempfile::tempdir().unwrap();
    let root = keys().join("ca/root.pem");
    let vkey = keys().join("log/log.vkey");
    let run = |b: &vanthu::bundle::Bundle, log_key: Option<&str>| {
        let path = dir.path().join("bundle.json");
        std::fs::write(&path, serde_json::to_vec(b).unwrap()).unwrap();
        let mut args = vec![
            "verify",
            path.to_str().unwrap(),
            "--trust",
            root.to_str().unwrap(),
        ];
        if let Some(k) = log_key {
            args.extend(["--log-key", k]);
        }
        let out = crate::helpers::vanthu(&args);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.success(), report["log"].clone(), stderr)
    };
    let good = bundle(at(2026, 11, 24));
    let (ok, log, stderr) = run(&good, Some(vkey.to_str().unwrap()));
    assert!(ok, "{log:#} {stderr}");
    assert_eq!(log["signature_checked"], true);
    assert_eq!(log["records_included"], 2);
    assert_eq!(log["tree_size"], 9);
    // The key inline, as GET /v1/log/key gives it, works the same.
    let inline = std::fs::read_to_string(&vkey).unwrap();
    assert!(run(&good, Some(inline.trim())).0);
    // Without the key the proofs are checked, and the report says the
    // checkpoint's signature was not.
    let (ok, log, stderr) = run(&good, None);
    assert!(ok, "{log:#}");
    assert_eq!(log["signature_checked"], false);
    assert!(stderr.contains("not checked"), "{stderr}");

    let fails = |b: &vanthu::bundle::Bundle, key: Option<&str>, why: &str| {
        let (ok, log, stderr) = run(b, key);
        assert!(!ok, "{why}: passed");
        assert!(
            log["problems"].to_string().contains(why),
            "{why}: {log:#} {stderr}"
        );
    };
    let key = Some(vkey.to_str().unwrap());
    // Another log's key (same name, other key) refuses the checkpoint.
    let other = vanthu::crypto::note::verifier_key(vanthu::config::DEV_TLOG_ORIGIN, &[9u8; 32]);
    fails(
        &good,
        Some(other.as_str()),
        "the checkpoint: the checkpoint is not signed by",
    );
    // A flipped byte in the checkpoint, a proof hash, or a record fails,
    // each saying which check.
    let mut b = good.clone();
    let ev = b.log.as_mut().unwrap();
    ev.checkpoint = ev.checkpoint.replacen("\n9\n", "\n8\n", 1);
    fails(&b, key, "the checkpoint");
    let mut b = good.clone();
    let r = &mut b.log.as_mut().unwrap().records[0];
    let line = r.proof.lines().nth(2).unwrap().to_owned();
    let mut flipped =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &line).unwrap();
    flipped[0] ^= 1;
    r.proof = r.proof.replacen(
        &line,
        &base64::Engine::encode(&base64::engine::general_purpose::STANDARD, flipped),
        1,
    );
    fails(&b, key, "position 5: not included");
    let mut b = good.clone();
    let r = &mut b.log.as_mut().unwrap().records[1];
    r.record = r.record.replacen("\"version\":7", "\"version\":8", 1);
    fails(&b, key, "position 7: not included");
    // A record moved to another position, or a proof against another checkpoint.
    let mut b = good.clone();
    b.log.as_mut().unwrap().records[1].position = 6;
    fails(&b, key, "position 6: its proof is for leaf index 6, not 5");
    // Without the signing record, the personal signature is not tied to the log.
    let mut b = good.clone();
    b.log.as_mut().unwrap().records.remove(0);
    fails(&b, key, "no included record holds the personal signature");
    // No log evidence at all.
    let mut b = good.clone();
    b.log = None;
    fails(&b, key, "carries no log evidence");
}

#[test]
fn vanthu_verify_checks_a_bundle_offline() {
    let _limit = crate::helpers::time_limit();
    let dir = tempfile::tempdir().unwrap();
    let root = keys().join("ca/root.pem");
    let run = |b: &vanthu::bundle::Bundle, trust: &Path| {
        let path = dir.path().join("bundle.json");
        std::fs::write(&path, serde_json::to_vec(b).unwrap()).unwrap();
        let out = crate::helpers::vanthu(&[
            "verify",
            path.to_str().unwrap(),
            "--trust",
            trust.to_str().unwrap(),
        ]);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        (out.status.success(), report)
    };
    let good = bundle(at(2026, 11, 24));
    let (ok, report) = run(&good, &root);
    assert!(ok, "{report:#}");
    assert_eq!(report["personal"]["indication"], "TOTAL_PASSED");
    assert_eq!(report["seal"]["indication"], "TOTAL_PASSED");
    assert_eq!(report["authority"]["passed"], true);

    // Someone edits the title in the bundle: the personal signature no longer matches.
    let mut edited = good.clone();
    edited.personal.payload.title.push_str(" (sửa)");
    let (ok, report) = run(&edited, &root);
    assert!(!ok);
    assert_eq!(report["personal"]["sub_indication"], "HASH_FAILURE");

    // A receiver that does not trust our root gets INDETERMINATE, exit 1.
    let (ok, report) = run(&good, &keys().join("special/untrusted-root.pem"));
    assert!(!ok);
    assert_eq!(
        report["personal"]["sub_indication"],
        "NO_CERTIFICATE_CHAIN_FOUND"
    );

    // A seal over another personal signature is caught.
    let mut swapped = good.clone();
    swapped.seal.payload.signature_sha256 = "00".repeat(32);
    let (ok, report) = run(&swapped, &root);
    assert!(!ok, "{report:#}");

    // The deputy's authority is judged from the bundle's org history.
    let mut relieved = good.clone();
    relieved.org.push(OrgEvent::OfficialRelieved {
        official: "svhtt-pgd-1".into(),
        agency: "SVHTT".into(),
        position: Position::DeputyHead,
        at: at(2026, 11, 1),
    });
    let (ok, report) = run(&relieved, &root);
    assert!(!ok);
    assert_eq!(report["authority"]["passed"], false);

    // A backdated acceptance instant (say, before a revocation) is caught:
    // the seal attests the instant.
    let mut backdated = good.clone();
    backdated.personal.recorded_at = at(2026, 6, 1);
    let (ok, report) = run(&backdated, &root);
    assert!(!ok);
    assert!(
        report["problems"].to_string().contains("the seal attests"),
        "{report:#}"
    );

    // Forged organisation history (the attacker appoints himself) is caught.
    let mut forged = good.clone();
    forged.org.push(OrgEvent::DelegationGranted {
        id: "forged".into(),
        form: vanthu::domain::org::DelegationForm::Tuq,
        from: "svhtt-giam-doc".into(),
        to: "svhtt-cv-vp".into(),
        agency: "SVHTT".into(),
        valid_from: at(2026, 1, 1),
        valid_until: at(2027, 1, 1),
        doc_types: vec!["BC".into()],
    });
    let (ok, report) = run(&forged, &root);
    assert!(!ok);
    assert!(
        report["problems"]
            .to_string()
            .contains("not the one the seal attests"),
        "{report:#}"
    );

    // An official's personal certificate cannot stand in for the agency seal.
    let mut fake_seal = good.clone();
    let k = key("officials/svhtt-pgd-1.key");
    let chain = vec![
        cert_der("officials/svhtt-pgd-1.pem"),
        cert_der("ca/issuing.pem"),
    ];
    fake_seal.seal.jws = sign_compact(&good.seal.payload.canonical(), &k, &chain, 0);
    let (ok, report) = run(&fake_seal, &root);
    assert!(!ok);
    assert_eq!(
        report["seal"]["indication"], "TOTAL_PASSED",
        "the signature itself is fine"
    );
    assert!(
        report["problems"]
            .to_string()
            .contains("not an agency seal certificate"),
        "{report:#}"
    );

    // Garbage is a clear error, not a panic.
    let path = dir.path().join("junk.json");
    std::fs::write(&path, b"{\"format\": 1}").unwrap();
    let out = crate::helpers::vanthu(&[
        "verify",
        path.to_str().unwrap(),
        "--trust",
        root.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a bundle"));
}

#[test]
fn vanthu_sign_prints_a_jws_the_verifier_accepts() {
    let _limit = crate::helpers::time_limit();
    let dir = tempfile::tempdir().unwrap();
    let when = at(2026, 11, 24);
    let p = payload("svhtt-pgd-1", Authority::Kt, 5, when);
    let path = dir.path().join("payload.json");
    // The server's envelope, pretty-printed: `sign` canonicalises it.
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&serde_json::json!({"payload": p, "version": 5})).unwrap(),
    )
    .unwrap();
    let k = keys().join("officials/svhtt-pgd-1.key");
    let c = keys().join("officials/svhtt-pgd-1.pem");
    let i = keys().join("ca/issuing.pem");
    let out = crate::helpers::vanthu(&[
        "sign",
        "--key",
        k.to_str().unwrap(),
        "--cert",
        c.to_str().unwrap(),
        "--chain",
        i.to_str().unwrap(),
        "--payload",
        path.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let jws = String::from_utf8(out.stdout).unwrap();
    let f = fixture();
    let report = verify(
        jws.trim(),
        &Expectation {
            payload: &p.canonical(),
            at: when,
            trust: &f.trust,
        },
    );
    assert!(report.passed(), "{:?}", report.checks);
    // A key that does not match the certificate is refused.
    let wrong = keys().join("officials/svhtt-pgd-2.key");
    let out = crate::helpers::vanthu(&[
        "sign",
        "--key",
        wrong.to_str().unwrap(),
        "--cert",
        c.to_str().unwrap(),
        "--payload",
        path.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
}

/// x5c smuggles a fake CA with the real issuing CA's name, and the trust
/// store holds a newer, empty CRL signed by that fake key: the revoked
/// certificate must still be judged REVOKED (only the verified path's issuer
/// may vouch for revocation).
#[test]
fn a_fake_ca_in_x5c_cannot_vouch_for_revocation() {
    let _limit = crate::helpers::time_limit();
    use rcgen::{
        CertificateParams, CertificateRevocationListParams, DistinguishedName, DnType, IsCa,
        Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, SerialNumber, PKCS_ED25519,
    };
    let mut f = fixture();
    let fake_key = KeyPair::generate_for(&PKCS_ED25519).unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "VN");
    dn.push(
        DnType::OrganizationName,
        "vanthu development PKI (NOT FOR PRODUCTION)",
    );
    dn.push(DnType::CommonName, "vanthu Dev Issuing CA");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let fake_cert = params.self_signed(&fake_key).unwrap();
    let fake = Issuer::new(params, fake_key);
    let fake_crl = CertificateRevocationListParams {
        this_update: rcgen::date_time_ymd(2026, 11, 10),
        next_update: rcgen::date_time_ymd(2027, 12, 1),
        crl_number: SerialNumber::from(99u64),
        issuing_distribution_point: None,
        revoked_certs: vec![],
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&fake)
    .unwrap();
    f.trust.crls.insert(
        0,
        std::sync::Arc::new(vanthu::crypto::pki::Crl::new(fake_crl.der().to_vec())),
    );

    let when = at(2026, 11, 24);
    let k = key("special/revoked.key");
    let chain = vec![
        cert_der("special/revoked.pem"),
        fake_cert.der().to_vec(),
        f.issuing.clone(),
    ];
    let expected = payload("svhtt-pgd-2", Authority::Kt, 1, when).canonical();
    let jws = sign_compact(&expected, &k, &chain, when.timestamp());
    let report = verify(
        &jws,
        &Expectation {
            payload: &expected,
            at: when,
            trust: &f.trust,
        },
    );
    assert_eq!(
        (report.indication, report.sub_indication),
        (Indication::TotalFailed, Some(SubIndication::Revoked)),
        "{:?}",
        report.checks
    );
}

/// A partitioned CRL (issuing distribution point: "only user certificates")
/// that does not list the revoked certificate, newer than the complete CRL
/// that does: used as complete, it would report the certificate as good
/// (RFC 5280 §5.2.5, §6.3.3). It is set aside; the complete CRL decides.
#[test]
fn a_partitioned_crl_cannot_clear_a_revoked_certificate() {
    let _limit = crate::helpers::time_limit();
    use rcgen::{
        CertificateRevocationListParams, CrlDistributionPoint, CrlIssuingDistributionPoint,
        CrlScope, KeyIdMethod, SerialNumber,
    };
    use vanthu::crypto::pki::{revocation, Revocation};
    let anchor = DateTime::parse_from_rfc3339(&Manifest::load(&keys()).unwrap().anchor)
        .unwrap()
        .with_timezone(&Utc);
    let when = at(2026, 11, 20);
    let partition = CertificateRevocationListParams {
        this_update: time::OffsetDateTime::from_unix_timestamp(when.timestamp() - 3600).unwrap(),
        next_update: time::OffsetDateTime::from_unix_timestamp(when.timestamp() + 86400 * 30)
            .unwrap(),
        crl_number: SerialNumber::from(2u64),
        issuing_distribution_point: Some(CrlIssuingDistributionPoint {
            distribution_point: CrlDistributionPoint {
                uris: vec!["http://crl.example/partition-1.crl".into()],
            },
            scope: Some(CrlScope::UserCertsOnly),
        }),
        revoked_certs: vec![],
        key_identifier_method: KeyIdMethod::Sha256,
    };
    let partition = devkeys::sign_crl_as_issuing_ca(anchor, partition).unwrap();
    let complete = pem_blocks(&read("ca/crl.pem"), "X509 CRL").unwrap();
    let ee = cert_der("special/revoked.pem");
    let ca = cert_der("ca/issuing.pem");
    let mut crls = complete.clone();
    crls.push(partition.clone());
    match revocation(&ee, &ca, &vanthu::crypto::pki::parse_crls(crls), when) {
        Revocation::RevokedBefore { .. } => {}
        other => panic!("the partition cleared a revoked certificate: {other:?}"),
    }
    // Alone, the partition is no evidence at all.
    match revocation(
        &ee,
        &ca,
        &vanthu::crypto::pki::parse_crls(vec![partition]),
        when,
    ) {
        Revocation::Unknown(why) => assert!(why.contains("distribution point"), "{why}"),
        other => panic!("{other:?}"),
    }
}

/// Serves `body` to every HTTP request on a local port until the process
/// ends; returns the URL.
fn serve_bytes(body: std::sync::Arc<std::sync::Mutex<Vec<u8>>>) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/issuing.crl", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut stream in listener.incoming().map_while(Result::ok) {
            let mut buf = [0u8; 2048];
            let _ = stream.read(&mut buf);
            let bytes = body.lock().unwrap().clone();
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/pkix-crl\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                bytes.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&bytes);
        }
    });
    url
}

/// CRLs are not loaded once for ever: the file is reloaded when it changes
/// and CRL URLs are fetched on a schedule. A newest CRL past its nextUpdate
/// makes `/readyz` say so and signatures INDETERMINATE/TRY_LATER; a fetched
/// CRL that revokes a signer's certificate takes effect without a restart.
#[tokio::test]
async fn crls_are_reloaded_fetched_and_their_expiry_is_reported() {
    let _limit = crate::helpers::time_limit();
    use crate::helpers::Api;
    use rcgen::{CertificateRevocationListParams, KeyIdMethod, RevokedCertParams, SerialNumber};
    let keys = crate::helpers::keys_anchored_at(Utc::now());
    let manifest = Manifest::load(&keys).unwrap();
    let anchor = DateTime::parse_from_rfc3339(&manifest.anchor)
        .unwrap()
        .with_timezone(&Utc);
    let odt = |t: DateTime<Utc>| time::OffsetDateTime::from_unix_timestamp(t.timestamp()).unwrap();
    let crl = |number: u64, this: DateTime<Utc>, next: DateTime<Utc>, revoked: Option<&str>| {
        let revoked_certs = revoked
            .map(|serial| RevokedCertParams {
                serial_number: SerialNumber::from_slice(&hex::decode(serial).unwrap()),
                revocation_time: odt(this),
                reason_code: None,
                invalidity_date: None,
            })
            .into_iter()
            .collect();
        devkeys::sign_crl_as_issuing_ca(
            anchor,
            CertificateRevocationListParams {
                this_update: odt(this),
                next_update: odt(next),
                crl_number: SerialNumber::from(number),
                issuing_distribution_point: None,
                revoked_certs,
                key_identifier_method: KeyIdMethod::Sha256,
            },
        )
        .unwrap()
    };
    let pem_of = |der: Vec<u8>| pem::encode(&pem::Pem::new("X509 CRL", der));
    let served = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let url = serve_bytes(served.clone());
    let api = Api::start(&[
        ("VANTHU_KEYS_DIR", keys.to_str().unwrap()),
        ("VANTHU_CRL_REFRESH_SECONDS", "1"),
        ("VANTHU_CRL_URLS", &url),
    ]);
    async fn ready(api: &Api) -> crate::helpers::Resp {
        api.send(api.http.get(format!("{}/readyz", api.server.url)))
            .await
    }
    assert_eq!(ready(&api).await.status, 200);

    // The only CRL expired yesterday: not ready, and signing says TRY_LATER.
    let now = Utc::now();
    std::fs::write(
        keys.join("ca/crl.pem"),
        pem_of(crl(
            7,
            now - Duration::days(30),
            now - Duration::days(1),
            None,
        )),
    )
    .unwrap();
    let r = crate::helpers::eventually(
        "/readyz to report the lapsed CRL (503)",
        std::time::Duration::from_secs(10),
        || async {
            let r = ready(&api).await;
            (r.status == 503).then_some(r)
        },
    )
    .await;
    assert!(
        r.body["detail"].as_str().unwrap().contains("nextUpdate"),
        "{}",
        r.body
    );
    let id = api
        .draft(
            "svhtt-cv-qlvh",
            "BC",
            serde_json::json!([{ "agency": "UBND" }]),
        )
        .await;
    api.route_for_signing(&id, "svhtt-cv-qlvh", "svhtt-pgd-1")
        .await;
    let s = api.sign(&id, "svhtt-pgd-1", "KT.").await;
    assert_eq!(s.status, 422, "{}", s.body);
    assert_eq!(
        s.body["report"]["sub_indication"], "TRY_LATER",
        "{}",
        s.body
    );

    // A current CRL is served at the URL and revokes the signer: ready
    // again, and the signer's certificate now counts as revoked.
    *served.lock().unwrap() = crl(
        8,
        now - Duration::hours(1),
        now + Duration::days(7),
        Some(&manifest.officials["svhtt-pgd-1"].serial),
    );
    crate::helpers::eventually(
        "/readyz to be ready again on the current CRL",
        std::time::Duration::from_secs(10),
        || async {
            let r = ready(&api).await;
            (r.status == 200).then_some(r)
        },
    )
    .await;
    let s = api.sign(&id, "svhtt-pgd-1", "KT.").await;
    assert_eq!(s.status, 422, "{}", s.body);
    assert_eq!(s.body["report"]["sub_indication"], "REVOKED", "{}", s.body);
}

/// A bundle sealed with seal v1 by the service before seal v2
/// (`tests/data/bundle-v1/`: issued at 1679a1b while a webhook was
/// subscribed, so it carries the whole organisation stream) still passes
/// `vanthu verify` with the root and log key of the run that made it.
#[test]
fn a_v1_bundle_still_passes_vanthu_verify() {
    let _limit = crate::helpers::time_limit();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/bundle-v1");
    let bundle = std::fs::read(dir.join("bundle.json")).unwrap();
    assert!(!String::from_utf8_lossy(&bundle).contains("seal_version"));
    crate::helpers::verifies_offline(&bundle, &dir);
}
