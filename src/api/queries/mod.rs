//! Queries over the projections, one file per view beside
//! `src/projections/`: inboxes and read marks (`inbox.rs`), deadlines with
//! statistics and the overdue CSV (`deadlines.rs`), registers in JSON and
//! CSV (`registers.rs`), the issued-documents feed (`feed.rs`) and signature
//! evidence (`signatures.rs`). Every query accepts `?min_position=P` (or the header
//! `Vanthu-Min-Position: P`) and waits up to 2 s for its projection to pass
//! P, else answers 503 with `Retry-After`: read-your-writes.
//!
//! Must never: compute a deadline status any other way than
//! `projections::deadlines::Row::status`, or show rows of agencies the
//! caller has no part in.

mod deadlines;
mod feed;
mod inbox;
mod registers;
mod signatures;

pub use deadlines::*;
pub use feed::*;
pub use inbox::*;
pub use registers::*;
pub use signatures::*;

use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use crate::domain::access::ViewRefusal;
use crate::http::auth::Caller;
use crate::http::problem::{from_append, Kind, Problem};
use crate::http::AppState;
use crate::store::StoreError;

/// How long a query waits for its projection to catch up.
pub const CATCH_UP: Duration = Duration::from_secs(2);
/// Default and largest page size.
const LIMIT: usize = 50;
const MAX_LIMIT: usize = 500;

use crate::http::problem::from_store as internal;

/// Waits until projection `name` has applied position `min` (from the query
/// or the `Vanthu-Min-Position` header); 503 with Retry-After if it does not
/// within 2 s.
pub async fn caught_up(
    state: &AppState,
    req: &HttpRequest,
    min: Option<u64>,
    name: &str,
) -> Result<(), Problem> {
    let header = match req.headers().get("Vanthu-Min-Position") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| Problem::bad_request("Vanthu-Min-Position must be a position"))?,
        ),
    };
    let Some(min) = min.max(header) else {
        return Ok(());
    };
    let head = state.log.head();
    if min > head {
        // Positions are only ever handed out by appends: one beyond the head
        // was never given to anyone, and waiting for it could last forever.
        return Err(Problem::bad_request(format!(
            "min_position {min} is beyond the log's head {head}: use a position a response gave you"
        )));
    }
    if state.projections.wait(name, min, CATCH_UP).await {
        Ok(())
    } else {
        Err(
            Problem::new(Kind::ProjectionBehind, "The view has not caught up yet").with_detail(
                format!(
                    "{name} is at position {}, not yet {min}; retry shortly",
                    state.projections.position(name)
                ),
            ),
        )
    }
}

/// Decodes a row of view `name`; a row that does not decode is never
/// skipped (a register would come out short, the feed would skip): the
/// answer is 503 and `/readyz` reports the view until it is rebuilt.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    state: &AppState,
    name: &str,
    key: &[u8],
    bytes: &[u8],
) -> Result<T, Problem> {
    serde_json::from_slice(bytes).map_err(|e| {
        state.projections.mark_unreadable(name, key, &e.to_string());
        Problem::new(Kind::ViewUnreadable, "A view holds a row it cannot read").with_detail(
            format!(
            "the {name} view cannot answer completely; an operator must rebuild it (see /readyz)"
        ),
        )
    })
}

fn limit(raw: Option<usize>) -> Result<usize, Problem> {
    match raw {
        None => Ok(LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(n) => Err(Problem::bad_request(format!(
            "limit {n} is not within 1..={MAX_LIMIT}"
        ))),
    }
}

pub(crate) fn table<'a>(state: &'a AppState, name: &str) -> &'a crate::store::tables::Table {
    state
        .projections
        .table(name)
        .expect("every projection is opened at start")
}

/// Runs blocking RocksDB work off the HTTP workers.
pub(crate) async fn blocking<T: Send + 'static>(
    state: web::Data<AppState>,
    f: impl FnOnce(&AppState) -> Result<T, Problem> + Send + 'static,
) -> Result<T, Problem> {
    web::block(move || f(&state)).await.map_err(|e| {
        internal(StoreError::Io(
            "blocking task".into(),
            std::io::Error::other(e.to_string()),
        ))
    })?
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn csv(header: &[&str], lines: impl Iterator<Item = Vec<String>>) -> String {
    let mut out = String::from("\u{feff}"); // BOM: Excel opens Vietnamese text correctly
    out.push_str(&header.join(","));
    out.push_str("\r\n");
    for line in lines {
        out.push_str(
            &line
                .iter()
                .map(|f| csv_field(f))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push_str("\r\n");
    }
    out
}

fn csv_response(name: &str, body: String) -> HttpResponse {
    // Only safe characters reach the header, whatever the request said.
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{name}\""),
        ))
        .body(body)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinPosition {
    pub min_position: Option<u64>,
}

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(my_inbox)
        .service(unit_inbox)
        .service(mark_read)
        .service(list_deadlines)
        .service(deadline_stats)
        .service(overdue_csv)
        .service(register)
        .service(issued_feed)
        .service(verification);
}

/// The problem for a view the caller may not read as asked.
pub(crate) fn refused(r: ViewRefusal) -> Problem {
    match r {
        ViewRefusal::NameTheAgency => Problem::bad_request("name the agency"),
        ViewRefusal::Forbidden(why) => Problem::forbidden(why),
    }
}
