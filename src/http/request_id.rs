//! A request id for every request: the caller's `X-Request-Id` when it is
//! sane (1–128 characters of letters, digits and `-._:`), else a new UUID
//! v7. It is returned in the response's `X-Request-Id`, carried by the
//! request's tracing span (so every log line of the request has it, and an
//! access-log line closes it), and recorded in the metadata of every event
//! the request appends (`request_id`), so the audit trail joins the logs.
//!
//! Must never: log a header, a token or a body; or accept an id that could
//! forge log structure (control characters, spaces, quotes).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest};
use tracing::Instrument;

/// The request's id, in its extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

const HEADER: &str = "x-request-id";

/// Whether a caller's id may be used as is.
pub fn is_sane(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':'))
}

/// The id of `req` (set by the middleware; `None` outside it).
pub fn of(req: &HttpRequest) -> Option<String> {
    req.extensions().get::<RequestId>().map(|r| r.0.clone())
}

/// Middleware: gives the request its id and span, answers with the id, and
/// writes one access-log line (method, route template, status, duration).
pub async fn assign(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_sane(v))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!("request", request_id = %id, method = %req.method());
    let start = std::time::Instant::now();
    let mut res = next.call(req).instrument(span.clone()).await?;
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    span.in_scope(|| {
        tracing::info!(
            route = %route,
            status = res.status().as_u16(),
            ms = start.elapsed().as_secs_f64() * 1e3,
            "request"
        )
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(HeaderName::from_static(HEADER), v);
    }
    Ok(res)
}
