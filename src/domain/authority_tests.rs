//! Tests of the authority rules (`authority.rs`): the signing forms each
//! position may use at the signing instant, organisation changes checked
//! against the history, and the forms' printed names.

use super::*;
use crate::domain::org::OrgEvent;
use chrono::{Duration, TimeZone};

fn t(day: u32, hour: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, day, hour, min, 0).unwrap()
}

fn appoint(official: &str, agency: &str, unit: Option<&str>, position: Position) -> OrgEvent {
    OrgEvent::OfficialAppointed {
        official: official.into(),
        name: official.into(),
        agency: agency.into(),
        unit: unit.map(Into::into),
        position,
        title: None,
        from: t(1, 0, 0),
    }
}

fn org() -> Org {
    let agency = |code: &str, collegial| OrgEvent::AgencyCreated {
        code: code.into(),
        name: code.into(),
        parent: None,
        collegial,
    };
    let events = vec![
        agency("UBND", true),
        agency("SVHTT", false),
        agency("SNV", false),
        agency("STTTT", false),
        OrgEvent::UnitCreated {
            agency: "SVHTT".into(),
            code: "VP".into(),
            name: "Văn phòng".into(),
        },
        appoint("ct", "UBND", None, Position::Head),
        appoint("pct1", "UBND", None, Position::DeputyHead),
        appoint("gd", "SVHTT", None, Position::Head),
        appoint("pgd1", "SVHTT", None, Position::DeputyHead),
        appoint("cvp", "SVHTT", Some("VP"), Position::OfficeChief),
        appoint("snv-gd", "SNV", None, Position::Head),
        appoint("snv-pgd", "SNV", None, Position::DeputyHead),
        appoint("q-gd", "STTTT", None, Position::ActingHead),
        OrgEvent::OfficialRelieved {
            official: "snv-gd".into(),
            agency: "SNV".into(),
            position: Position::Head,
            at: t(20, 9, 59),
        },
        OrgEvent::DelegationGranted {
            id: "uq-1".into(),
            form: DelegationForm::Tuq,
            from: "gd".into(),
            to: "cvp".into(),
            agency: "SVHTT".into(),
            valid_from: t(10, 0, 0),
            valid_until: t(25, 0, 0),
            doc_types: vec!["CV".into(), "TB".into()],
        },
        OrgEvent::DelegationGranted {
            id: "uq-2".into(),
            form: DelegationForm::Tuq,
            from: "snv-gd".into(),
            to: "snv-pgd".into(),
            agency: "SNV".into(),
            valid_from: t(10, 0, 0),
            valid_until: t(30, 0, 0),
            doc_types: vec!["CV".into()],
        },
        OrgEvent::DelegationGranted {
            id: "tl-1".into(),
            form: DelegationForm::Tl,
            from: "gd".into(),
            to: "cvp".into(),
            agency: "SVHTT".into(),
            valid_from: t(10, 0, 0),
            valid_until: t(30, 0, 0),
            doc_types: vec!["BC".into()],
        },
        OrgEvent::DelegationRevoked {
            id: "tl-1".into(),
            at: t(22, 0, 0),
        },
    ];
    let mut org = Org::default();
    for e in &events {
        org.validate(e).unwrap_or_else(|err| panic!("{e:?}: {err}"));
        org.apply(e);
    }
    org
}

#[test]
fn signing_forms_at_the_signing_instant() {
    let org = org();
    let at = t(20, 10, 0);
    use Authority::*;
    // (official, agency, doc type, form, instant, passes, words the reason must contain)
    type Case<'a> = (
        &'a str,
        &'a str,
        &'a str,
        Authority,
        DateTime<Utc>,
        bool,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        ("pgd1", "SVHTT", "BC", Kt, at, true, "deputy_head of SVHTT"),
        (
            "pgd1",
            "SVHTT",
            "BC",
            Direct,
            at,
            false,
            "requires the head of SVHTT",
        ),
        (
            "pgd1",
            "SVHTT",
            "BC",
            Tm,
            at,
            false,
            "TM. is for collegial bodies",
        ),
        (
            "snv-pgd",
            "SVHTT",
            "BC",
            Kt,
            at,
            false,
            "holds deputy_head of SNV",
        ),
        ("gd", "SVHTT", "BC", Direct, at, true, "head of SVHTT"),
        (
            "gd",
            "SVHTT",
            "BC",
            Kt,
            at,
            false,
            "KT. requires the deputy_head",
        ),
        // Relieved at 09:59; signing at 10:00 fails, at 09:58 passes.
        (
            "snv-gd",
            "SNV",
            "CV",
            Direct,
            at,
            false,
            "holds no position",
        ),
        (
            "snv-gd",
            "SNV",
            "CV",
            Direct,
            at - Duration::minutes(2),
            true,
            "head of SNV",
        ),
        ("ct", "UBND", "KH", Tm, at, true, "TM. the collective"),
        ("ct", "UBND", "KH", Direct, at, false, "collegial body"),
        ("pct1", "UBND", "KH", Kt, at, true, "deputy_head of UBND"),
        ("q-gd", "STTTT", "CV", Q, at, true, "acting_head"),
        (
            "q-gd",
            "STTTT",
            "CV",
            Direct,
            at,
            false,
            "holds acting_head of STTTT",
        ),
        ("nobody", "SVHTT", "CV", Kt, at, false, "holds no position"),
        ("pgd1", "SXD", "CV", Kt, at, false, "no agency SXD"),
        // TUQ.: in force, covering the type, granted by the head in office.
        ("cvp", "SVHTT", "CV", Tuq, at, true, "delegation uq-1"),
        (
            "cvp",
            "SVHTT",
            "CV",
            Tuq,
            t(26, 0, 0),
            false,
            "no TUQ. delegation",
        ),
        (
            "cvp",
            "SVHTT",
            "CV",
            Tuq,
            t(9, 23, 59),
            false,
            "no TUQ. delegation",
        ),
        (
            "cvp",
            "SVHTT",
            "KH",
            Tuq,
            at,
            false,
            "do not cover document type KH",
        ),
        (
            "snv-pgd",
            "SNV",
            "CV",
            Tuq,
            at,
            false,
            "not the head of SNV",
        ),
        (
            "snv-pgd",
            "SNV",
            "CV",
            Tuq,
            t(20, 9, 0),
            true,
            "delegation uq-2",
        ),
        // TL.: revoked at 22 Nov.
        ("cvp", "SVHTT", "BC", Tl, at, true, "delegation tl-1"),
        (
            "cvp",
            "SVHTT",
            "BC",
            Tl,
            t(23, 0, 0),
            false,
            "no TL. delegation",
        ),
    ];
    for (official, agency, doc_type, form, at, want, words) in cases {
        let v = judge(
            &org,
            &SigningAct {
                official,
                agency,
                doc_type,
                form,
                at,
            },
        );
        assert_eq!(
            v.passed,
            want,
            "{official} {} {agency} {doc_type} at {at}: {}",
            form.as_str(),
            v.reason
        );
        assert!(
            v.reason.contains(words),
            "{official} {}: reason {:?} lacks {words:?}",
            form.as_str(),
            v.reason
        );
    }
    let kt = judge(
        &org,
        &SigningAct {
            official: "pgd1",
            agency: "SVHTT",
            doc_type: "BC",
            form: Kt,
            at,
        },
    );
    assert_eq!(kt.on_behalf_of.as_deref(), Some("gd"));
}

#[test]
fn org_changes_are_validated_against_history() {
    let mut org = org();
    let bad = [
        appoint("x", "SXD", None, Position::Clerk),
        appoint("x", "SVHTT", Some("NOPE"), Position::Clerk),
        appoint("pgd1", "SVHTT", None, Position::DeputyHead),
        appoint("other-head", "SVHTT", None, Position::Head),
        OrgEvent::OfficialRelieved {
            official: "pgd1".into(),
            agency: "SVHTT".into(),
            position: Position::Head,
            at: t(2, 0, 0),
        },
        OrgEvent::AgencyCreated {
            code: "svhtt".into(),
            name: "x".into(),
            parent: None,
            collegial: false,
        },
        OrgEvent::AgencyCreated {
            code: "SVHTT".into(),
            name: "x".into(),
            parent: None,
            collegial: false,
        },
        OrgEvent::DelegationRevoked {
            id: "tl-1".into(),
            at: t(23, 0, 0),
        },
        OrgEvent::CertificateBound {
            official: "pgd1".into(),
            fingerprint: "AB".into(),
            serial: "01".into(),
            issuer: "CA".into(),
            at: t(2, 0, 0),
        },
    ];
    for e in &bad {
        assert!(org.validate(e).is_err(), "should refuse {e:?}");
    }
    // Only the head delegates.
    let by_deputy = OrgEvent::DelegationGranted {
        id: "uq-x".into(),
        form: DelegationForm::Tuq,
        from: "pgd1".into(),
        to: "cvp".into(),
        agency: "SVHTT".into(),
        valid_from: t(10, 0, 0),
        valid_until: t(20, 0, 0),
        doc_types: vec!["CV".into()],
    };
    assert!(org
        .validate(&by_deputy)
        .unwrap_err()
        .to_string()
        .contains("only the head delegates"));
    // Relieving the head makes room for a new one from then on.
    let relieve = OrgEvent::OfficialRelieved {
        official: "gd".into(),
        agency: "SVHTT".into(),
        position: Position::Head,
        at: t(21, 0, 0),
    };
    org.validate(&relieve).unwrap();
    org.apply(&relieve);
    // …but not before: two heads may never overlap.
    let early = OrgEvent::OfficialAppointed {
        official: "gd3".into(),
        name: "gd3".into(),
        agency: "SVHTT".into(),
        unit: None,
        position: Position::Head,
        title: None,
        from: t(20, 0, 0),
    };
    assert!(org
        .validate(&early)
        .unwrap_err()
        .to_string()
        .contains("overlapping"));
    let new_head = OrgEvent::OfficialAppointed {
        official: "gd2".into(),
        name: "gd2".into(),
        agency: "SVHTT".into(),
        unit: None,
        position: Position::Head,
        title: None,
        from: t(21, 0, 0),
    };
    org.validate(&new_head).unwrap();
    org.apply(&new_head);
    assert_eq!(
        org.holder("SVHTT", Position::Head, t(20, 0, 0))
            .unwrap()
            .official,
        "gd"
    );
    assert_eq!(
        org.holder("SVHTT", Position::Head, t(21, 0, 0))
            .unwrap()
            .official,
        "gd2"
    );
    let snapshot = org.as_of(t(20, 12, 0));
    assert!(snapshot.appointments.iter().any(|a| a.official == "gd"));
    assert!(!snapshot.appointments.iter().any(|a| a.official == "gd2"));
}

#[test]
fn authority_names_parse_and_print() {
    for (s, a) in [
        ("KT.", Authority::Kt),
        ("kt", Authority::Kt),
        ("TM.", Authority::Tm),
        ("TL.", Authority::Tl),
        ("TUQ.", Authority::Tuq),
        ("Q.", Authority::Q),
        ("", Authority::Direct),
    ] {
        assert_eq!(Authority::parse(s), Some(a));
    }
    assert_eq!(Authority::parse("XX."), None);
    assert_eq!(serde_json::to_string(&Authority::Kt).unwrap(), "\"KT.\"");
    assert_eq!(Authority::Tuq.as_str(), "TUQ.");
}
