//! Whether an organisation event may be applied to the history as it
//! stands: codes and ids, what must exist, what must not overlap.
//!
//! Must never: change the history (that is `apply`).

use super::*;

/// Why an organisation change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrgError {
    #[error("agency {0} already exists")]
    AgencyExists(String),
    #[error("no agency {0}")]
    NoAgency(String),
    #[error("unit {1} already exists in {0}")]
    UnitExists(String, String),
    #[error("no unit {1} in {0}")]
    NoUnit(String, String),
    #[error("{0} already holds {1} in {2}")]
    AlreadyAppointed(String, &'static str, String),
    #[error("{0} does not hold {1} in {2}")]
    NotAppointed(String, &'static str, String),
    #[error("certificate {0} is already bound")]
    CertificateBound(String),
    #[error("certificate {0} is not bound to anyone")]
    CertificateUnknown(String),
    #[error("delegation {0} already exists")]
    DelegationExists(String),
    #[error("no delegation {0} in force")]
    NoDelegation(String),
    #[error("{0}")]
    Invalid(String),
}

/// Official and client ids are token subjects and parts of keys and stream
/// ids (`inbox-{id}`): 1 to 64 of ASCII letters, digits, `.`, `_`, `-`, `@`
/// (an SSO's e-mail-like subjects fit), starting with a letter or digit.
fn check_id(kind: &str, id: &str) -> Result<(), OrgError> {
    let ok = (1..=64).contains(&id.len())
        && id.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'));
    if ok {
        Ok(())
    } else {
        Err(OrgError::Invalid(format!(
            "{kind} id {id:?} must be 1 to 64 ASCII letters, digits, '.', '_', '-' or '@', starting with a letter or digit"
        )))
    }
}

/// Agency and unit codes appear in symbols (`05/QĐ-UBND`) and stream ids:
/// upper-case ASCII letters and digits only.
fn check_code(kind: &str, code: &str) -> Result<(), OrgError> {
    if code.is_empty()
        || !code
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    {
        return Err(OrgError::Invalid(format!(
            "{kind} code {code:?} must be upper-case ASCII letters and digits"
        )));
    }
    Ok(())
}

impl Org {
    /// Checks that `event` may be applied to the history as it stands.
    pub fn validate(&self, event: &OrgEvent) -> Result<(), OrgError> {
        let agency = |code: &str| {
            self.agencies
                .contains_key(code)
                .then_some(())
                .ok_or_else(|| OrgError::NoAgency(code.to_owned()))
        };
        match event {
            OrgEvent::AgencyCreated { code, parent, .. } => {
                check_code("agency", code)?;
                if self.agencies.contains_key(code) {
                    return Err(OrgError::AgencyExists(code.clone()));
                }
                if let Some(p) = parent {
                    agency(p)?;
                }
            }
            OrgEvent::UnitCreated {
                agency: a, code, ..
            } => {
                agency(a)?;
                self.internal(a)?;
                check_code("unit", code)?;
                if self.units.contains_key(&(a.clone(), code.clone())) {
                    return Err(OrgError::UnitExists(a.clone(), code.clone()));
                }
            }
            OrgEvent::OfficialAppointed {
                official,
                agency: a,
                unit,
                position,
                from,
                ..
            } => {
                agency(a)?;
                self.internal(a)?;
                check_id("official", official)?;
                self.not_a_client(official)?;
                if let Some(u) = unit {
                    if !self.units.contains_key(&(a.clone(), u.clone())) {
                        return Err(OrgError::NoUnit(a.clone(), u.clone()));
                    }
                }
                if self.open_appointment(official, a, *position).is_some() {
                    return Err(OrgError::AlreadyAppointed(
                        official.clone(),
                        position.as_str(),
                        a.clone(),
                    ));
                }
                if *position == Position::Head && unit.is_none() {
                    // The new headship [from, ∞) must not overlap any other.
                    let overlapping = self.appointments.iter().find(|x| {
                        x.agency == *a
                            && x.position == Position::Head
                            && x.unit.is_none()
                            && x.span.until.is_none_or(|u| u > *from)
                    });
                    if let Some(h) = overlapping {
                        return Err(OrgError::Invalid(format!(
                            "{a} has a head from {} ({}) overlapping {from}; relieve them first",
                            h.span.from, h.official
                        )));
                    }
                }
            }
            OrgEvent::OfficialRelieved {
                official,
                agency: a,
                position,
                at,
            } => match self.open_appointment(official, a, *position) {
                None => {
                    return Err(OrgError::NotAppointed(
                        official.clone(),
                        position.as_str(),
                        a.clone(),
                    ))
                }
                Some(x) if *at < x.span.from => {
                    return Err(OrgError::Invalid(format!(
                        "relieved at {at}, before the appointment from {}",
                        x.span.from
                    )))
                }
                Some(_) => {}
            },
            OrgEvent::CertificateBound {
                fingerprint,
                official,
                ..
            } => {
                if !self.appointments.iter().any(|x| x.official == *official) {
                    return Err(OrgError::Invalid(format!(
                        "{official} holds no appointment"
                    )));
                }
                if fingerprint.len() != 64
                    || !fingerprint
                        .chars()
                        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
                {
                    return Err(OrgError::Invalid(
                        "fingerprint must be 64 lower-case hex digits (SHA-256 of the DER)".into(),
                    ));
                }
                if self.bindings.iter().any(|b| b.fingerprint == *fingerprint) {
                    return Err(OrgError::CertificateBound(fingerprint.clone()));
                }
            }
            OrgEvent::CertificateRevoked { fingerprint, .. } => {
                if !self
                    .bindings
                    .iter()
                    .any(|b| b.fingerprint == *fingerprint && b.span.until.is_none())
                {
                    return Err(OrgError::CertificateUnknown(fingerprint.clone()));
                }
            }
            OrgEvent::DelegationGranted {
                id,
                agency: a,
                valid_from,
                valid_until,
                from,
                to,
                ..
            } => {
                agency(a)?;
                if self.delegations.iter().any(|d| d.id == *id) {
                    return Err(OrgError::DelegationExists(id.clone()));
                }
                if valid_until <= valid_from {
                    return Err(OrgError::Invalid(
                        "a delegation must end after it starts".into(),
                    ));
                }
                if from == to {
                    return Err(OrgError::Invalid(
                        "an official cannot delegate to himself".into(),
                    ));
                }
                if !self.holds(from, a, Position::Head, *valid_from) {
                    return Err(OrgError::Invalid(format!(
                        "{from} is not the head of {a} at {valid_from}: only the head delegates (TL., TUQ.)"
                    )));
                }
            }
            OrgEvent::DelegationRevoked { id, .. } => {
                if !self
                    .delegations
                    .iter()
                    .any(|d| d.id == *id && d.revoked_at.is_none())
                {
                    return Err(OrgError::NoDelegation(id.clone()));
                }
            }
            OrgEvent::AdminGranted { official, .. } => {
                self.grantable(official, &self.admins, "an admin")?
            }
            OrgEvent::AdminRevoked { official, .. } => held(official, &self.admins, "an admin")?,
            OrgEvent::AuditorGranted { official, .. } => {
                self.grantable(official, &self.auditors, "an auditor")?
            }
            OrgEvent::AuditorRevoked { official, .. } => {
                held(official, &self.auditors, "an auditor")?
            }
            OrgEvent::ClientRegistered { id, scopes, .. } => {
                check_id("client", id)?;
                if self.knows_official(id) {
                    return Err(OrgError::Invalid(format!(
                        "{id} is an official's id; client ids and official ids never overlap"
                    )));
                }
                if self
                    .clients
                    .iter()
                    .any(|c| c.id == *id && c.span.until.is_none())
                {
                    return Err(OrgError::Invalid(format!(
                        "client {id} is already registered"
                    )));
                }
                if scopes.is_empty() {
                    return Err(OrgError::Invalid(format!(
                        "client {id}: give at least one scope"
                    )));
                }
                if let Some(bad) = scopes.iter().find(|s| !CLIENT_SCOPES.contains(&s.as_str())) {
                    return Err(OrgError::Invalid(format!(
                        "client {id}: unknown scope {bad:?} (known: {})",
                        CLIENT_SCOPES.join(", ")
                    )));
                }
            }
            OrgEvent::AgencyIdentified {
                agency: a,
                organ_id,
                ..
            } => {
                agency(a)?;
                if self.agencies.get(a).is_some_and(Agency::is_external) {
                    return Err(OrgError::Invalid(format!(
                        "{a} is an external agency; its identifier came with its registration"
                    )));
                }
                self.organ_id_free(organ_id, a)?;
            }
            OrgEvent::ExternalAgencyRegistered {
                code,
                organ_id,
                peer,
                ..
            } => {
                check_code("agency", code)?;
                if self.agencies.contains_key(code) {
                    return Err(OrgError::AgencyExists(code.clone()));
                }
                self.organ_id_free(organ_id, code)?;
                check_id("peer", peer)?;
            }
            OrgEvent::WebhookSubscribed {
                id,
                client,
                url,
                events,
                agencies,
                at,
            } => self.subscribable(id, client, url, events, agencies, *at)?,
            OrgEvent::WebhookSecretRotated { id, .. }
            | OrgEvent::WebhookUnsubscribed { id, .. } => {
                if self.open_webhook(id).is_none() {
                    return Err(OrgError::Invalid(format!("no webhook {id} is subscribed")));
                }
            }
            OrgEvent::ClientRevoked { id, .. } => {
                if !self
                    .clients
                    .iter()
                    .any(|c| c.id == *id && c.span.until.is_none())
                {
                    return Err(OrgError::Invalid(format!("no client {id} is registered")));
                }
            }
        }
        Ok(())
    }

    /// Refuses agency `a` if it is another system's: it has no units or
    /// officials here.
    fn internal(&self, a: &str) -> Result<(), OrgError> {
        if self.agencies.get(a).is_some_and(Agency::is_external) {
            return Err(OrgError::Invalid(format!(
                "{a} is an external agency (reached through the interchange): it has no units or officials here"
            )));
        }
        Ok(())
    }

    /// A well-formed interchange identifier no other agency holds.
    fn organ_id_free(&self, organ_id: &str, agency: &str) -> Result<(), OrgError> {
        crate::domain::interchange::OrganId::parse(organ_id)
            .map_err(|e| OrgError::Invalid(format!("{agency}: {e}")))?;
        match self.agency_by_organ(organ_id) {
            Some(other) if other.code != agency => Err(OrgError::Invalid(format!(
                "identifier {organ_id} is {}'s already",
                other.code
            ))),
            _ => Ok(()),
        }
    }

    /// Whether a webhook may be subscribed: a new id, a client registered
    /// at `at` that may read the feed (a webhook is the feed, pushed), a
    /// URL it can be sent to, known event kinds and agencies.
    fn subscribable(
        &self,
        id: &str,
        client: &str,
        url: &str,
        events: &[String],
        agencies: &[String],
        at: DateTime<Utc>,
    ) -> Result<(), OrgError> {
        check_id("webhook", id)?;
        // Never reused: an id names one subscription's secrets and deliveries.
        if self.webhooks.iter().any(|w| w.id == id) {
            return Err(OrgError::Invalid(format!(
                "webhook id {id} is taken (ids are never reused: its secrets and deliveries stay its own)"
            )));
        }
        match self.client_at(client, at) {
            None => {
                return Err(OrgError::Invalid(format!(
                    "webhook {id}: no client {client} is registered"
                )))
            }
            Some(c) if !c.scopes.iter().any(|s| s == "feed:read") => {
                return Err(OrgError::Invalid(format!(
                    "webhook {id}: client {client} may not read the feed (scope feed:read), so it may not have the feed pushed"
                )))
            }
            Some(_) => {}
        }
        check_webhook_url(url).map_err(|why| OrgError::Invalid(format!("webhook {id}: {why}")))?;
        if events.is_empty() {
            return Err(OrgError::Invalid(format!(
                "webhook {id}: give at least one event kind (of {})",
                WEBHOOK_EVENTS.join(", ")
            )));
        }
        for (i, e) in events.iter().enumerate() {
            if !WEBHOOK_EVENTS.contains(&e.as_str()) {
                return Err(OrgError::Invalid(format!(
                    "webhook {id}: unknown event kind {e:?} (known: {})",
                    WEBHOOK_EVENTS.join(", ")
                )));
            }
            if events[..i].contains(e) {
                return Err(OrgError::Invalid(format!(
                    "webhook {id}: event kind {e} is named twice"
                )));
            }
        }
        if let Some(a) = agencies.iter().find(|a| !self.agencies.contains_key(*a)) {
            return Err(OrgError::NoAgency(a.clone()));
        }
        Ok(())
    }

    /// Whether `official` may be given a role (`holders`): a valid official
    /// id, not a client's, not holding it already.
    fn grantable(
        &self,
        official: &str,
        holders: &[(String, Span)],
        role: &str,
    ) -> Result<(), OrgError> {
        check_id("official", official)?;
        self.not_a_client(official)?;
        if holds_now(official, holders) {
            return Err(OrgError::Invalid(format!("{official} is already {role}")));
        }
        Ok(())
    }

    /// Refuses an official id that is (or was) a client's.
    fn not_a_client(&self, official: &str) -> Result<(), OrgError> {
        if self.clients.iter().any(|c| c.id == official) {
            return Err(OrgError::Invalid(format!(
                "{official} is an integration client's id; client ids and official ids never overlap"
            )));
        }
        Ok(())
    }
}

/// A webhook is sent over HTTPS; plain HTTP only to this machine (a local
/// relay or a test receiver). No credentials or fragment in the URL: the
/// signature authenticates the sender, and the URL is shown to admins.
fn check_webhook_url(url: &str) -> Result<(), String> {
    if url.len() > 2000 {
        return Err("the URL is longer than 2000 characters".into());
    }
    let parsed = url::Url::parse(url).map_err(|e| format!("URL {url:?} does not parse: {e}"))?;
    let loopback = match parsed.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err(format!("URL {url:?} names no host")),
    };
    match parsed.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(format!(
                "URL {url:?}: webhooks go over https (plain http only to this machine)"
            ))
        }
        other => return Err(format!("URL {url:?}: scheme {other} is not https")),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(format!(
            "URL {url:?} carries credentials; the signature authenticates the sender"
        ));
    }
    if parsed.fragment().is_some() {
        return Err(format!("URL {url:?} has a fragment"));
    }
    Ok(())
}

/// Whether `official` holds a role (`holders`) with no end recorded.
fn holds_now(official: &str, holders: &[(String, Span)]) -> bool {
    holders
        .iter()
        .any(|(o, s)| o == official && s.until.is_none())
}

/// Refuses to revoke a role `official` does not hold.
fn held(official: &str, holders: &[(String, Span)], role: &str) -> Result<(), OrgError> {
    if holds_now(official, holders) {
        Ok(())
    } else {
        Err(OrgError::Invalid(format!("{official} is not {role}")))
    }
}

#[cfg(test)]
mod tests {
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

    fn subscribe(
        id: &str,
        client: &str,
        url: &str,
        events: &[&str],
        agencies: &[&str],
    ) -> OrgEvent {
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
}
