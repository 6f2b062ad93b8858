//! Live refresh: `GET /ui/live?view=deadlines|inbox&after=P` is a stream
//! of server-sent events (HTML Living Standard §9.2) that names the view's
//! position each time its projection moves past `P`. The page's script
//! then fetches its own list again with `min_position` (read-your-writes)
//! and swaps it in, without a full reload.
//!
//! Must never: hold a connection open for long (a stream ends after a
//! minute; the browser reconnects), or say anything but a position.

use std::time::{Duration, Instant};

use actix_web::{web, HttpResponse};
use bytes::Bytes;
use serde::Deserialize;

use super::session::Viewer;
use super::UiError;
use crate::http::AppState;

/// How long one stream lasts before the browser reconnects.
const STREAM: Duration = Duration::from_secs(60);
/// How long to wait for a move before a keep-alive comment.
const IDLE: Duration = Duration::from_secs(15);
/// Moves closer together than this are sent as one: a page re-reads its
/// whole list on each, and a busy log moves many times a second.
const SETTLE: Duration = Duration::from_secs(2);

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/live", web::get().to(live));
}

#[derive(Debug, Deserialize)]
struct LiveQuery {
    view: String,
    after: u64,
}

async fn live(
    state: web::Data<AppState>,
    _viewer: Viewer,
    q: web::Query<LiveQuery>,
) -> Result<HttpResponse, UiError> {
    let name: &'static str = match q.view.as_str() {
        "deadlines" => "deadlines",
        "inbox" => "inbox",
        _ => {
            return Err(UiError::page(
                400,
                "Yêu cầu không hợp lệ",
                "view phải là deadlines hoặc inbox.",
            ))
        }
    };
    let head = state.log.head();
    if q.after > head {
        return Err(UiError::page(
            400,
            "Yêu cầu không hợp lệ",
            &format!("after {} is beyond the log's head {head}.", q.after),
        ));
    }
    let end = Instant::now() + STREAM;
    let first = Bytes::from_static(b"retry: 3000\n\n");
    let stream = futures_util::stream::unfold(
        (state, q.after, end, Some(first)),
        move |(state, after, end, first)| async move {
            if let Some(first) = first {
                return Some((Ok::<_, actix_web::Error>(first), (state, after, end, None)));
            }
            let left = end.checked_duration_since(Instant::now())?;
            if state
                .projections
                .wait(name, after.saturating_add(1), IDLE.min(left))
                .await
            {
                tokio::time::sleep(SETTLE).await;
                let now = state.projections.position(name);
                let event = Bytes::from(format!("event: moved\ndata: {now}\n\n"));
                Some((Ok(event), (state, now, end, None)))
            } else {
                Some((
                    Ok(Bytes::from_static(b": idle\n\n")),
                    (state, after, end, None),
                ))
            }
        },
    );
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-store"))
        .streaming(stream))
}
