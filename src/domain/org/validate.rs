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
#[path = "validate_tests.rs"]
mod tests;
