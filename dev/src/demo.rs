//! `vanthu demo`: plays the story the project grew from against a running
//! server, over HTTP, as the officials' clients would, and prints each step
//! with the resulting state.
//!
//! The story: a Sở Văn hóa và Thể thao specialist drafts a report, the
//! deputy director signs it "KT. Giám đốc", the clerk issues it as
//! `NN/BC-SVHTT`; the provincial People's Committee issues a plan
//! `NN/KH-UBND` to three departments with a reply deadline of 5 working
//! days; each department's clerk receives it, a leader assigns it, two
//! reply on time and one late (the development clock is moved past the
//! deadline, so the server must run with `dev_clock = true`).
//!
//! Every request states the status it expects; any other status stops the
//! demo with the server's problem response. Signing happens here, with the
//! officials' development keys: their private keys never reach the server.
//!
//! Must never: talk to the store directly or use anything but the public
//! HTTP API and the development keys.

use std::io::Write;
use std::path::{Path, PathBuf};

use reqwest::Method;
use serde_json::{json, Value};

use vanthu::crypto::keystore::{seal_compact, FileKey};

/// Why the demo stopped.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("HTTP: {0}")]
    Http(#[from] reqwest::Error),
    #[error("step {step:?}: expected HTTP {expected}, got {status}: {body}")]
    Unexpected {
        step: String,
        expected: u16,
        status: u16,
        body: String,
    },
    #[error("{0}")]
    Setup(String),
    #[error("the bundle does not verify: {0}")]
    Verification(String),
}

/// One request the demo made and what came back.
#[derive(Debug, Clone)]
pub struct Step {
    pub who: String,
    pub what: String,
    pub status: u16,
    pub body: Value,
}

/// The documents the story produced.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub report: String,
    pub report_reference: String,
    pub plan: String,
    pub plan_reference: String,
    /// Reply document id per department.
    pub replies: Vec<(String, String)>,
    pub steps: Vec<Step>,
}

/// A demo client.
pub struct Demo<'w> {
    http: reqwest::Client,
    base: String,
    keys: PathBuf,
    jwt_key: Vec<u8>,
    out: &'w mut (dyn Write + Send),
    steps: Vec<Step>,
}

impl<'w> Demo<'w> {
    /// A client of the server at `base` using the development keys in `keys`.
    pub fn new(
        base: &str,
        keys: &Path,
        out: &'w mut (dyn Write + Send),
    ) -> Result<Self, DemoError> {
        let jwt_key = std::fs::read(keys.join("jwt/jwt.key")).map_err(|e| {
            DemoError::Setup(format!("{}: {e}", keys.join("jwt/jwt.key").display()))
        })?;
        Ok(Self {
            http: vanthu::outbound::client(std::time::Duration::from_secs(120), None)
                .map_err(|e| DemoError::Setup(e.to_string()))?,
            base: base.trim_end_matches('/').to_owned(),
            keys: keys.to_owned(),
            jwt_key,
            out,
            steps: vec![],
        })
    }

    fn token(&self, who: &str) -> Result<String, DemoError> {
        vanthu::http::auth::mint_official(&self.jwt_key, who, chrono::Duration::hours(1))
            .map_err(|e| DemoError::Setup(format!("minting a token for {who}: {e}")))
    }

    fn say(&mut self, line: impl AsRef<str>) {
        let _ = writeln!(self.out, "{}", line.as_ref());
    }

    /// One request by `who`; anything but `expect` stops the demo.
    async fn call(
        &mut self,
        who: &str,
        what: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
        expect: u16,
    ) -> Result<Value, DemoError> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(self.token(who)?);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
        if status != expect {
            return Err(DemoError::Unexpected {
                step: what.to_owned(),
                expected: expect,
                status,
                body: text,
            });
        }
        self.steps.push(Step {
            who: who.to_owned(),
            what: what.to_owned(),
            status,
            body: body.clone(),
        });
        Ok(body)
    }

    async fn post(
        &mut self,
        who: &str,
        what: &str,
        path: &str,
        body: Value,
    ) -> Result<Value, DemoError> {
        self.call(who, what, Method::POST, path, Some(body), 200)
            .await
    }

    fn describe(doc: &Value) -> String {
        let mut s = format!(
            "status {}, version {}",
            doc["status"].as_str().unwrap_or("?"),
            doc["version"]
        );
        if let Some(r) = doc["issue"]["reference"].as_str() {
            s.push_str(&format!(
                ", Số: {r} of {}",
                doc["issue"]["issued_on"].as_str().unwrap_or("?")
            ));
        }
        s
    }

    /// Uploads a text as the document's content and drafts it.
    async fn draft(
        &mut self,
        who: &str,
        doc_type: &str,
        title: &str,
        recipients: Value,
    ) -> Result<String, DemoError> {
        let resp = self
            .http
            .post(format!("{}/v1/blobs", self.base))
            .bearer_auth(self.token(who)?)
            .header("Content-Type", "text/plain; charset=utf-8")
            .body(format!("{title}\n\n(nội dung văn bản)\n"))
            .send()
            .await?;
        let status = resp.status().as_u16();
        let blob: Value = resp.json().await?;
        if status != 201 {
            return Err(DemoError::Unexpected {
                step: "upload content".into(),
                expected: 201,
                status,
                body: blob.to_string(),
            });
        }
        let doc = self
            .call(
                who,
                &format!("draft {doc_type}"),
                Method::POST,
                "/v1/documents",
                Some(json!({
                    "doc_type": doc_type,
                    "title": title,
                    "content": [{ "name": "noi-dung.txt", "sha256": blob["sha256"] }],
                    "recipients": recipients,
                })),
                201,
            )
            .await?;
        let id = doc["id"].as_str().unwrap_or_default().to_owned();
        self.say(format!(
            "  {who} drafts {doc_type} \"{title}\" → {} ({id})",
            Self::describe(&doc)
        ));
        Ok(id)
    }

    /// Routes to `signer`, signs with `authority` using the signer's
    /// development key, and has `clerk` issue it. Returns the reference.
    async fn sign_and_issue(
        &mut self,
        id: &str,
        author: &str,
        signer: &str,
        authority: &str,
        clerk: &str,
    ) -> Result<String, DemoError> {
        let doc = self
            .post(
                author,
                "route for signing",
                &format!("/v1/documents/{id}/routes"),
                json!({ "to": signer, "purpose": "signing" }),
            )
            .await?;
        self.say(format!(
            "  {author} routes it to {signer} for signing → {}",
            Self::describe(&doc)
        ));
        let payload = self
            .call(
                signer,
                "fetch signing payload",
                Method::GET,
                &format!("/v1/documents/{id}/signing-payload?authority={authority}"),
                None,
                200,
            )
            .await?;
        let jws = self.sign(signer, &payload["payload"])?;
        let doc = self
            .post(
                signer,
                "sign",
                &format!("/v1/documents/{id}/signatures"),
                json!({ "jws": jws }),
            )
            .await?;
        let form = if authority.is_empty() {
            "directly".to_owned()
        } else {
            authority.to_owned()
        };
        self.say(format!(
            "  {signer} signs {form} ({}; on behalf of {}) → {}, verification {}",
            doc["signature"]["authority"]["position"]
                .as_str()
                .unwrap_or("?"),
            doc["signature"]["authority"]["on_behalf_of"]
                .as_str()
                .unwrap_or("—"),
            Self::describe(&doc),
            doc["signature"]["report"]["indication"]
                .as_str()
                .unwrap_or("?"),
        ));
        let doc = self
            .post(
                clerk,
                "issue",
                &format!("/v1/documents/{id}/issue"),
                json!({}),
            )
            .await?;
        self.say(format!(
            "  {clerk} issues it with the agency seal → {}",
            Self::describe(&doc)
        ));
        Ok(doc["issue"]["reference"]
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    fn sign(&self, signer: &str, payload: &Value) -> Result<String, DemoError> {
        sign_as(&self.keys, signer, payload)
    }

    /// Plays the whole story.
    pub async fn run(mut self) -> Result<Outcome, DemoError> {
        let mut outcome = Outcome::default();
        self.say("1. Sở Văn hóa và Thể thao reports to the People's Committee");
        let report = self
            .draft(
                "svhtt-cv-qlvh",
                "BC",
                "Báo cáo kết quả tổ chức Ngày hội Văn hóa các dân tộc năm 2026",
                json!([{ "agency": "UBND" }]),
            )
            .await?;
        outcome.report_reference = self
            .sign_and_issue(
                &report,
                "svhtt-cv-qlvh",
                "svhtt-pgd-1",
                "KT.",
                "svhtt-van-thu",
            )
            .await?;
        outcome.report = report;

        self.say("2. The People's Committee issues a plan to three departments, reply within 5 working days");
        let departments = [
            ("SNV", "snv-van-thu", "snv-giam-doc", "TCBC", "snv-cv-tcbc"),
            (
                "SVHTT",
                "svhtt-van-thu",
                "svhtt-pgd-1",
                "QLVH",
                "svhtt-cv-qlvh",
            ),
            (
                "STTTT",
                "stttt-van-thu",
                "stttt-giam-doc",
                "BCVT",
                "stttt-cv-bcvt",
            ),
        ];
        let recipients: Vec<Value> = departments
            .iter()
            .map(|d| json!({ "agency": d.0, "reply_within_working_days": 5 }))
            .collect();
        let plan = self
            .draft(
                "ubnd-cv-vp",
                "KH",
                "Kế hoạch triển khai chuyển đổi số trong công tác văn thư năm 2027",
                Value::Array(recipients),
            )
            .await?;
        outcome.plan_reference = self
            .sign_and_issue(&plan, "ubnd-cv-vp", "ubnd-chu-tich", "TM.", "ubnd-van-thu")
            .await?;
        outcome.plan = plan.clone();

        self.say("3. Each department receives and assigns the plan");
        for (agency, clerk, leader, unit, _) in departments {
            let doc = self
                .post(
                    clerk,
                    "receive",
                    &format!("/v1/documents/{plan}/receipts"),
                    json!({ "agency": agency }),
                )
                .await?;
            let r = &doc["receipts"][agency];
            self.say(format!(
                "  {clerk} registers it in {agency}'s incoming register: số đến {}; reply due {}",
                r["incoming_number"],
                doc["issue"]["recipients"]
                    .as_array()
                    .and_then(|rs| rs.iter().find(|x| x["agency"] == agency))
                    .and_then(|x| x["reply_due"].as_str())
                    .unwrap_or("—")
            ));
            let doc = self
                .post(
                    leader,
                    "assign",
                    &format!("/v1/documents/{plan}/assignments"),
                    json!({
                        "agency": agency,
                        "lead": unit,
                        "coordinating": ["VP"],
                        "instruction": "Chủ trì tham mưu báo cáo, gửi UBND tỉnh đúng hạn.",
                    }),
                )
                .await?;
            let r = &doc["receipts"][agency];
            self.say(format!(
                "  {leader} assigns it: lead {}, coordinating {}, deadline {}",
                r["assignment"]["lead"].as_str().unwrap_or("?"),
                r["assignment"]["coordinating"],
                r["handling_due"].as_str().unwrap_or("—")
            ));
        }

        self.say("4. Two departments reply on time");
        for (i, (agency, clerk, _leader, _unit, specialist)) in departments.into_iter().enumerate()
        {
            if i == 2 {
                self.say("5. Ten days pass (development clock); the third department replies late");
                let clock = self
                    .call("quan-tri", "advance the clock", Method::POST, "/v1/dev/clock", Some(json!({ "days": 10 })), 200)
                    .await
                    .map_err(|e| match e {
                        DemoError::Unexpected { status: 404, .. } => DemoError::Setup(
                            "the server's clock is fixed: start it with VANTHU_DEV_CLOCK=true (make demo does)".into(),
                        ),
                        e => e,
                    })?;
                self.say(format!(
                    "  the service clock is now {}",
                    clock["now"].as_str().unwrap_or("?")
                ));
            }
            let head = match agency {
                "SNV" => "snv-giam-doc",
                "SVHTT" => "svhtt-giam-doc",
                _ => "stttt-giam-doc",
            };
            let reply = self
                .draft(
                    specialist,
                    "BC",
                    &format!(
                        "Báo cáo triển khai Kế hoạch {} của {agency}",
                        outcome.plan_reference
                    ),
                    json!([{ "agency": "UBND" }]),
                )
                .await?;
            self.sign_and_issue(&reply, specialist, head, "", clerk)
                .await?;
            let doc = self
                .post(
                    specialist,
                    "reply",
                    &format!("/v1/documents/{plan}/replies"),
                    json!({ "agency": agency, "reply": reply }),
                )
                .await?;
            let last = doc["receipts"][agency]["replies"]
                .as_array()
                .and_then(|r| r.last())
                .cloned()
                .unwrap_or_default();
            self.say(format!(
                "  {agency} replies with {}: {}",
                last["reply_reference"].as_str().unwrap_or("?"),
                if last["on_time"] == true {
                    "ON TIME"
                } else {
                    "LATE"
                }
            ));
            let doc = self
                .post(
                    specialist,
                    "complete",
                    &format!("/v1/documents/{plan}/completions"),
                    json!({ "agency": agency }),
                )
                .await?;
            self.say(format!(
                "  {specialist} completes the lead unit's part; completed units: {}",
                doc["receipts"][agency]["completed"]
                    .as_object()
                    .map(|m| m.keys().cloned().collect::<Vec<_>>().join(", "))
                    .unwrap_or_default()
            ));
            outcome.replies.push((agency.to_owned(), reply));
        }
        self.log_evidence(&outcome.report).await?;
        self.say("Done.");
        outcome.steps = self.steps;
        Ok(outcome)
    }
}

impl Demo<'_> {
    /// The report's bundle as the People's Committee received it, verified
    /// offline with the trust anchor and the log key: both signatures, and
    /// the records holding them proven in the province's signed log.
    async fn log_evidence(&mut self, report: &str) -> Result<(), DemoError> {
        self.say("6. Anyone can check the log: the report's bundle, verified offline");
        let body = self
            .call(
                "ubnd-van-thu",
                "the report's evidence bundle",
                Method::GET,
                &format!("/v1/documents/{report}/bundle"),
                None,
                200,
            )
            .await?;
        let read = |rel: &str| {
            std::fs::read_to_string(self.keys.join(rel))
                .map_err(|e| DemoError::Setup(format!("{}: {e}", self.keys.join(rel).display())))
        };
        let anchors = vanthu::crypto::pki::pem_blocks(&read("ca/root.pem")?, "CERTIFICATE")
            .map_err(|e| DemoError::Setup(e.to_string()))?;
        let vkey = read("log/log.vkey")?;
        let bundle: vanthu::bundle::Bundle =
            serde_json::from_value(body).map_err(|e| DemoError::Verification(e.to_string()))?;
        let report = vanthu::bundle::verify_bundle(&bundle, anchors, Some(vkey.trim()))
            .map_err(|e| DemoError::Verification(e.to_string()))?;
        if !report.passed {
            return Err(DemoError::Verification(format!(
                "{:?} {:?}",
                report.problems, report.log.problems
            )));
        }
        self.say(format!(
            "  personal signature {:?}, seal {:?}; {} log records proven in checkpoint {} of {}",
            report.personal.indication,
            report.seal.indication,
            report.log.records_included,
            report.log.tree_size.unwrap_or_default(),
            report.log.origin.as_deref().unwrap_or("?"),
        ));
        Ok(())
    }
}

/// Signs a signing payload as `signer`'s client would: a compact JWS over
/// its canonical JSON with the development key and chain in `keys`.
pub fn sign_as(keys: &Path, signer: &str, payload: &Value) -> Result<String, DemoError> {
    sign_with(&official_key(keys, signer)?, payload)
}

/// `official`'s development signing key and chain in `keys`.
pub fn official_key(keys: &Path, official: &str) -> Result<FileKey, DemoError> {
    let dir = keys.join("officials");
    FileKey::load(
        &dir.join(format!("{official}.key")),
        &[
            &dir.join(format!("{official}.pem")),
            &keys.join("ca/issuing.pem"),
        ],
    )
    .map_err(|e| DemoError::Setup(e.to_string()))
}

/// Signs a signing payload with `key` as a client would: a compact JWS over
/// its canonical JSON.
pub fn sign_with(key: &FileKey, payload: &Value) -> Result<String, DemoError> {
    let bytes = vanthu::crypto::jws::canonical_json(payload)
        .map_err(|e| DemoError::Setup(e.to_string()))?;
    // The JWS `iat` of a client-side signature: the signer's own clock.
    #[allow(clippy::disallowed_methods)]
    let iat = chrono::Utc::now().timestamp();
    seal_compact(key, &bytes, iat).map_err(|e| DemoError::Setup(e.to_string()))
}
