//! `vanthu bench seed`: fills a log with realistic document streams for
//! load and projection measurements: documents drafted, routed, signed
//! (real Ed25519 signatures with the development keys), issued with a real
//! seal and gap-free numbers, received by one to three agencies, assigned,
//! and half of them completed. Every event comes from
//! `domain::document::decide`, as through the API.
//!
//! Must never: run against a production log (it writes the demo
//! organisation and fake documents); it refuses a log that holds documents.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use chrono::{DateTime, Duration, TimeZone, Utc};
use uuid::Uuid;

use crate::crypto::keystore::{seal_compact, FileKey};
use crate::crypto::pki::{pem_blocks, Trust};
use crate::domain::authority::SigningAct;
use crate::domain::calendar::Calendar;
use crate::domain::document::{
    self, decide, evolve, Command, Ctx, Decision, Document, DocumentEvent, Draft, Recipient,
    RoutePurpose, NUMBER_ALLOCATED,
};
use crate::domain::numbering::Policy;
use crate::domain::org::{Org, STREAM as ORG_STREAM};
use crate::domain::signing::{org_sha256, ContentRef};
use crate::store::{EventLog, ExpectedVersion, NewEvent, StreamAppend};

/// What seeding did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Seeded {
    pub documents: u64,
    pub events: u64,
    pub seconds: f64,
}

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Agency {
    code: &'static str,
    author: &'static str,
    signer: &'static str,
    form: &'static str,
    clerk: &'static str,
    leader: &'static str,
    lead_unit: &'static str,
}

const AGENCIES: [Agency; 4] = [
    Agency {
        code: "UBND",
        author: "ubnd-cv-kt",
        signer: "ubnd-chu-tich",
        form: "TM.",
        clerk: "ubnd-van-thu",
        leader: "ubnd-pct-1",
        lead_unit: "KT",
    },
    Agency {
        code: "SNV",
        author: "snv-cv-tcbc",
        signer: "snv-pgd-1",
        form: "KT.",
        clerk: "snv-van-thu",
        leader: "snv-giam-doc",
        lead_unit: "TCBC",
    },
    Agency {
        code: "SVHTT",
        author: "svhtt-cv-qlvh",
        signer: "svhtt-pgd-1",
        form: "KT.",
        clerk: "svhtt-van-thu",
        leader: "svhtt-giam-doc",
        lead_unit: "QLVH",
    },
    Agency {
        code: "STTTT",
        author: "stttt-cv-bcvt",
        signer: "stttt-pgd-1",
        form: "KT.",
        clerk: "stttt-van-thu",
        leader: "stttt-giam-doc",
        lead_unit: "BCVT",
    },
];

/// Appends documents until the log holds about `events` records.
pub async fn seed(log: &EventLog, keys: &Path, events: u64) -> Result<Seeded, Error> {
    let started = Instant::now();
    let head0 = log.head();
    // The demo organisation, as the service records it.
    let demo = crate::devkeys::DemoOrg::load(&keys.join("org.toml"))?;
    let manifest = crate::devkeys::Manifest::load(keys)?;
    let org_events = demo.org_events(&manifest)?;
    if log.stream_version(ORG_STREAM)?.is_none() {
        let new = org_events
            .iter()
            .map(|e| NewEvent::new(e.event_type(), serde_json::to_value(e).unwrap_or_default()))
            .collect();
        log.append(
            vec![StreamAppend::new(
                ORG_STREAM,
                ExpectedVersion::NoStream,
                new,
            )],
            Some("demo-organisation-v1"),
        )
        .await?;
    }
    if log.head() > org_events.len() as u64 + 1 {
        return Err("the log already holds documents; seed an empty data directory".into());
    }
    let mut org = Org::default();
    for e in &org_events {
        org.apply(e);
    }
    let org_sha = org_sha256(&org_events);
    let org_version = org_events.len() as u64;
    let calendar = Calendar::vietnam();
    let policy = Policy::default();
    let trust = Trust {
        anchors: pem_blocks(
            &std::fs::read_to_string(keys.join("ca/root.pem"))?,
            "CERTIFICATE",
        )?,
        crls: crate::crypto::pki::parse_crls(pem_blocks(
            &std::fs::read_to_string(keys.join("ca/crl.pem"))?,
            "X509 CRL",
        )?),
    };
    let issuing = keys.join("ca/issuing.pem");
    let load_key = |dir: &str, id: &str| -> Result<FileKey, Error> {
        let base = keys.join(dir);
        Ok(FileKey::load(
            &base.join(format!("{id}.key")),
            &[&base.join(format!("{id}.pem")), &issuing],
        )?)
    };
    let mut signers = BTreeMap::new();
    let mut seals = BTreeMap::new();
    for a in &AGENCIES {
        signers.insert(a.signer, load_key("officials", a.signer)?);
        seals.insert(a.code, load_key("seals", a.code)?);
    }
    let mut numbers: BTreeMap<String, u64> = BTreeMap::new();
    // Documents spread over 2026 working hours, a few minutes apart.
    let start: DateTime<Utc> = Utc
        .with_ymd_and_hms(2026, 1, 5, 1, 0, 0)
        .single()
        .ok_or("time")?;
    let mut documents = 0u64;
    let mut i = 0u64;
    while log.head() - head0 < events {
        let now = start + Duration::seconds((i * 97) as i64 % (340 * 86_400));
        let a = &AGENCIES[(i % 4) as usize];
        let others: Vec<&Agency> = AGENCIES.iter().filter(|x| x.code != a.code).collect();
        let n_recipients = 1 + (i % 3) as usize;
        let recipients: Vec<&Agency> = (0..n_recipients)
            .map(|k| others[(i as usize + k) % others.len()])
            .collect();
        let ctx = |actor: &'static str| Ctx {
            org: &org,
            actor,
            now,
            calendar: &calendar,
            numbering: &policy,
        };
        let id = Uuid::now_v7();
        let mut doc: Option<Document> = None;
        let mut all: Vec<DocumentEvent> = Vec::new();
        let mut registers: Vec<(String, u64, serde_json::Value)> = Vec::new();
        let mut run =
            |doc: &mut Option<Document>, actor: &'static str, cmd: Command| -> Result<(), Error> {
                let Decision {
                    events, register, ..
                } = decide(doc.as_ref(), cmd, &ctx(actor))?;
                for e in &events {
                    *doc = evolve(doc.take(), e);
                }
                all.extend(events);
                if let Some((key, allocated)) = register {
                    registers.push((
                        key.stream_id(),
                        allocated.number,
                        serde_json::to_value(&allocated)?,
                    ));
                }
                Ok(())
            };
        let draft = Draft {
            doc_type: ["BC", "KH", "CV", "TB", "QD"][(i % 5) as usize].into(),
            title: format!("Văn bản số {i} về triển khai nhiệm vụ năm 2026"),
            content: vec![ContentRef {
                name: "van-ban.pdf".into(),
                sha256: format!("{:064x}", i),
            }],
            urgency: Default::default(),
            confidentiality: Default::default(),
            recipients: recipients
                .iter()
                .map(|r| Recipient {
                    agency: r.code.into(),
                    reply_due: None,
                    reply_within_working_days: Some(5 + (i % 10) as u32),
                })
                .collect(),
        };
        run(
            &mut doc,
            a.author,
            Command::Draft {
                id,
                agency: a.code.into(),
                drafting_unit: None,
                draft,
            },
        )?;
        run(
            &mut doc,
            a.author,
            Command::Route {
                to: a.signer.into(),
                purpose: RoutePurpose::Signing,
                note: None,
            },
        )?;
        // Sign: a real signature over the real payload, accepted as the
        // server accepts one.
        let d = doc.clone().ok_or("no document")?;
        let act = SigningAct {
            official: a.signer,
            agency: a.code,
            doc_type: &d.draft.doc_type,
            form: crate::domain::org::Authority::parse(a.form).ok_or("form")?,
            at: now,
        };
        let verdict = crate::domain::authority::judge(&org, &act);
        let payload = d.signing_payload(a.signer, &verdict, now);
        let jws = seal_compact(&signers[a.signer], &payload.canonical(), now.timestamp())?;
        let accepted = document::accept(&org, &d, a.signer, &jws, &trust, now)
            .map_err(|r| format!("the seeded signature was refused: {r:?}"))?;
        run(&mut doc, a.signer, Command::Sign(accepted))?;
        // Issue with the next number and a real seal.
        let d = doc.clone().ok_or("no document")?;
        let plan = document::plan_issue(&d, &ctx(a.clerk))?;
        let number = numbers
            .get(&plan.register.stream_id())
            .copied()
            .unwrap_or(0)
            + 1;
        let seal_payload = plan
            .seal_payload(&d, number, org_sha.clone())
            .ok_or("unsigned")?;
        let seal = seal_compact(&seals[a.code], &seal_payload.canonical(), now.timestamp())?;
        run(
            &mut doc,
            a.clerk,
            Command::Issue {
                plan,
                number,
                seal,
                seal_payload,
                org_version,
            },
        )?;
        for r in &recipients {
            let d = doc.clone().ok_or("no document")?;
            let register = document::receipt_register(&d, r.code, now)?;
            let number = numbers.get(&register.stream_id()).copied().unwrap_or(0) + 1;
            run(
                &mut doc,
                r.clerk,
                Command::Receive {
                    agency: r.code.into(),
                    register,
                    number,
                },
            )?;
            run(
                &mut doc,
                r.leader,
                Command::Assign {
                    agency: r.code.into(),
                    lead: r.lead_unit.into(),
                    coordinating: vec!["VP".into()],
                    fyi: vec![],
                    handler: Some(r.author.into()),
                    instruction: "Chủ trì tham mưu, báo cáo đúng hạn.".into(),
                    deadline: None,
                },
            )?;
            if i.is_multiple_of(2) {
                run(
                    &mut doc,
                    r.author,
                    Command::Complete {
                        agency: r.code.into(),
                        unit: None,
                    },
                )?;
            }
        }
        let mut appends = vec![StreamAppend::new(
            document::stream_id(id),
            ExpectedVersion::NoStream,
            all.iter()
                .map(|e| NewEvent::new(e.event_type(), serde_json::to_value(e).unwrap_or_default()))
                .collect(),
        )];
        for (stream, number, payload) in registers {
            appends.push(StreamAppend::new(
                stream.clone(),
                match number - 1 {
                    0 => ExpectedVersion::NoStream,
                    v => ExpectedVersion::Exact(v),
                },
                vec![NewEvent::new(NUMBER_ALLOCATED, payload)],
            ));
            numbers.insert(stream, number);
        }
        log.append(appends, None).await?;
        documents += 1;
        i += 1;
    }
    Ok(Seeded {
        documents,
        events: log.head() - head0,
        seconds: started.elapsed().as_secs_f64(),
    })
}
