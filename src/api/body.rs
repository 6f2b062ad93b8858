//! Request bodies: read up to a limit (413 beyond), and JSON command
//! bodies parsed only when they say they are JSON (415 otherwise) and are
//! a JSON object (400 otherwise).
//!
//! Must never: buffer more than the limit, guess a body's type, or take
//! anything but an object as a command (serde's derived visitors would
//! also take an array, field by field in declaration order).

use actix_web::{web, HttpRequest};

use crate::http::problem::{Kind, Problem};

/// Reads a request body up to `limit` bytes (413 beyond).
pub async fn read_body(mut payload: web::Payload, limit: usize) -> Result<web::Bytes, Problem> {
    use futures_util::StreamExt;
    let too_large = || {
        Problem::new(Kind::TooLarge, "The request body is too large")
            .with_detail(format!("the limit is {limit} bytes"))
    };
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| Problem::bad_request(format!("reading the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Parses a JSON command body (415 unless JSON, 400 if malformed or not
/// an object; an empty body without a content type is `{}`).
pub fn parse_json<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    body: &[u8],
) -> Result<T, Problem> {
    let ct = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = ct.split(';').next().unwrap_or("").trim();
    let empty_ok = body.is_empty() && ct.is_empty();
    if !empty_ok && !essence.eq_ignore_ascii_case("application/json") {
        return Err(
            Problem::new(Kind::UnsupportedMediaType, "Send application/json")
                .with_detail(format!("got content type {ct:?}")),
        );
    }
    let body = if body.is_empty() {
        b"{}".as_slice()
    } else {
        body
    };
    // RFC 8259 §2: insignificant whitespace may precede the value.
    let first = body
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    if first != Some(&b'{') {
        return Err(Problem::bad_request(
            "body: a command body is a JSON object ({…})",
        ));
    }
    serde_json::from_slice(body).map_err(|e| Problem::bad_request(format!("body: {e}")))
}
