//! Folding an organisation event into the history.
//!
//! Must never: refuse an event (validation is `validate`'s) or forget
//! history (an ending closes a span; nothing is overwritten).

use super::*;

impl Org {
    /// Applies an event (validated before, or read back from the log).
    pub fn apply(&mut self, event: &OrgEvent) {
        match event.clone() {
            OrgEvent::AgencyCreated {
                code,
                name,
                parent,
                collegial,
            } => {
                self.agencies.insert(
                    code.clone(),
                    Agency {
                        code,
                        name,
                        parent,
                        collegial,
                        organ_id: None,
                        peer: None,
                    },
                );
            }
            OrgEvent::UnitCreated { agency, code, name } => {
                self.units
                    .insert((agency.clone(), code.clone()), Unit { agency, code, name });
            }
            OrgEvent::OfficialAppointed {
                official,
                name,
                agency,
                unit,
                position,
                title,
                from,
            } => {
                self.appointments.push(Appointment {
                    official,
                    name,
                    agency,
                    unit,
                    position,
                    title,
                    span: Span { from, until: None },
                });
            }
            OrgEvent::OfficialRelieved {
                official,
                agency,
                position,
                at,
            } => {
                let open = self
                    .appointments
                    .iter()
                    .position(|a| a.is_open(&official, &agency, position));
                if let Some(i) = open {
                    self.appointments[i].span.until = Some(at);
                }
            }
            OrgEvent::CertificateBound {
                official,
                fingerprint,
                serial,
                issuer,
                at,
            } => {
                self.bindings.push(Binding {
                    official,
                    fingerprint,
                    serial,
                    issuer,
                    span: Span {
                        from: at,
                        until: None,
                    },
                });
            }
            OrgEvent::CertificateRevoked {
                fingerprint, at, ..
            } => {
                for b in &mut self.bindings {
                    if b.fingerprint == fingerprint && b.span.until.is_none() {
                        b.span.until = Some(at);
                    }
                }
            }
            OrgEvent::DelegationGranted {
                id,
                form,
                from,
                to,
                agency,
                valid_from,
                valid_until,
                doc_types,
            } => {
                self.delegations.push(Delegation {
                    id,
                    form,
                    from,
                    to,
                    agency,
                    span: Span {
                        from: valid_from,
                        until: Some(valid_until),
                    },
                    doc_types,
                    revoked_at: None,
                });
            }
            OrgEvent::AdminGranted { official, at } => grant(&mut self.admins, official, at),
            OrgEvent::AdminRevoked { official, at } => revoke(&mut self.admins, &official, at),
            OrgEvent::AuditorGranted { official, at } => grant(&mut self.auditors, official, at),
            OrgEvent::AuditorRevoked { official, at } => revoke(&mut self.auditors, &official, at),
            OrgEvent::ClientRegistered {
                id,
                name,
                scopes,
                at,
            } => {
                self.clients.push(Client {
                    id,
                    name,
                    scopes,
                    span: Span {
                        from: at,
                        until: None,
                    },
                });
            }
            OrgEvent::ClientRevoked { id, at } => {
                for c in &mut self.clients {
                    if c.id == id && c.span.until.is_none() {
                        c.span.until = Some(at);
                    }
                }
            }
            OrgEvent::AgencyIdentified {
                agency, organ_id, ..
            } => {
                if let Some(a) = self.agencies.get_mut(&agency) {
                    a.organ_id = Some(organ_id);
                }
            }
            OrgEvent::ExternalAgencyRegistered {
                code,
                name,
                organ_id,
                peer,
                ..
            } => {
                self.agencies.insert(
                    code.clone(),
                    Agency {
                        code,
                        name,
                        parent: None,
                        collegial: false,
                        organ_id: Some(organ_id),
                        peer: Some(peer),
                    },
                );
            }
            OrgEvent::WebhookSubscribed {
                id,
                client,
                url,
                events,
                agencies,
                at,
            } => self.webhooks.push(Webhook {
                id,
                client,
                url,
                events,
                agencies,
                span: Span {
                    from: at,
                    until: None,
                },
                rotations: Vec::new(),
            }),
            OrgEvent::WebhookSecretRotated { id, at } => {
                if let Some(w) = self.open_webhook_mut(&id) {
                    w.rotations.push(at);
                }
            }
            OrgEvent::WebhookUnsubscribed { id, at } => {
                if let Some(w) = self.open_webhook_mut(&id) {
                    w.span.until = Some(at);
                }
            }
            OrgEvent::DelegationRevoked { id, at } => {
                for d in &mut self.delegations {
                    if d.id == id && d.revoked_at.is_none() {
                        d.revoked_at = Some(at);
                        d.span.until = Some(d.span.until.map_or(at, |u| u.min(at)));
                    }
                }
            }
        }
    }

    /// The webhook `id` that has not ended (at most one).
    fn open_webhook_mut(&mut self, id: &str) -> Option<&mut Webhook> {
        self.webhooks
            .iter_mut()
            .find(|w| w.id == id && w.span.until.is_none())
    }

    /// The webhook `id` that has not ended (at most one).
    pub(super) fn open_webhook(&self, id: &str) -> Option<&Webhook> {
        self.webhooks
            .iter()
            .find(|w| w.id == id && w.span.until.is_none())
    }

    /// The appointment of `official` to `position` in `agency` that has not
    /// ended (at most one: `validate` refuses a second).
    pub(super) fn open_appointment(
        &self,
        official: &str,
        agency: &str,
        position: Position,
    ) -> Option<&Appointment> {
        self.appointments
            .iter()
            .find(|a| a.is_open(official, agency, position))
    }
}

/// Gives a role (its holders, with when) to `official` from `at`.
fn grant(holders: &mut Vec<(String, Span)>, official: String, at: DateTime<Utc>) {
    holders.push((
        official,
        Span {
            from: at,
            until: None,
        },
    ));
}

/// Ends `official`'s current hold of a role at `at`.
fn revoke(holders: &mut [(String, Span)], official: &str, at: DateTime<Utc>) {
    for (o, span) in holders {
        if o == official && span.until.is_none() {
            span.until = Some(at);
        }
    }
}
