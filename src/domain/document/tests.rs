//! Table-driven tests of the document rules: which command fits which
//! state, who may do it, numbering, deadlines, replies and completion.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};

use super::*;
use crate::domain::authority::AuthorityVerdict;
use crate::domain::calendar::Calendar;
use crate::domain::org::{Authority, OrgEvent, Position};

fn at(d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, d, h, 0, 0).unwrap()
}

fn org() -> Org {
    let from = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let mut org = Org::default();
    let mut events = vec![
        OrgEvent::AgencyCreated {
            code: "SVHTT".into(),
            name: "Sở VHTT".into(),
            parent: None,
            collegial: false,
        },
        OrgEvent::AgencyCreated {
            code: "UBND".into(),
            name: "UBND tỉnh".into(),
            parent: None,
            collegial: true,
        },
        OrgEvent::ExternalAgencyRegistered {
            code: "HTUBND".into(),
            name: "UBND tỉnh Hà Tĩnh".into(),
            organ_id: "000.00.00.H42".into(),
            peer: "ha-tinh".into(),
            at: from,
        },
    ];
    for (agency, unit) in [
        ("SVHTT", "QLVH"),
        ("SVHTT", "VP"),
        ("UBND", "KT"),
        ("UBND", "VP"),
    ] {
        events.push(OrgEvent::UnitCreated {
            agency: agency.into(),
            code: unit.into(),
            name: unit.into(),
        });
    }
    for (official, agency, unit, position) in [
        ("author", "SVHTT", Some("QLVH"), Position::Specialist),
        ("vp", "SVHTT", Some("VP"), Position::Specialist),
        ("pgd", "SVHTT", None, Position::DeputyHead),
        ("gd", "SVHTT", None, Position::Head),
        ("vt", "SVHTT", Some("VP"), Position::Clerk),
        ("u-vt", "UBND", Some("VP"), Position::Clerk),
        ("u-ct", "UBND", None, Position::Head),
        ("u-pct", "UBND", None, Position::DeputyHead),
        ("u-kt", "UBND", Some("KT"), Position::Specialist),
        ("u-vp", "UBND", Some("VP"), Position::Specialist),
    ] {
        events.push(OrgEvent::OfficialAppointed {
            official: official.into(),
            name: official.into(),
            agency: agency.into(),
            unit: unit.map(Into::into),
            position,
            title: None,
            from,
        });
    }
    for e in &events {
        org.validate(e).unwrap();
        org.apply(e);
    }
    org
}

fn ctx<'a>(
    org: &'a Org,
    cal: &'a Calendar,
    policy: &'a numbering::Policy,
    actor: &'a str,
    now: DateTime<Utc>,
) -> Ctx<'a> {
    Ctx {
        org,
        actor,
        now,
        calendar: cal,
        numbering: policy,
    }
}

fn sha() -> String {
    "ab".repeat(32)
}

fn draft(recipients: Vec<Recipient>) -> Draft {
    Draft {
        doc_type: "BC".into(),
        title: "Báo cáo".into(),
        content: vec![ContentRef {
            name: "a.txt".into(),
            sha256: sha(),
        }],
        urgency: Urgency::Normal,
        confidentiality: Confidentiality::Normal,
        recipients,
    }
}

fn to_ubnd() -> Vec<Recipient> {
    vec![Recipient {
        agency: "UBND".into(),
        reply_due: None,
        reply_within_working_days: Some(5),
    }]
}

fn kt_verdict() -> AuthorityVerdict {
    AuthorityVerdict {
        passed: true,
        form: Authority::Kt,
        position: Some(Position::DeputyHead),
        on_behalf_of: Some("gd".into()),
        reason: "deputy".into(),
    }
}

/// The stages of the story, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Draft,
    InReview,
    AwaitingSignature,
    Signed,
    Issued,
    Recalled,
}

const STAGES: [Stage; 6] = [
    Stage::Draft,
    Stage::InReview,
    Stage::AwaitingSignature,
    Stage::Signed,
    Stage::Issued,
    Stage::Recalled,
];

struct World {
    org: Org,
    cal: Calendar,
    policy: numbering::Policy,
}

impl World {
    fn new() -> Self {
        Self {
            org: org(),
            cal: Calendar::vietnam(),
            policy: numbering::Policy::default(),
        }
    }

    fn run(
        &self,
        doc: Option<&Document>,
        actor: &str,
        now: DateTime<Utc>,
        cmd: Command,
    ) -> Result<Decision, DomainError> {
        decide(
            doc,
            cmd,
            &ctx(&self.org, &self.cal, &self.policy, actor, now),
        )
    }

    fn apply(
        &self,
        doc: Option<Document>,
        actor: &str,
        now: DateTime<Utc>,
        cmd: Command,
    ) -> Document {
        let d = self.run(doc.as_ref(), actor, now, cmd).unwrap();
        d.events.iter().fold(doc, evolve).unwrap()
    }

    fn sign_cmd(&self, doc: &Document, now: DateTime<Utc>) -> Command {
        Command::Sign(AcceptedSignature::for_tests(
            doc.signing_payload("pgd", &kt_verdict(), now),
            kt_verdict(),
        ))
    }

    fn issue_cmd(
        &self,
        doc: &Document,
        now: DateTime<Utc>,
        number: u64,
    ) -> Result<Command, DomainError> {
        let plan = plan_issue(doc, &ctx(&self.org, &self.cal, &self.policy, "vt", now))?;
        let seal_payload = plan
            .seal_payload(doc, number, &crate::domain::signing::org_sha256(&[]))
            .unwrap();
        Ok(Command::Issue {
            plan,
            number,
            seal: "s.e.al".into(),
            seal_payload,
            org_version: 1,
        })
    }

    /// A document of SVHTT to UBND brought to `stage`.
    fn at_stage(&self, stage: Stage) -> Document {
        let now = at(24, 3);
        let mut doc = self.apply(
            None,
            "author",
            now,
            Command::Draft {
                id: Uuid::nil(),
                agency: "SVHTT".into(),
                drafting_unit: None,
                draft: draft(to_ubnd()),
            },
        );
        if stage == Stage::Draft {
            return doc;
        }
        let purpose = if stage == Stage::InReview {
            RoutePurpose::Review
        } else {
            RoutePurpose::Signing
        };
        let to = if stage == Stage::InReview {
            "gd"
        } else {
            "pgd"
        };
        doc = self.apply(
            Some(doc),
            "author",
            now,
            Command::Route {
                to: to.into(),
                purpose,
                note: None,
            },
        );
        if stage <= Stage::AwaitingSignature {
            return doc;
        }
        let cmd = self.sign_cmd(&doc, now);
        doc = self.apply(Some(doc), "pgd", now, cmd);
        if stage == Stage::Signed {
            return doc;
        }
        let cmd = self.issue_cmd(&doc, now, 7).unwrap();
        doc = self.apply(Some(doc), "vt", now, cmd);
        if stage == Stage::Issued {
            return doc;
        }
        self.apply(
            Some(doc),
            "vt",
            now,
            Command::Recall {
                reason: "sai".into(),
            },
        )
    }
}

/// Which stages each outgoing command fits (the transition table).
#[test]
fn each_command_fits_only_its_states() {
    let w = World::new();
    let now = at(24, 3);
    type Case = (&'static str, &'static str, &'static [Stage]);
    let table: &[Case] = &[
        ("revise", "author", &[Stage::Draft]),
        ("route", "author", &[Stage::Draft]),
        ("return", "pgd", &[Stage::AwaitingSignature]),
        (
            "request_opinion",
            "author",
            &[Stage::Draft, Stage::InReview, Stage::AwaitingSignature],
        ),
        ("sign", "pgd", &[Stage::AwaitingSignature]),
        ("issue", "vt", &[Stage::Signed]),
        ("recall", "vt", &[Stage::Issued]),
        ("receive", "u-vt", &[Stage::Issued]),
    ];
    for (name, actor, fits) in table {
        for stage in STAGES {
            let doc = w.at_stage(stage);
            let cmd = match *name {
                "revise" => Ok(Command::Revise {
                    draft: draft(to_ubnd()),
                    note: None,
                }),
                "route" => Ok(Command::Route {
                    to: "pgd".into(),
                    purpose: RoutePurpose::Signing,
                    note: None,
                }),
                "return" => Ok(Command::Return {
                    reason: "thiếu số liệu".into(),
                }),
                "request_opinion" => Ok(Command::RequestOpinion {
                    from: vec!["vp".into()],
                    question: "?".into(),
                }),
                "sign" => Ok(w.sign_cmd(&doc, now)),
                "issue" => w.issue_cmd(&doc, now, 1),
                "recall" => Ok(Command::Recall {
                    reason: "sai".into(),
                }),
                "receive" => Ok(Command::Receive {
                    // Before issue there is no receipt register to plan: the
                    // state is refused all the same.
                    register: receipt_register(&doc, "UBND", now).unwrap_or(
                        numbering::RegisterKey {
                            agency: "UBND".into(),
                            direction: numbering::Direction::Incoming,
                            series: numbering::Series::Normal,
                            year: numbering::year_of(now),
                        },
                    ),
                    agency: "UBND".into(),
                    number: 1,
                }),
                _ => unreachable!(),
            };
            let result = cmd.and_then(|c| w.run(Some(&doc), actor, now, c));
            let want_ok = fits.contains(&stage);
            match (&result, want_ok) {
                (Ok(_), true) => {}
                (Err(DomainError::WrongState { state, .. }), false) => {
                    assert_eq!(*state, doc.status.as_str(), "{name} names the state");
                }
                // Outside its states, a route by the author in review is not theirs.
                (Err(DomainError::Forbidden(_)), false)
                    if *name == "route" || *name == "return" || *name == "request_opinion" => {}
                _ => panic!("{name} by {actor} at {stage:?}: {result:?}"),
            }
        }
    }
}

#[test]
fn issue_takes_the_given_number_and_allocates_it_in_the_right_register() {
    let w = World::new();
    let doc = w.at_stage(Stage::Signed);
    let d = w
        .run(
            Some(&doc),
            "vt",
            at(24, 3),
            w.issue_cmd(&doc, at(24, 3), 5).unwrap(),
        )
        .unwrap();
    let DocumentEvent::Issued(issued) = &d.events[0] else {
        panic!()
    };
    assert_eq!((issued.number, issued.symbol.as_str()), (5, "BC-SVHTT"));
    assert_eq!(issued.register, "register-SVHTT-out-2026");
    let (key, allocated) = d.register.unwrap();
    assert_eq!(key.stream_id(), issued.register);
    assert_eq!(allocated.number, 5);
    // 5 working days from Tue 24/11/2026: 25, 26, 27, 30/11, 1/12.
    assert_eq!(
        issued.recipients[0].reply_due,
        NaiveDate::from_ymd_opt(2026, 12, 1)
    );
    // Secret documents and own-series types take their own registers.
    let mut policy = numbering::Policy::default();
    policy.own_series.insert("SVHTT".into(), vec!["BC".into()]);
    assert_eq!(
        policy.series("SVHTT", "BC", false),
        Series::Type("BC".into())
    );
    assert_eq!(policy.series("SVHTT", "BC", true), Series::Secret);
    assert_eq!(policy.series("UBND", "BC", false), Series::Normal);
    // The year turns at midnight in Vietnam.
    let new_year = Utc.with_ymd_and_hms(2026, 12, 31, 17, 0, 0).unwrap();
    let plan = plan_issue(&doc, &ctx(&w.org, &w.cal, &w.policy, "vt", new_year)).unwrap();
    assert_eq!(plan.register.stream_id(), "register-SVHTT-out-2027");
}

#[test]
fn only_the_routed_signer_signs_a_signature_accepted_for_this_version() {
    let w = World::new();
    let doc = w.at_stage(Stage::AwaitingSignature);
    let now = at(24, 3);
    let ok = w.sign_cmd(&doc, now);
    assert!(matches!(
        w.run(Some(&doc), "gd", now, ok.clone()),
        Err(DomainError::Forbidden(_))
    ));
    // A signature accepted for another version, document or signer (a
    // command decided again on a newer version) must be signed again.
    let accepted_for = |f: &dyn Fn(&mut SigningPayload)| {
        let mut payload = doc.signing_payload("pgd", &kt_verdict(), now);
        f(&mut payload);
        Command::Sign(AcceptedSignature::for_tests(payload, kt_verdict()))
    };
    let cases: Vec<(&str, Command)> = vec![
        ("older version", accepted_for(&|p| p.version = 1)),
        (
            "other document",
            accepted_for(&|p| p.doc = Uuid::max().to_string()),
        ),
        ("other signer", accepted_for(&|p| p.signer = "gd".into())),
    ];
    for (name, cmd) in cases {
        let r = w.run(Some(&doc), "pgd", now, cmd);
        assert!(matches!(r, Err(DomainError::Invalid(_))), "{name}: {r:?}");
    }
    assert!(w.run(Some(&doc), "pgd", now, ok).is_ok());
}

#[test]
fn incoming_receipt_assignment_reply_and_completion() {
    let w = World::new();
    let now = at(24, 3);
    let doc = w.at_stage(Stage::Issued);
    let register = receipt_register(&doc, "UBND", now).unwrap();
    assert_eq!(register.stream_id(), "register-UBND-in-2026");
    let doc = w.apply(
        Some(doc),
        "u-vt",
        now,
        Command::Receive {
            agency: "UBND".into(),
            register: register.clone(),
            number: 3,
        },
    );
    assert_eq!(doc.receipts["UBND"].incoming_number, 3);
    let again = w.run(
        Some(&doc),
        "u-vt",
        now,
        Command::Receive {
            agency: "UBND".into(),
            register,
            number: 4,
        },
    );
    assert!(matches!(
        again,
        Err(DomainError::WrongState {
            state: "received",
            ..
        })
    ));

    let assign = |lead: &str, coordinating: Vec<String>, deadline| Command::Assign {
        agency: "UBND".into(),
        lead: lead.into(),
        coordinating,
        fyi: vec![],
        handler: None,
        instruction: "Chủ trì".into(),
        deadline,
    };
    // Leaders only; units must exist and not repeat.
    assert!(matches!(
        w.run(Some(&doc), "u-kt", now, assign("KT", vec![], None)),
        Err(DomainError::Forbidden(_))
    ));
    assert!(matches!(
        w.run(Some(&doc), "u-pct", now, assign("XX", vec![], None)),
        Err(DomainError::Invalid(_))
    ));
    assert!(matches!(
        w.run(
            Some(&doc),
            "u-pct",
            now,
            assign("KT", vec!["KT".into()], None)
        ),
        Err(DomainError::Invalid(_))
    ));
    let past = NaiveDate::from_ymd_opt(2026, 11, 1);
    assert!(matches!(
        w.run(Some(&doc), "u-pct", now, assign("KT", vec![], past)),
        Err(DomainError::Invalid(_))
    ));
    // The reply deadline becomes the handling deadline by default.
    let doc = w.apply(
        Some(doc),
        "u-pct",
        now,
        assign("KT", vec!["VP".into()], None),
    );
    assert_eq!(
        doc.receipts["UBND"].handling_due,
        NaiveDate::from_ymd_opt(2026, 12, 1)
    );

    // Extensions move forward only and keep the original.
    let ext = |new| Command::ExtendDeadline {
        agency: "UBND".into(),
        scope: DeadlineScope::Reply,
        new,
        reason: "xin gia hạn".into(),
    };
    assert!(
        matches!(
            w.run(
                Some(&doc),
                "u-pct",
                now,
                ext(NaiveDate::from_ymd_opt(2026, 12, 9).unwrap())
            ),
            Err(DomainError::Forbidden(_))
        ),
        "the issuer extends its reply deadline"
    );
    assert!(matches!(
        w.run(
            Some(&doc),
            "gd",
            now,
            ext(NaiveDate::from_ymd_opt(2026, 11, 30).unwrap())
        ),
        Err(DomainError::Invalid(_))
    ));
    let doc = w.apply(
        Some(doc),
        "gd",
        now,
        ext(NaiveDate::from_ymd_opt(2026, 12, 3).unwrap()),
    );
    assert_eq!(doc.reply_due("UBND"), NaiveDate::from_ymd_opt(2026, 12, 3));
    assert_eq!(
        doc.issue.as_ref().unwrap().original_reply_due["UBND"],
        NaiveDate::from_ymd_opt(2026, 12, 1).unwrap()
    );

    // A reply by UBND, issued, linked; on time until the end of 3/12 (+07:00).
    let mut reply = w.at_stage(Stage::Issued);
    reply.id = Uuid::max();
    reply.agency = "UBND".into();
    reply.draft.recipients = vec![Recipient {
        agency: "SVHTT".into(),
        reply_due: None,
        reply_within_working_days: None,
    }];
    let reply_cmd = || Command::Reply {
        agency: "UBND".into(),
        unit: None,
        reply: Box::new(reply.clone()),
    };
    assert!(
        w.run(Some(&doc), "u-vp", now, reply_cmd()).is_ok(),
        "a coordinating unit may reply"
    );
    assert!(matches!(
        w.run(Some(&doc), "vt", now, reply_cmd()),
        Err(DomainError::Forbidden(_))
    ));
    let on_time = Utc.with_ymd_and_hms(2026, 12, 3, 16, 59, 59).unwrap();
    let late = Utc.with_ymd_and_hms(2026, 12, 3, 17, 0, 0).unwrap();
    for (when, want) in [(on_time, true), (late, false)] {
        let d = w.run(Some(&doc), "u-kt", when, reply_cmd()).unwrap();
        let DocumentEvent::Replied(r) = &d.events[0] else {
            panic!()
        };
        assert_eq!(r.on_time, want, "{when}");
        assert_eq!(r.unit, "KT");
        let (linked, _, DocumentEvent::ReplyLinked(l)) = d.linked.clone().unwrap() else {
            panic!()
        };
        assert_eq!((linked, l.in_reply_to), (Uuid::max(), doc.id));
    }
    // The lead's completion completes its coordinators.
    let done = w.apply(
        Some(doc.clone()),
        "u-kt",
        now,
        Command::Complete {
            agency: "UBND".into(),
            unit: None,
        },
    );
    assert!(done.receipts["UBND"].done);
    assert!(done.receipts["UBND"].completed.contains_key("VP"));
    let coord = w.apply(
        Some(doc),
        "u-vp",
        now,
        Command::Complete {
            agency: "UBND".into(),
            unit: Some("VP".into()),
        },
    );
    assert!(
        !coord.receipts["UBND"].done,
        "a coordinator alone does not finish the handling"
    );
}

#[test]
fn drafts_are_checked_and_revisions_reset_the_route() {
    let w = World::new();
    let now = at(24, 3);
    let bad: Vec<(&str, Draft, &str)> = vec![
        (
            "unknown type",
            Draft {
                doc_type: "XX".into(),
                ..draft(vec![])
            },
            "author",
        ),
        (
            "no content",
            Draft {
                content: vec![],
                ..draft(vec![])
            },
            "author",
        ),
        (
            "bad hash",
            Draft {
                content: vec![ContentRef {
                    name: "a".into(),
                    sha256: "AB".repeat(32),
                }],
                ..draft(vec![])
            },
            "author",
        ),
        (
            "own agency",
            draft(vec![Recipient {
                agency: "SVHTT".into(),
                reply_due: None,
                reply_within_working_days: None,
            }]),
            "author",
        ),
        (
            "empty title",
            Draft {
                title: "  ".into(),
                ..draft(vec![])
            },
            "author",
        ),
        (
            "confidential to another system's agency",
            Draft {
                confidentiality: Confidentiality::Mat,
                ..draft(vec![Recipient {
                    agency: "HTUBND".into(),
                    reply_due: None,
                    reply_within_working_days: None,
                }])
            },
            "author",
        ),
    ];
    for (name, d, actor) in bad {
        let r = w.run(
            None,
            actor,
            now,
            Command::Draft {
                id: Uuid::nil(),
                agency: "SVHTT".into(),
                drafting_unit: None,
                draft: d,
            },
        );
        assert!(matches!(r, Err(DomainError::Invalid(_))), "{name}: {r:?}");
    }
    let outsider = w.run(
        None,
        "u-kt",
        now,
        Command::Draft {
            id: Uuid::nil(),
            agency: "SVHTT".into(),
            drafting_unit: None,
            draft: draft(vec![]),
        },
    );
    assert!(matches!(outsider, Err(DomainError::Forbidden(_))));
    // Ordinary documents do go to other systems' agencies.
    let external = w.run(
        None,
        "author",
        now,
        Command::Draft {
            id: Uuid::nil(),
            agency: "SVHTT".into(),
            drafting_unit: None,
            draft: draft(vec![Recipient {
                agency: "HTUBND".into(),
                reply_due: None,
                reply_within_working_days: Some(5),
            }]),
        },
    );
    assert!(external.is_ok(), "{external:?}");
    let other_unit = w.run(
        None,
        "vp",
        now,
        Command::Draft {
            id: Uuid::nil(),
            agency: "SVHTT".into(),
            drafting_unit: Some("QLVH".into()),
            draft: draft(vec![]),
        },
    );
    assert!(matches!(other_unit, Err(DomainError::Forbidden(_))));

    let doc = w.at_stage(Stage::AwaitingSignature);
    let returned = w.apply(
        Some(doc),
        "pgd",
        now,
        Command::Return {
            reason: "bổ sung".into(),
        },
    );
    assert_eq!(returned.status, Status::Draft);
    assert!(returned.route.is_none());
    let revised = w.apply(
        Some(returned),
        "author",
        now,
        Command::Revise {
            draft: Draft {
                title: "Báo cáo (sửa)".into(),
                ..draft(to_ubnd())
            },
            note: None,
        },
    );
    assert_eq!((revised.status, revised.version), (Status::Draft, 4));
    assert_eq!(revised.draft.title, "Báo cáo (sửa)");
}

#[test]
fn handling_rules_close_the_loopholes() {
    let w = World::new();
    let now = at(24, 3);
    let doc = w.at_stage(Stage::Issued);
    let register = receipt_register(&doc, "UBND", now).unwrap();
    let doc = w.apply(
        Some(doc),
        "u-vt",
        now,
        Command::Receive {
            agency: "UBND".into(),
            register,
            number: 1,
        },
    );
    let assign = |lead: &str, deadline| Command::Assign {
        agency: "UBND".into(),
        lead: lead.into(),
        coordinating: vec!["VP".into()],
        fyi: vec![],
        handler: None,
        instruction: "Chủ trì".into(),
        deadline,
    };
    let doc = w.apply(Some(doc), "u-pct", now, assign("KT", None));
    // A deadline changes only by an extension (with its reason), never by re-assigning.
    let shorter = NaiveDate::from_ymd_opt(2026, 11, 26);
    let r = w.run(Some(&doc), "u-pct", now, assign("KT", shorter));
    assert!(matches!(r, Err(DomainError::Invalid(_))), "{r:?}");
    // Once a unit completed, the assignment is fixed.
    let part = w.apply(
        Some(doc.clone()),
        "u-vp",
        now,
        Command::Complete {
            agency: "UBND".into(),
            unit: Some("VP".into()),
        },
    );
    let r = w.run(Some(&part), "u-pct", now, assign("VP", None));
    assert!(matches!(r, Err(DomainError::Invalid(_))), "{r:?}");
    // A reply must be addressed to the issuer, and not after completion.
    let mut reply = w.at_stage(Stage::Issued);
    reply.id = Uuid::max();
    reply.agency = "UBND".into();
    let reply_cmd = |reply: &Document| Command::Reply {
        agency: "UBND".into(),
        unit: None,
        reply: Box::new(reply.clone()),
    };
    let r = w.run(Some(&doc), "u-kt", now, reply_cmd(&reply));
    assert!(
        matches!(r, Err(DomainError::Invalid(_))),
        "not addressed to SVHTT: {r:?}"
    );
    reply.draft.recipients[0].agency = "SVHTT".into();
    assert!(w.run(Some(&doc), "u-kt", now, reply_cmd(&reply)).is_ok());
    let done = w.apply(
        Some(doc),
        "u-kt",
        now,
        Command::Complete {
            agency: "UBND".into(),
            unit: None,
        },
    );
    let r = w.run(Some(&done), "u-kt", now, reply_cmd(&reply));
    assert!(
        matches!(
            r,
            Err(DomainError::WrongState {
                state: "completed",
                ..
            })
        ),
        "{r:?}"
    );
    // A reply date already past at issue is refused.
    let mut late = w.at_stage(Stage::Signed);
    late.draft.recipients[0] = Recipient {
        agency: "UBND".into(),
        reply_due: NaiveDate::from_ymd_opt(2026, 11, 20),
        reply_within_working_days: None,
    };
    assert!(matches!(
        w.issue_cmd(&late, now, 1),
        Err(DomainError::Invalid(_))
    ));
}

/// Who reads an issued, received and assigned document, ordinary and
/// confidential (mật): the one read rule of `domain::access`.
#[test]
fn who_reads_a_document_by_confidentiality() {
    use crate::domain::access::{may_read, sees_drafting};
    let w = World::new();
    let now = at(24, 3);
    let issued = w.at_stage(Stage::Issued);
    let register = receipt_register(&issued, "UBND", now).unwrap();
    let received = w.apply(
        Some(issued),
        "u-vt",
        now,
        Command::Receive {
            agency: "UBND".into(),
            register,
            number: 1,
        },
    );
    let doc = w.apply(
        Some(received),
        "u-ct",
        now,
        Command::Assign {
            agency: "UBND".into(),
            lead: "KT".into(),
            coordinating: vec![],
            fyi: vec![],
            handler: None,
            instruction: "Chủ trì".into(),
            deadline: None,
        },
    );
    let mut secret = doc.clone();
    secret.draft.confidentiality = Confidentiality::Mat;
    // who, reads the ordinary one, reads the confidential one, sees drafting
    let table = [
        ("author", true, true, true), // the drafter
        ("vp", true, false, true),    // another unit of the issuer
        ("pgd", true, true, true),    // the signer (routed to)
        ("gd", true, true, true),     // the issuer's head
        ("vt", true, true, true),     // the issuer's clerk
        ("u-vt", true, true, false),  // the recipient's clerk
        ("u-ct", true, true, false),  // the recipient's head
        ("u-pct", true, true, false), // the recipient's deputy
        ("u-kt", true, true, false),  // the assigned unit
        ("u-vp", true, false, false), // an unassigned unit of the recipient
        ("stranger", false, false, false),
    ];
    for (who, normal, confidential, drafting) in table {
        assert_eq!(may_read(&doc, &w.org, who, now), normal, "{who}: ordinary");
        assert_eq!(
            may_read(&secret, &w.org, who, now),
            confidential,
            "{who}: confidential"
        );
        assert_eq!(
            sees_drafting(&doc, &w.org, who, now),
            drafting,
            "{who}: drafting"
        );
    }
    // Before issue, no recipient reads either.
    let signed = w.at_stage(Stage::Signed);
    assert!(!may_read(&signed, &w.org, "u-ct", now));
}

/// Where an appointment sits, for the read-rule table: at agency level,
/// in the document's own unit (the drafting unit on the issuing side, the
/// assigned lead unit on the recipient's), or in another unit (VP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seat {
    Agency,
    OwnUnit,
    OtherUnit,
}

/// Which side of the document an agency is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Issuer,
    Recipient,
    Unrelated,
}

/// Every position of the organisation model: a new one is a compile error
/// in the match until it is listed here and the table says what it reads.
fn every_position() -> [Position; 6] {
    let all = [
        Position::Head,
        Position::DeputyHead,
        Position::ActingHead,
        Position::OfficeChief,
        Position::Clerk,
        Position::Specialist,
    ];
    for p in all {
        match p {
            Position::Head
            | Position::DeputyHead
            | Position::ActingHead
            | Position::OfficeChief
            | Position::Clerk
            | Position::Specialist => {}
        }
    }
    all
}

/// The contract of docs/API.md, written apart from `domain::access`: an
/// ordinary document reads to every official of the issuing agency and of
/// an (issued-to) recipient agency; a confidential one (mật, tối mật,
/// tuyệt mật alike) only to the agency's leaders (agency level) and
/// clerks, and to the document's own unit. Nobody else: no office chief,
/// no head of another unit.
fn contract_reads(side: Side, position: Position, seat: Seat, confidential: bool) -> bool {
    match side {
        Side::Unrelated => false,
        _ if !confidential => true,
        _ => keeps_secrets_contract(position, seat) || seat == Seat::OwnUnit,
    }
}

/// Leaders at agency level and clerks wherever seated: who sees
/// confidential deadline rows and the secret register.
fn keeps_secrets_contract(position: Position, seat: Seat) -> bool {
    (position.is_leader() && seat == Seat::Agency) || position == Position::Clerk
}

/// The table over every position × seat × side × confidentiality level:
/// reading the document, its drafting history, its reply-deadline row, the
/// agency's registers (ordinary and secret) and another unit's inbox. Then
/// the relations that read whatever the position: author, routed-to,
/// asked for an opinion, handler; and admins, auditors and strangers.
#[test]
fn every_position_reads_by_confidentiality_side_and_seat() {
    use crate::domain::access::{
        deadline_scope, may_read, may_read_register, sees_drafting, unit_inbox_agency,
    };
    let w = World::new();
    let now = at(24, 3);
    let issued = w.at_stage(Stage::Issued);
    let register = receipt_register(&issued, "UBND", now).unwrap();
    let received = w.apply(
        Some(issued),
        "u-vt",
        now,
        Command::Receive {
            agency: "UBND".into(),
            register,
            number: 1,
        },
    );
    let mut doc = w.apply(
        Some(received),
        "u-ct",
        now,
        Command::Assign {
            agency: "UBND".into(),
            lead: "KT".into(),
            coordinating: vec![],
            fyi: vec![],
            handler: None,
            instruction: "Chủ trì".into(),
            deadline: None,
        },
    );
    // Relations beside the positions: it is routed to a reviewer of
    // SVHTT's office, SVHTT's office specialist is asked for an opinion,
    // UBND's office specialist handles it.
    doc.route = Some(Route {
        to: "reviewer".into(),
        purpose: RoutePurpose::Review,
        by: "author".into(),
        at: now,
    });
    doc.opinions.push(Opinion {
        from: "vp".into(),
        requested_by: "author".into(),
        question: "Ý kiến?".into(),
        requested_at: now,
        opinion: None,
        comment: None,
        given_at: None,
    });
    if let Some(a) = doc
        .receipts
        .get_mut("UBND")
        .and_then(|r| r.assignment.as_mut())
    {
        a.handler = Some("u-vp".into());
    }
    assert_eq!(doc.drafting_unit, "QLVH");
    // The organisation: every position in every seat of the issuer
    // (SVHTT), the recipient (UBND) and an unrelated agency (SNV).
    let mut org = w.org.clone();
    let from = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let mut events = vec![
        OrgEvent::AgencyCreated {
            code: "SNV".into(),
            name: "Sở Nội vụ".into(),
            parent: None,
            collegial: false,
        },
        OrgEvent::AdminGranted {
            official: "admin".into(),
            at: from,
        },
        OrgEvent::AuditorGranted {
            official: "auditor".into(),
            at: from,
        },
        OrgEvent::OfficialAppointed {
            official: "reviewer".into(),
            name: "reviewer".into(),
            agency: "SVHTT".into(),
            unit: Some("VP".into()),
            position: Position::Specialist,
            title: None,
            from,
        },
    ];
    for unit in ["TCBC", "VP"] {
        events.push(OrgEvent::UnitCreated {
            agency: "SNV".into(),
            code: unit.into(),
            name: unit.into(),
        });
    }
    let sides = [
        (Side::Issuer, "SVHTT", "QLVH"),
        (Side::Recipient, "UBND", "KT"),
        (Side::Unrelated, "SNV", "TCBC"),
    ];
    let seats = [Seat::Agency, Seat::OwnUnit, Seat::OtherUnit];
    let id = |agency: &str, p: Position, seat: Seat| format!("{agency}-{}-{seat:?}", p.as_str());
    for (_, agency, own) in sides {
        for p in every_position() {
            for seat in seats {
                let unit = match seat {
                    Seat::Agency => None,
                    Seat::OwnUnit => Some(own.to_owned()),
                    Seat::OtherUnit => Some("VP".to_owned()),
                };
                events.push(OrgEvent::OfficialAppointed {
                    official: id(agency, p, seat),
                    name: "x".into(),
                    agency: agency.into(),
                    unit,
                    position: p,
                    title: None,
                    from,
                });
            }
        }
    }
    for e in &events {
        // Straight into the history: a second head is against the rules
        // (one head at a time) but not against the read rules.
        org.apply(e);
    }
    let levels = [
        Confidentiality::Normal,
        Confidentiality::Mat,
        Confidentiality::ToiMat,
        Confidentiality::TuyetMat,
    ];
    let mut failures = Vec::new();
    let mut check = |what: String, got: bool, want: bool| {
        if got != want {
            failures.push(format!("{what}: got {got}, want {want}"));
        }
    };
    for level in levels {
        let mut d = doc.clone();
        d.draft.confidentiality = level;
        let confidential = level != Confidentiality::Normal;
        for (side, agency, _) in sides {
            for p in every_position() {
                for seat in seats {
                    let who = id(agency, p, seat);
                    let what = |view: &str| format!("{who} {level:?} {view}");
                    let reads = contract_reads(side, p, seat, confidential);
                    check(what("document"), may_read(&d, &org, &who, now), reads);
                    check(
                        what("drafting"),
                        sees_drafting(&d, &org, &who, now),
                        reads && side == Side::Issuer,
                    );
                    // UBND's reply row, issued by SVHTT.
                    let row = deadline_scope(&org, &who, Some("UBND"), now)
                        .is_ok_and(|s| s.admits("UBND", "SVHTT", confidential));
                    let row_want = side != Side::Unrelated
                        && (!confidential || keeps_secrets_contract(p, seat));
                    check(what("deadline row"), row, row_want);
                    // Their own agency's registers, and its office's inbox.
                    let books = p.is_leader() && seat == Seat::Agency
                        || matches!(p, Position::Clerk | Position::OfficeChief);
                    check(
                        what("register"),
                        may_read_register(&org, &who, agency, false, now).is_ok(),
                        books,
                    );
                    check(
                        what("secret register"),
                        may_read_register(&org, &who, agency, true, now).is_ok(),
                        keeps_secrets_contract(p, seat),
                    );
                    check(
                        what("VP inbox"),
                        unit_inbox_agency(&org, &who, "VP", Some(agency), now).is_some(),
                        seat == Seat::OtherUnit || keeps_secrets_contract(p, seat),
                    );
                }
            }
        }
        // Relations, whatever the position; roles outside the agencies.
        for (who, reads) in [
            ("author", true),         // drafted it (a QLVH specialist)
            ("reviewer", true),       // routed to
            ("vp", true),             // asked for an opinion
            ("u-vp", true),           // the recipient's handler
            ("admin", !confidential), // admins: ordinary ones only
            ("auditor", false),       // reads raw log entries, not documents
            ("stranger", false),
        ] {
            check(
                format!("{who} {level:?} document"),
                may_read(&d, &org, who, now),
                reads,
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The views' read rules (`domain::access`): whose inboxes, which unit
/// inboxes, which deadline rows, which registers.
#[test]
fn who_reads_which_view() {
    use crate::domain::access::{
        deadline_scope, may_read_register, own_inboxes, unit_inbox_agency, Party, ViewRefusal,
    };
    let mut org = org();
    let now = at(24, 3);
    let admin = OrgEvent::AdminGranted {
        official: "quan-tri".into(),
        at: now - chrono::Duration::days(1),
    };
    org.apply(&admin);
    let off = |id: &str| Party::Official(id.into());
    // Own inboxes: clerks read their agency's, leaders outside units theirs.
    for (who, want) in [
        ("author", vec![off("author")]),
        ("vt", vec![off("vt"), Party::Clerks("SVHTT".into())]),
        ("gd", vec![off("gd"), Party::Leaders("SVHTT".into())]),
        ("pgd", vec![off("pgd"), Party::Leaders("SVHTT".into())]),
        ("stranger", vec![off("stranger")]),
    ] {
        let mut want = want;
        want.sort();
        assert_eq!(own_inboxes(&org, who, now), want, "{who}");
    }
    // Unit inboxes: members and book-keepers of the agency.
    for (who, unit, agency, want) in [
        ("author", "QLVH", None, Some("SVHTT")),
        ("vp", "QLVH", None, None),
        ("vt", "QLVH", Some("SVHTT"), Some("SVHTT")),
        ("gd", "QLVH", Some("SVHTT"), Some("SVHTT")),
        ("u-kt", "QLVH", Some("SVHTT"), None),
        ("stranger", "QLVH", Some("SVHTT"), None),
    ] {
        assert_eq!(
            unit_inbox_agency(&org, who, unit, agency, now).as_deref(),
            want,
            "{who} {unit}"
        );
    }
    // Deadlines of UBND's answers: UBND's own officials and admins see all;
    // SVHTT's see the rows SVHTT issued; confidential rows only where the
    // caller keeps the books of the answering or issuing agency.
    let rows = [
        ("UBND", "SVHTT", false),
        ("UBND", "SVHTT", true),
        ("UBND", "SNV", false),
    ];
    for (who, want) in [
        ("u-kt", Ok([true, false, true])),
        ("u-vt", Ok([true, true, true])),
        ("author", Ok([true, false, false])),
        ("vt", Ok([true, true, false])),
        ("quan-tri", Ok([true, false, true])),
        (
            "stranger",
            Err(ViewRefusal::Forbidden(
                "only officials see deadlines".into(),
            )),
        ),
    ] {
        let got = deadline_scope(&org, who, Some("UBND"), now)
            .map(|s| rows.map(|(agency, issuer, conf)| s.admits(agency, issuer, conf)));
        assert_eq!(got, want, "{who}");
    }
    assert_eq!(
        deadline_scope(&org, "quan-tri", None, now),
        Err(ViewRefusal::NameTheAgency)
    );
    // Registers: book-keepers and admins; the secret series leaders and clerks.
    for (who, normal, secret) in [
        ("vt", true, true),
        ("gd", true, true),
        ("pgd", true, true),
        ("author", false, false),
        ("u-vt", false, false),
        ("quan-tri", true, false),
    ] {
        assert_eq!(
            may_read_register(&org, who, "SVHTT", false, now).is_ok(),
            normal,
            "{who}"
        );
        assert_eq!(
            may_read_register(&org, who, "SVHTT", true, now).is_ok(),
            secret,
            "{who} secret"
        );
    }
}

/// The issuer's follow-up of the replies it is owed: its own officials (and
/// no one else) read it; confidential rows only its book-keepers, or those
/// of the answering agency.
#[test]
fn an_issuer_follows_up_its_replies_and_only_book_keepers_see_confidential_rows() {
    use crate::domain::access::{issued_deadline_scope, ViewRefusal};
    let org = org();
    let now = at(20, 9);
    // (who, issuer asked, Ok(sees a confidential UBND row answered by SVHTT)
    // or the refusal).
    for (who, asked, want) in [
        ("u-vt", None, Ok(true)),
        ("u-vt", Some("UBND"), Ok(true)),
        ("u-ct", Some("UBND"), Ok(true)),
        ("u-kt", Some("UBND"), Ok(false)),
        ("vt", Some("UBND"), Err("forbidden")),
        ("author", Some("UBND"), Err("forbidden")),
        ("nobody", None, Err("name")),
    ] {
        let got = issued_deadline_scope(&org, who, asked, now).map(|s| {
            assert_eq!(s.agency, None, "{who}: every answering agency");
            assert!(s.admits("SVHTT", "UBND", false), "{who}");
            assert!(!s.admits("SVHTT", "SNV", false), "{who}: only UBND's rows");
            s.admits("SVHTT", "UBND", true)
        });
        let got = got.map_err(|e| match e {
            ViewRefusal::Forbidden(_) => "forbidden",
            ViewRefusal::NameTheAgency => "name",
        });
        assert_eq!(got, want, "{who} asking {asked:?}");
    }
}

/// A document of Hà Tĩnh's People's Committee (another system's agency
/// here) arrived for UBND, as `document.arrived.v1` makes it.
fn arrived_for_ubnd(w: &World) -> Document {
    let issued = w.at_stage(Stage::Issued);
    let issue = issued.issue.clone().unwrap();
    evolve(
        None,
        &DocumentEvent::Arrived(Arrived {
            doc: Uuid::from_u128(7),
            agency: "HTUBND".into(),
            by: "interchange:ha-tinh".into(),
            at: at(25, 3),
            from: ArrivedFrom {
                peer: "ha-tinh".into(),
                organ_id: "000.00.00.H42".into(),
                document_id: "their-doc".into(),
                evidence: sha(),
                signer_name: "Nguyễn Văn A".into(),
                signer_position: "Chủ tịch".into(),
                competence: "TM.".into(),
                unsealed: Vec::new(),
            },
            recipients: vec![IssuedRecipient {
                agency: "UBND".into(),
                reply_due: NaiveDate::from_ymd_opt(2026, 12, 4),
            }],
            urgency: Urgency::Khan,
            content: issued.draft.content.clone(),
            seal: issue.seal,
            seal_payload: issue.seal_payload,
        }),
    )
    .unwrap()
}

#[test]
fn an_arrived_document_is_refused_or_handled_and_its_recall_answered_here() {
    let w = World::new();
    let doc = arrived_for_ubnd(&w);
    assert_eq!(doc.status, Status::Issued);
    assert_eq!(doc.agency, "HTUBND");
    assert_eq!(doc.reply_due("UBND"), NaiveDate::from_ymd_opt(2026, 12, 4));
    assert!(doc.reference().is_some());
    let now = at(25, 4);
    let refuse = |agency: &str, reason: &str| Command::Refuse {
        agency: agency.into(),
        reason: reason.into(),
    };
    let answer = |agree: bool, reason: &str| Command::AnswerRecall {
        agency: "UBND".into(),
        agree,
        reason: reason.into(),
    };
    let register = receipt_register(&doc, "UBND", now).unwrap();
    let receive = Command::Receive {
        agency: "UBND".into(),
        register,
        number: 1,
    };
    // (who, command, the refusal's kind or state; "" = done)
    let table: Vec<(&str, Command, &str)> = vec![
        ("u-vt", refuse("UBND", "Không đúng thẩm quyền"), ""),
        ("u-ct", refuse("UBND", "Không đúng thẩm quyền"), ""),
        ("u-vt", refuse("UBND", "   "), "invalid"),
        (
            "u-vt",
            refuse("UBND", &"x".repeat(MAX_REASON + 1)),
            "invalid",
        ),
        ("u-vt", refuse("SVHTT", "x"), "invalid"),
        ("u-kt", refuse("UBND", "x"), "forbidden"),
        ("vt", refuse("UBND", "x"), "forbidden"),
        ("u-vt", answer(true, ""), "not_asked_back"),
        ("u-vt", receive.clone(), ""),
        // Its outgoing life is another system's.
        (
            "u-ct",
            Command::Recall { reason: "x".into() },
            "from_another_system",
        ),
        (
            "u-vt",
            Command::ExtendDeadline {
                agency: "UBND".into(),
                scope: DeadlineScope::Reply,
                new: NaiveDate::from_ymd_opt(2026, 12, 31).unwrap(),
                reason: "x".into(),
            },
            "forbidden",
        ),
    ];
    for (who, cmd, want) in table {
        let name = cmd.name();
        let got = match w.run(Some(&doc), who, now, cmd) {
            Ok(_) => "",
            Err(DomainError::Invalid(_)) => "invalid",
            Err(DomainError::Forbidden(_)) => "forbidden",
            Err(DomainError::WrongState { state, .. }) => state,
        };
        assert_eq!(got, want, "{who} {name}");
    }
    // Received, it is no longer refused; refused, no longer received.
    let received = w.apply(Some(doc.clone()), "u-vt", now, receive.clone());
    assert!(matches!(
        w.run(Some(&received), "u-vt", now, refuse("UBND", "x")),
        Err(DomainError::WrongState {
            state: "received",
            ..
        })
    ));
    let refused = w.apply(Some(doc.clone()), "u-vt", now, refuse("UBND", "x"));
    assert_eq!(refused.origin.as_ref().unwrap().refused["UBND"].reason, "x");
    for cmd in [receive.clone(), refuse("UBND", "y")] {
        assert!(matches!(
            w.run(Some(&refused), "u-vt", now, cmd),
            Err(DomainError::WrongState {
                state: "refused",
                ..
            })
        ));
    }
    // The recall: only from the system and agency it came from, once.
    assert!(ask_back(&doc, "ha-noi", "000.00.00.H42", "", now, now).is_err());
    assert!(ask_back(&doc, "ha-tinh", "000.00.00.H01", "", now, now).is_err());
    let asked = ask_back(&doc, "ha-tinh", "000.00.00.H42", "Ban hành nhầm", now, now)
        .unwrap()
        .unwrap();
    let asked = evolve(Some(received), &asked).unwrap();
    assert_eq!(
        ask_back(&asked, "ha-tinh", "000.00.00.H42", "", now, now),
        Ok(None)
    );
    assert!(matches!(
        w.run(Some(&asked), "u-vt", now, answer(false, " ")),
        Err(DomainError::Invalid(_))
    ));
    let kept = w.apply(
        Some(asked.clone()),
        "u-vt",
        now,
        answer(false, "Đã triển khai"),
    );
    assert_eq!(kept.status, Status::Issued);
    let recalled = w.apply(Some(asked), "u-vt", now, answer(true, ""));
    assert_eq!(recalled.status, Status::Recalled);
    assert_eq!(recalled.recall.as_ref().unwrap().reason, "Ban hành nhầm");
    for (d, cmd) in [
        (&kept, answer(true, "")),
        (&recalled, answer(false, "x")),
        (&recalled, refuse("UBND", "x")),
        (&recalled, receive.clone()),
    ] {
        assert!(matches!(
            w.run(Some(d), "u-vt", now, cmd),
            Err(DomainError::WrongState { .. })
        ));
    }
    // Only a book-keeper of an addressed agency answers.
    let asked = ask_back(&doc, "ha-tinh", "000.00.00.H42", "", now, now)
        .unwrap()
        .unwrap();
    let asked = evolve(Some(doc.clone()), &asked).unwrap();
    assert!(matches!(
        w.run(Some(&asked), "u-kt", now, answer(true, "")),
        Err(DomainError::Forbidden(_))
    ));
    let elsewhere = Command::AnswerRecall {
        agency: "SVHTT".into(),
        agree: true,
        reason: String::new(),
    };
    assert!(matches!(
        w.run(Some(&asked), "vt", now, elsewhere),
        Err(DomainError::Invalid(_))
    ));
    // A document issued here is neither refused nor asked back here.
    let ours = w.at_stage(Stage::Issued);
    assert!(matches!(
        w.run(Some(&ours), "u-vt", now, refuse("UBND", "x")),
        Err(DomainError::WrongState {
            state: "issued_here",
            ..
        })
    ));
    assert!(ask_back(&ours, "ha-tinh", "000.00.00.H42", "", now, now).is_err());
}

#[test]
fn a_reply_by_package_links_only_to_a_document_issued_to_its_sender() {
    let w = World::new();
    let reply = arrived_for_ubnd(&w);
    let mut original = w.at_stage(Stage::Issued);
    let now = at(26, 3);
    // Not a recipient of the original: refused.
    assert!(reply_by_package(&original, &reply, now, &w.cal).is_err());
    let due = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
    original
        .issue
        .as_mut()
        .unwrap()
        .recipients
        .push(IssuedRecipient {
            agency: "HTUBND".into(),
            reply_due: Some(due),
        });
    let (replied, linked) = reply_by_package(&original, &reply, now, &w.cal)
        .unwrap()
        .unwrap();
    let DocumentEvent::Replied(r) = &replied else {
        panic!("{replied:?}");
    };
    assert_eq!(
        (r.agency.as_str(), r.reply_due, r.on_time),
        ("HTUBND", Some(due), false)
    );
    let original = evolve(Some(original), &replied).unwrap();
    assert_eq!(original.replies_by_package["HTUBND"][0].reply, reply.id);
    let reply = evolve(Some(reply), &linked).unwrap();
    assert_eq!(reply.in_reply_to, Some(original.id));
    assert_eq!(reply_by_package(&original, &reply, now, &w.cal), Ok(None));
    // A document of this system's is no reply by package, nor answered by one.
    let ours = w.at_stage(Stage::Issued);
    assert!(reply_by_package(&original, &ours, now, &w.cal).is_err());
    assert!(reply_by_package(&reply, &reply, now, &w.cal).is_err());
}
