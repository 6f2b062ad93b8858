//! The issued-documents feed for integrations, resumable by cursor, with
//! long polling.
//!
//! Must never: skip or repeat an entry, or show a confidential document.

use actix_web::{get, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::*;
use crate::projections::feed;

/// Scope an integration's token needs for the feed.
pub const FEED_SCOPE: &str = "feed:read";

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct FeedQuery {
    /// Resume after this cursor (0: from the start).
    pub after: Option<u64>,
    pub limit: Option<usize>,
    /// Long-poll: wait up to this many seconds (≤ 60) for an entry.
    pub wait: Option<u64>,
    pub min_position: Option<u64>,
}

/// `GET /v1/feed/issued`: issued, recalled and replaced documents in log
/// order, for integrations (scope `feed:read`).
#[utoipa::path(tag = "queries", params(FeedQuery),
    responses((status = 200, description = "{entries, next_cursor}"), (status = 400), (status = 401), (status = 403)))]
#[get("/v1/feed/issued")]
pub(crate) async fn issued_feed(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    q: web::Query<FeedQuery>,
) -> Result<HttpResponse, Problem> {
    if !caller.has_scope(FEED_SCOPE) {
        return Err(Problem::forbidden(format!(
            "the feed is for integration clients registered with scope {FEED_SCOPE}"
        )));
    }
    caught_up(&state, &req, q.min_position, "feed").await?;
    let limit = limit(q.limit)?;
    let wait = q.wait.unwrap_or(0);
    if wait > 60 {
        return Err(Problem::bad_request("wait is at most 60 seconds"));
    }
    let after = q.after.unwrap_or(0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    let t = table(&state, "feed");
    loop {
        let seen = state.projections.position("feed");
        let start = feed::key(after);
        let rows = t
            .scan(b"f/", Some(start.as_bytes()), limit)
            .map_err(internal)?;
        let entries: Vec<feed::FeedEntry> = rows
            .iter()
            .map(|(k, v)| decode(&state, "feed", k, v))
            .collect::<Result<_, _>>()?;
        let now = tokio::time::Instant::now();
        if !entries.is_empty() || now >= deadline {
            let next = entries.last().map_or(after, |e| e.cursor);
            return Ok(HttpResponse::Ok().json(json!({
                "entries": entries,
                "next_cursor": next,
            })));
        }
        // Long-poll: wake when the feed projection moves past what we saw.
        state
            .projections
            .wait("feed", seen + 1, deadline - now)
            .await;
    }
}
