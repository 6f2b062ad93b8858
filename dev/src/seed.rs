//! `vanthu bench seed`: fills a log with realistic document streams for
//! load and projection measurements: documents drafted, routed, signed
//! (real Ed25519 signatures with the development keys), issued with a real
//! seal and gap-free numbers, received by one to three agencies, assigned,
//! and half of them completed. Every command goes through
//! `service::commands::run`, as through the API, many documents at a time
//! so that group commit batches their appends.
//!
//! Must never: run against a production log (it writes the demo
//! organisation and fake documents); it refuses a log that holds documents.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use uuid::Uuid;

use vanthu::clock::Clock;
use vanthu::crypto::keystore::{seal_compact, FileKey, FileKeystore};
use vanthu::crypto::pki::{pem_blocks, Trust};
use vanthu::domain::authority::SigningAct;
use vanthu::domain::calendar::Calendar;
use vanthu::domain::document::{self, Command, Ctx, Document, Draft, Recipient, RoutePurpose};
use vanthu::domain::numbering::Policy;
use vanthu::domain::org::{Authority, Org, STREAM as ORG_STREAM};
use vanthu::domain::signing::ContentRef;
use vanthu::service::commands::{self, Env, IfMatch, Lock, Make, RegisterLocks, Spec};
use vanthu::store::{ExpectedVersion, NewEvent, RocksLog, StreamAppend};

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

/// Documents in flight at once.
const CONCURRENCY: usize = 64;

/// What every seeded document needs.
struct Seeder {
    log: RocksLog,
    org: Arc<Org>,
    calendar: Calendar,
    policy: Policy,
    trust: Trust,
    signers: BTreeMap<&'static str, FileKey>,
    seals: FileKeystore,
    /// The organisation as the service folds it (the seal's digest of it).
    org_state: Arc<vanthu::service::org::OrgState>,
    locks: RegisterLocks,
    documents: vanthu::service::load::DocumentCache,
    /// January 5th of the year the development keys are anchored in: their
    /// certificates and the demo appointments hold all that year.
    start: DateTime<Utc>,
}

/// Appends documents until the log holds about `events` records (the
/// documents in flight then finish: up to `CONCURRENCY` more). Refuses a
/// log that already holds documents.
pub async fn seed(log: &RocksLog, keys: &Path, events: u64) -> Result<Seeded, Error> {
    fill(log, keys, events, false).await
}

/// Appends about `events` more records of documents to a log seeded before
/// (to measure the same service at a larger log).
pub async fn add(log: &RocksLog, keys: &Path, events: u64) -> Result<Seeded, Error> {
    fill(log, keys, events, true).await
}

async fn fill(log: &RocksLog, keys: &Path, events: u64, more: bool) -> Result<Seeded, Error> {
    let started = Instant::now();
    let head0 = log.head();
    // The demo organisation, as the service records it.
    let demo = vanthu::devkeys::DemoOrg::load(&keys.join("org.toml"))?;
    let manifest = vanthu::devkeys::Manifest::load(keys)?;
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
    if !more && log.head() > org_events.len() as u64 + 1 {
        return Err("the log already holds documents; seed an empty data directory".into());
    }
    let mut org = Org::default();
    for e in &org_events {
        org.apply(e);
    }
    let trust = Trust::new(
        pem_blocks(
            &std::fs::read_to_string(keys.join("ca/root.pem"))?,
            "CERTIFICATE",
        )?,
        vanthu::crypto::pki::parse_crls(pem_blocks(
            &std::fs::read_to_string(keys.join("ca/crl.pem"))?,
            "X509 CRL",
        )?),
    );
    let issuing = keys.join("ca/issuing.pem");
    let load_key = |dir: &str, id: &str| -> Result<FileKey, Error> {
        let base = keys.join(dir);
        Ok(FileKey::load(
            &base.join(format!("{id}.key")),
            &[&base.join(format!("{id}.pem")), &issuing],
        )?)
    };
    let mut signers = BTreeMap::new();
    let mut seals = FileKeystore::default();
    for a in &AGENCIES {
        signers.insert(a.signer, load_key("officials", a.signer)?);
        seals.insert(a.code, load_key("seals", a.code)?);
    }
    let seeder = Arc::new(Seeder {
        log: log.clone(),
        org: Arc::new(org),
        calendar: Calendar::vietnam(),
        policy: Policy::default(),
        trust,
        signers,
        seals,
        org_state: vanthu::service::org::OrgState::load(log)?,
        locks: RegisterLocks::default(),
        documents: Default::default(),
        start: DateTime::parse_from_rfc3339(&manifest.anchor)
            .ok()
            .and_then(|a| Utc.with_ymd_and_hms(a.year(), 1, 5, 1, 0, 0).single())
            .ok_or("the keys' manifest has no anchor instant")?,
    });
    // New documents start while the log is short of the target; the ones
    // in flight then finish, so every seeded document is complete.
    // Each document is a task, so the runtime's threads share the work.
    let mut documents = 0u64;
    // Added documents get instants of their own (document `i` is drafted at
    // an instant derived from `i`).
    let mut next = if more { log.head() } else { 0 };
    let mut running = tokio::task::JoinSet::new();
    loop {
        while running.len() < CONCURRENCY && log.head() - head0 < events {
            let seeder = Arc::clone(&seeder);
            let i = next;
            next += 1;
            running.spawn(async move { seeder.document(i).await });
        }
        match running.join_next().await {
            Some(done) => done??,
            None => break,
        }
        documents += 1;
    }
    Ok(Seeded {
        documents,
        events: log.head() - head0,
        seconds: started.elapsed().as_secs_f64(),
    })
}

impl Seeder {
    /// Document `i`: drafted at its own instant of the keys' year,
    /// then carried through the commands an agency and its recipients run.
    async fn document(&self, i: u64) -> Result<(), Error> {
        // Documents spread over the keys' year, a few minutes apart.
        let at = self.start + Duration::seconds((i * 97) as i64 % (340 * 86_400));
        let clock = Clock::starting_at(at);
        let org = || Arc::clone(&self.org);
        let env = Env {
            log: &self.log,
            org: &org,
            clock: &clock,
            calendar: &self.calendar,
            numbering: &self.policy,
            locks: &self.locks,
            documents: &self.documents,
        };
        let a = &AGENCIES[(i % 4) as usize];
        let others: Vec<&Agency> = AGENCIES.iter().filter(|x| x.code != a.code).collect();
        let recipients: Vec<&Agency> = (0..1 + (i % 3) as usize)
            .map(|k| others[(i as usize + k) % others.len()])
            .collect();
        let id = Uuid::now_v7();
        let draft = Draft {
            doc_type: ["BC", "KH", "CV", "TB", "QD"][(i % 5) as usize].into(),
            title: format!("Văn bản số {i} về triển khai nhiệm vụ"),
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
        self.run(&env, id, true, a.author, &no_lock, &|_, _| {
            Ok(Command::Draft {
                id,
                agency: a.code.into(),
                drafting_unit: None,
                draft: draft.clone(),
            })
        })
        .await?;
        self.run(&env, id, false, a.author, &no_lock, &|_, _| {
            Ok(Command::Route {
                to: a.signer.into(),
                purpose: RoutePurpose::Signing,
                note: None,
            })
        })
        .await?;
        // A real signature over the real payload, accepted as the server
        // accepts one.
        self.run(&env, id, false, a.signer, &no_lock, &|doc, ctx| {
            let doc = doc.ok_or("no document")?;
            let act = SigningAct {
                official: a.signer,
                agency: a.code,
                doc_type: &doc.draft.doc_type,
                form: Authority::parse(a.form).ok_or("form")?,
                at: ctx.now,
            };
            let verdict = vanthu::domain::authority::judge(ctx.org, &act);
            let payload = doc.signing_payload(a.signer, &verdict, ctx.now);
            let jws = seal_compact(
                &self.signers[a.signer],
                &payload.canonical(),
                ctx.now.timestamp(),
            )?;
            let accepted = document::accept(ctx.org, doc, a.signer, &jws, &self.trust, ctx.now)
                .map_err(|r| format!("the seeded signature was refused: {r:?}"))?;
            Ok(Command::Sign(accepted))
        })
        .await?;
        // Issued with the register's next number and the agency's seal.
        self.run(
            &env,
            id,
            false,
            a.clerk,
            &commands::issue_register,
            &|doc, ctx| {
                let doc = doc.ok_or("no document")?;
                Ok(commands::issue(
                    &self.log,
                    &self.seals,
                    &self.org_state,
                    doc,
                    ctx,
                )?)
            },
        )
        .await?;
        for r in &recipients {
            let register = |doc: Option<&Document>, ctx: &Ctx<'_>| {
                doc.and_then(|d| document::receipt_register(d, r.code, ctx.now).ok())
                    .map(|reg| reg.stream_id())
            };
            self.run(&env, id, false, r.clerk, &register, &|doc, ctx| {
                let doc = doc.ok_or("no document")?;
                let register = document::receipt_register(doc, r.code, ctx.now)?;
                let number = commands::next_number(&self.log, &register.stream_id())?;
                Ok(Command::Receive {
                    agency: r.code.into(),
                    register,
                    number,
                })
            })
            .await?;
            self.run(&env, id, false, r.leader, &no_lock, &|_, _| {
                Ok(Command::Assign {
                    agency: r.code.into(),
                    lead: r.lead_unit.into(),
                    coordinating: vec!["VP".into()],
                    fyi: vec![],
                    handler: Some(r.author.into()),
                    instruction: "Chủ trì tham mưu, báo cáo đúng hạn.".into(),
                    deadline: None,
                })
            })
            .await?;
            if i.is_multiple_of(2) {
                self.run(&env, id, false, r.author, &no_lock, &|_, _| {
                    Ok(Command::Complete {
                        agency: r.code.into(),
                        unit: None,
                    })
                })
                .await?;
            }
        }
        Ok(())
    }
}

impl Seeder {
    /// One command on document `id`, through the service.
    async fn run(
        &self,
        env: &Env<'_>,
        id: Uuid,
        create: bool,
        actor: &str,
        lock: &Lock<'_>,
        make: &Make<'_, Error>,
    ) -> Result<(), Error> {
        let spec = Spec {
            actor,
            document: id,
            create,
            if_match: IfMatch::Absent,
            idempotency: None,
            request_id: None,
        };
        commands::run(env, spec, lock, make).await?;
        Ok(())
    }
}

/// Commands that number nothing take no lock.
fn no_lock(_: Option<&Document>, _: &Ctx<'_>) -> Option<String> {
    None
}
