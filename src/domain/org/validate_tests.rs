//! Tests of the organisation's rules (`validate.rs`): webhook subscriptions,
//! clients, external agencies and identifiers, which events may be applied
//! to the history and why the others are refused.

use super::*;
use chrono::TimeZone;

fn at(h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2031, 3, 3, h, 0, 0).unwrap()
}

/// An organisation with agency UBND, a feed client and an org-only client.
fn org() -> Org {
    let mut org = Org::default();
    for e in [
        OrgEvent::AgencyCreated {
            code: "UBND".into(),
            name: "Ủy ban nhân dân tỉnh".into(),
            parent: None,
            collegial: true,
        },
        OrgEvent::ClientRegistered {
            id: "portal".into(),
            name: "Cổng".into(),
            scopes: vec!["feed:read".into()],
            at: at(1),
        },
        OrgEvent::ClientRegistered {
            id: "directory".into(),
            name: "Danh bạ".into(),
            scopes: vec!["org:read".into()],
            at: at(1),
        },
    ] {
        org.validate(&e).unwrap();
        org.apply(&e);
    }
    org
}

fn subscribe(id: &str, client: &str, url: &str, events: &[&str], agencies: &[&str]) -> OrgEvent {
    OrgEvent::WebhookSubscribed {
        id: id.into(),
        client: client.into(),
        url: url.into(),
        events: events.iter().map(|s| s.to_string()).collect(),
        agencies: agencies.iter().map(|s| s.to_string()).collect(),
        at: at(2),
    }
}

#[test]
fn webhook_subscriptions_need_a_feed_client_a_sendable_url_and_known_kinds() {
    let issued = &["document.issued"][..];
    let cases: Vec<(&str, OrgEvent, bool)> = vec![
        (
            "https",
            subscribe("h", "portal", "https://portal.example.vn/hook", issued, &[]),
            true,
        ),
        (
            "http to loopback",
            subscribe("h", "portal", "http://127.0.0.1:9000/hook", issued, &[]),
            true,
        ),
        (
            "http to localhost",
            subscribe("h", "portal", "http://localhost/hook", issued, &[]),
            true,
        ),
        (
            "http to ::1",
            subscribe("h", "portal", "http://[::1]:8080/", issued, &[]),
            true,
        ),
        (
            "every kind, one agency",
            subscribe("h", "portal", "https://p.vn/", WEBHOOK_EVENTS, &["UBND"]),
            true,
        ),
        (
            "http elsewhere",
            subscribe("h", "portal", "http://portal.example.vn/hook", issued, &[]),
            false,
        ),
        (
            "http to a private address",
            subscribe("h", "portal", "http://10.0.0.5/hook", issued, &[]),
            false,
        ),
        (
            "ftp",
            subscribe("h", "portal", "ftp://portal.example.vn/", issued, &[]),
            false,
        ),
        (
            "not absolute",
            subscribe("h", "portal", "/hook", issued, &[]),
            false,
        ),
        (
            "credentials",
            subscribe("h", "portal", "https://a:b@p.vn/", issued, &[]),
            false,
        ),
        (
            "fragment",
            subscribe("h", "portal", "https://p.vn/#x", issued, &[]),
            false,
        ),
        (
            "too long",
            subscribe(
                "h",
                "portal",
                &format!("https://p.vn/{}", "a".repeat(2000)),
                issued,
                &[],
            ),
            false,
        ),
        (
            "no kinds",
            subscribe("h", "portal", "https://p.vn/", &[], &[]),
            false,
        ),
        (
            "unknown kind",
            subscribe("h", "portal", "https://p.vn/", &["document.drafted"], &[]),
            false,
        ),
        (
            "kind twice",
            subscribe(
                "h",
                "portal",
                "https://p.vn/",
                &["document.issued", "document.issued"],
                &[],
            ),
            false,
        ),
        (
            "unknown agency",
            subscribe("h", "portal", "https://p.vn/", issued, &["SXD"]),
            false,
        ),
        (
            "unknown client",
            subscribe("h", "nobody", "https://p.vn/", issued, &[]),
            false,
        ),
        (
            "client without the feed",
            subscribe("h", "directory", "https://p.vn/", issued, &[]),
            false,
        ),
        (
            "bad id",
            subscribe("h/1", "portal", "https://p.vn/", issued, &[]),
            false,
        ),
    ];
    for (what, event, ok) in cases {
        assert_eq!(
            org().validate(&event).is_ok(),
            ok,
            "{what}: {:?}",
            org().validate(&event)
        );
    }
}

#[test]
fn external_agencies_and_identifiers() {
    let external = |code: &str, organ: &str, peer: &str| OrgEvent::ExternalAgencyRegistered {
        code: code.into(),
        name: "UBND tỉnh Hà Tĩnh".into(),
        organ_id: organ.into(),
        peer: peer.into(),
        at: at(2),
    };
    let identify = |agency: &str, organ: &str| OrgEvent::AgencyIdentified {
        agency: agency.into(),
        organ_id: organ.into(),
        at: at(2),
    };
    let mut org = org();
    for e in [
        identify("UBND", "000.00.00.H40"),
        external("HTUBND", "000.00.00.H42", "ha-tinh"),
    ] {
        org.validate(&e).unwrap();
        org.apply(&e);
    }
    assert_eq!(
        org.agency_by_organ("000.00.00.H42")
            .map(|a| a.code.as_str()),
        Some("HTUBND")
    );
    assert!(org.agencies["HTUBND"].is_external());
    assert!(!org.agencies["UBND"].is_external());
    let cases: Vec<(&str, OrgEvent)> = vec![
        (
            "a taken identifier",
            external("HT2", "000.00.00.H40", "ha-tinh"),
        ),
        ("a taken code", external("UBND", "000.00.00.H43", "ha-tinh")),
        ("a bad identifier", external("HT3", "h43", "ha-tinh")),
        ("a bad peer", external("HT4", "000.00.00.H44", "ha tinh")),
        (
            "a lower-case code",
            external("ht5", "000.00.00.H45", "ha-tinh"),
        ),
        ("another's identifier", identify("UBND", "000.00.00.H42")),
        (
            "an external agency identified again",
            identify("HTUBND", "000.00.00.H46"),
        ),
        ("an unknown agency", identify("SXD", "000.00.00.H47")),
        (
            "a unit in an external agency",
            OrgEvent::UnitCreated {
                agency: "HTUBND".into(),
                code: "VP".into(),
                name: "Văn phòng".into(),
            },
        ),
        (
            "an official in an external agency",
            OrgEvent::OfficialAppointed {
                official: "ht-van-thu".into(),
                name: "X".into(),
                agency: "HTUBND".into(),
                unit: None,
                position: Position::Clerk,
                title: None,
                from: at(3),
            },
        ),
    ];
    for (what, e) in cases {
        assert!(org.validate(&e).is_err(), "{what} accepted");
    }
    // Identifying an agency again with its own identifier is no change.
    org.validate(&identify("UBND", "000.00.00.H40")).unwrap();
}

#[test]
fn a_webhook_is_subscribed_once_rotated_and_ended_while_it_exists() {
    let mut org = org();
    let first = subscribe("h", "portal", "https://p.vn/", &["document.issued"], &[]);
    org.validate(&first).unwrap();
    org.apply(&first);
    assert!(org.validate(&first).is_err(), "the same id twice");
    let rotate_early = OrgEvent::WebhookSecretRotated {
        id: "h".into(),
        at: at(2),
    };
    org.validate(&rotate_early).unwrap();
    for e in [
        OrgEvent::WebhookSecretRotated {
            id: "h".into(),
            at: at(3),
        },
        OrgEvent::WebhookUnsubscribed {
            id: "h".into(),
            at: at(4),
        },
    ] {
        org.validate(&e).unwrap();
        org.apply(&e);
    }
    assert!(org.webhook_at("h", at(3)).is_some());
    assert!(org.webhook_at("h", at(4)).is_none());
    for e in [
        OrgEvent::WebhookSecretRotated {
            id: "h".into(),
            at: at(5),
        },
        OrgEvent::WebhookUnsubscribed {
            id: "h".into(),
            at: at(5),
        },
    ] {
        assert!(org.validate(&e).is_err(), "{e:?} after the end");
    }
    // Ended, the id stays taken: its secrets and deliveries are its own.
    assert!(org.validate(&first).is_err(), "an ended id reused");
}

#[test]
fn a_revoked_client_has_no_webhook() {
    let mut org = org();
    let e = subscribe("h", "portal", "https://p.vn/", &["document.issued"], &[]);
    org.apply(&e);
    org.apply(&OrgEvent::ClientRevoked {
        id: "portal".into(),
        at: at(3),
    });
    assert!(org.webhook_at("h", at(2)).is_some());
    assert!(org.webhook_at("h", at(3)).is_none());
}

#[test]
fn a_rotated_secret_signs_beside_the_new_one_for_a_day() {
    let mut org = org();
    org.apply(&subscribe(
        "h",
        "portal",
        "https://p.vn/",
        &["document.issued"],
        &[],
    ));
    let rotate = |t| OrgEvent::WebhookSecretRotated {
        id: "h".into(),
        at: t,
    };
    org.apply(&rotate(at(10)));
    org.apply(&rotate(at(12)));
    let w = org.webhook_at("h", at(12)).unwrap().clone();
    let day = chrono::Duration::hours(WEBHOOK_ROTATION_OVERLAP_HOURS);
    let cases = [
        (at(2), vec![0]),
        (at(10), vec![1, 0]),
        (at(11), vec![1, 0]),
        // Two rotations within a day: both earlier secrets still sign.
        (at(12), vec![2, 1, 0]),
        (at(10) + day - chrono::Duration::seconds(1), vec![2, 1, 0]),
        (at(10) + day, vec![2, 1]),
        (at(12) + day - chrono::Duration::seconds(1), vec![2, 1]),
        (at(12) + day, vec![2]),
    ];
    for (t, want) in cases {
        assert_eq!(w.generations_at(t), want, "at {t}");
    }
}

#[test]
fn a_webhook_wants_its_kinds_about_its_agencies() {
    let mut org = org();
    org.apply(&subscribe(
        "all",
        "portal",
        "https://p.vn/",
        &["document.issued"],
        &[],
    ));
    org.apply(&subscribe(
        "ubnd",
        "portal",
        "https://p.vn/",
        &["document.issued"],
        &["UBND"],
    ));
    let all = org.webhook_at("all", at(3)).unwrap();
    let ubnd = org.webhook_at("ubnd", at(3)).unwrap();
    assert!(all.wants("document.issued", &["SNV"]));
    assert!(!all.wants("document.replied", &["SNV"]));
    assert!(ubnd.wants("document.issued", &["SNV", "UBND"]));
    assert!(!ubnd.wants("document.issued", &["SNV"]));
}
