//! The organisation over HTTP: `GET /v1/org` (as of now or `?at=`), and
//! `POST /v1/org/events` for admins to record agencies, units,
//! appointments, certificate bindings and delegations.
//!
//! Must never: decide organisation rules here (they are `domain::org`'s) or
//! let anyone but an admin at this instant change the organisation.

use std::sync::{Arc, RwLock};

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::auth::Caller;
use super::problem::{Kind, Problem};
use super::AppState;
use crate::domain::org::{Org, OrgEvent, STREAM};
use crate::store::{
    EventLog, ExpectedVersion, Metadata, NewEvent, RocksLog, StoreError, StreamAppend,
};

/// The organisation as folded from the `org` stream, and that stream's version.
#[derive(Default)]
pub struct OrgState {
    /// The organisation now, shared: a command takes the `Arc`, a change
    /// replaces it (never mutated in place).
    current: RwLock<(Arc<Org>, u64)>,
    /// Serialises changes: validate, append, apply.
    write: tokio::sync::Mutex<()>,
    /// The log read again when its `org` stream moved without this state:
    /// a change recorded through another node of a JetStream log.
    log: Option<RocksLog>,
}

/// 422 `org-rule`: the change breaks a rule of `domain::org`, named in `detail`.
fn org_rule(err: crate::domain::org::OrgError) -> Problem {
    Problem::new(Kind::OrgRule, "The organisation change breaks a rule")
        .with_detail(err.to_string())
}

impl OrgState {
    /// Reads the whole `org` stream.
    pub fn load(log: &RocksLog) -> Result<Arc<Self>, StoreError> {
        let (events, version) = crate::service::load::org_history(log)?;
        let mut org = Org::default();
        for event in &events {
            org.apply(event);
        }
        Ok(Arc::new(Self {
            current: RwLock::new((Arc::new(org), version)),
            write: Default::default(),
            log: Some(log.clone()),
        }))
    }

    /// Runs `f` on the current organisation.
    pub fn read<T>(&self, f: impl FnOnce(&Org) -> T) -> T {
        f(&self.snapshot())
    }

    /// The current organisation, to hold across an await (no copy).
    pub fn snapshot(&self) -> Arc<Org> {
        self.versioned().0
    }

    /// The current organisation and the `org` stream version it folds.
    fn versioned(&self) -> (Arc<Org>, u64) {
        let (org, version) = self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match &self.log {
            Some(log) => self.catch_up(log, org, version),
            None => (org, version),
        }
    }

    /// `org` at `version`, with what the log's `org` stream has after it
    /// applied (a point read when nothing moved). A log that cannot be
    /// read leaves the organisation as it was: every write path reads the
    /// log again and fails there.
    fn catch_up(&self, log: &RocksLog, org: Arc<Org>, version: u64) -> (Arc<Org>, u64) {
        match log.stream_version(STREAM) {
            Ok(Some(v)) if v > version => {}
            _ => return (org, version),
        }
        let Ok((events, now)) = crate::service::load::org_events_after(log, version) else {
            return (org, version);
        };
        let mut next = (*org).clone();
        for e in &events {
            next.apply(e);
        }
        let next = Arc::new(next);
        let mut cur = self.current.write().unwrap_or_else(|e| e.into_inner());
        if cur.1 < now {
            *cur = (Arc::clone(&next), now);
        }
        (next, now)
    }

    /// Validates, appends and applies events, in one serialised step; every
    /// event carries `metadata` (who, and why where it needs saying).
    pub async fn record(
        &self,
        log: &dyn EventLog,
        events: Vec<OrgEvent>,
        metadata: &Metadata,
        idempotency_key: Option<&str>,
    ) -> Result<crate::store::Appended, Problem> {
        let _guard = self.write.lock().await;
        let to_append = |version: u64| {
            let expected = match version {
                0 => ExpectedVersion::NoStream,
                v => ExpectedVersion::Exact(v),
            };
            let new: Vec<NewEvent> = events
                .iter()
                .map(|e| {
                    let payload = serde_json::to_value(e).expect("org events serialise");
                    NewEvent::new(e.event_type(), payload).with_metadata(metadata.clone())
                })
                .collect();
            vec![StreamAppend::new(STREAM, expected, new)]
        };
        // A retry of an append that already happened is answered before the
        // rules are checked again (the first attempt changed what they see).
        if let Some(key) = idempotency_key {
            let done = log
                .replay_of(to_append(0), key)
                .map_err(super::problem::from_append)?;
            if let Some(done) = done {
                return Ok(done);
            }
        }
        let (base, version) = self.versioned();
        let mut next = (*base).clone();
        for e in &events {
            next.validate(e).map_err(org_rule)?;
            next.apply(e);
        }
        let appended = log
            .append(to_append(version), idempotency_key)
            .await
            .map_err(super::problem::from_append)?;
        let written = appended.streams[0].last_version;
        let mut cur = self.current.write().unwrap_or_else(|e| e.into_inner());
        if !appended.replayed && cur.1 < written {
            *cur = (Arc::new(next), written);
        }
        Ok(appended)
    }
}

#[derive(Deserialize)]
pub struct AtQuery {
    /// RFC 3339 instant; default now.
    at: Option<DateTime<Utc>>,
}

/// The organisation as it stood at `?at=` (default: now).
#[utoipa::path(tag = "org", params(("at" = Option<String>, Query, description = "RFC 3339 instant; default now")),
    responses((status = 200, description = "The organisation as of the instant"), (status = 400), (status = 401), (status = 403)))]
#[get("/v1/org")]
pub(crate) async fn get_org(
    caller: Caller,
    state: web::Data<AppState>,
    q: web::Query<AtQuery>,
) -> Result<HttpResponse, Problem> {
    if !caller.is_official() && !caller.has_scope(ORG_SCOPE) {
        return Err(Problem::forbidden(format!(
            "an integration client reads the organisation only with scope {ORG_SCOPE}"
        )));
    }
    let at = q.at.unwrap_or_else(|| state.docs.clock.now());
    let body = state
        .org
        .read(|org| serde_json::to_value(org.as_of(at)).unwrap_or_default());
    Ok(HttpResponse::Ok().json(body))
}

/// The scope an integration client needs to read the organisation.
pub const ORG_SCOPE: &str = "org:read";

/// `POST /v1/org/events` takes the event alone, or this (a reason is
/// required to backdate a change).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WithReason {
    event: OrgEvent,
    reason: String,
}

/// Records one organisation event (admins only).
#[utoipa::path(tag = "org", request_body = OrgEvent,
    responses((status = 201, description = "{position, version, replayed}"), (status = 400), (status = 401), (status = 403), (status = 413), (status = 415), (status = 422)))]
#[post("/v1/org/events")]
pub(crate) async fn post_event(
    caller: Caller,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    if !state
        .org
        .read(|org| org.is_admin(&caller.id, state.docs.clock.now()))
    {
        return Err(Problem::forbidden(format!(
            "only an official with the admin role may change the organisation; {} has none",
            caller.id
        )));
    }
    let key = super::idempotency_key(&req)?;
    let body = super::body::read_body(payload, super::JSON_LIMIT).await?;
    let value: serde_json::Value = super::body::parse_json(&req, &body)?;
    let (event, reason) = if value.get("event").is_some() {
        let c: WithReason = serde_json::from_value(value)
            .map_err(|e| Problem::bad_request(format!("body: {e}")))?;
        (c.event, Some(c.reason))
    } else {
        let event: OrgEvent = serde_json::from_value(value)
            .map_err(|e| Problem::bad_request(format!("body: {e}")))?;
        (event, None)
    };
    if matches!(
        event,
        OrgEvent::WebhookSubscribed { .. }
            | OrgEvent::WebhookSecretRotated { .. }
            | OrgEvent::WebhookUnsubscribed { .. }
    ) {
        return Err(org_rule(crate::domain::org::OrgError::Invalid(
            "webhooks are managed at /v1/admin/webhooks (which answers the secret and takes the instant from the service clock)".into(),
        )));
    }
    event
        .check_backdating(
            state.docs.clock.now(),
            state.org_backdate_window,
            reason.as_deref(),
        )
        .map_err(org_rule)?;
    let appended = state
        .org
        .record(
            &*state.events,
            vec![event],
            &Metadata {
                actor: Some(caller.id.clone()),
                reason,
                request_id: super::request_id::of(&req),
                ..Default::default()
            },
            key.as_deref(),
        )
        .await?;
    Ok(HttpResponse::Created()
        .insert_header(("ETag", format!("\"{}\"", appended.streams[0].last_version)))
        .insert_header(("Vanthu-Position", appended.last_position.to_string()))
        .json(json!({
            "position": appended.last_position,
            "version": appended.streams[0].last_version,
            "replayed": appended.replayed,
        })))
}
