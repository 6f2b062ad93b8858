//! RFC 9457 problem responses: the one place where errors become HTTP.
//!
//! Every error the API returns is `application/problem+json` with a stable
//! `type` URI per kind of error, so clients can branch on it.
//!
//! Must never: leak internal error chains (RocksDB paths, panics) into
//! `detail` for 5xx responses; those go to the log.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::store::{AppendError, StoreError};

/// Prefix of every problem `type`.
pub const TYPE_PREFIX: &str = "urn:vanthu:problem:";

/// A problem details object (RFC 9457 §3).
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Extension members (RFC 9457 §3.2), e.g. a verification report.
    #[serde(flatten)]
    pub extensions: serde_json::Map<String, serde_json::Value>,
}

impl Problem {
    /// A problem of kind `kind` (the part after [`TYPE_PREFIX`]).
    pub fn new(status: StatusCode, kind: &str, title: &str) -> Self {
        Self {
            kind: format!("{TYPE_PREFIX}{kind}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: None,
            extensions: Default::default(),
        }
    }

    /// Adds a human-readable explanation of this occurrence.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Adds an extension member.
    pub fn with(mut self, key: &str, value: impl Serialize) -> Self {
        self.extensions.insert(
            key.to_owned(),
            serde_json::to_value(value).unwrap_or_default(),
        );
        self
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "No such resource")
    }

    /// 403: the caller's role does not allow it; `detail` names the rule.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Not allowed").with_detail(detail)
    }

    /// 422: the request breaks a rule of its own.
    pub fn rule(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "rule",
            "The command breaks a rule",
        )
        .with_detail(detail)
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "The request is malformed",
        )
        .with_detail(detail)
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.title, self.kind)
    }
}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut r = HttpResponse::build(self.status_code());
        r.content_type("application/problem+json");
        if self.status == 401 {
            r.insert_header(("WWW-Authenticate", "Bearer"));
        }
        if self.status == 503 {
            r.insert_header(("Retry-After", "1"));
        }
        r.json(self)
    }
}

/// The problem for a refused document command (the one mapping of domain errors).
pub fn from_domain(e: crate::domain::document::DomainError) -> Problem {
    use crate::domain::document::DomainError;
    let detail = e.to_string();
    match e {
        DomainError::WrongState { state, .. } => Problem::new(
            StatusCode::CONFLICT,
            &format!("wrong-state:{state}"),
            "The command does not fit the document's state",
        )
        .with("state", state)
        .with_detail(detail),
        DomainError::Forbidden(_) => Problem::forbidden(detail),
        DomainError::Invalid(_) => Problem::rule(detail),
    }
}

/// 507: nothing was written for lack of disk space; retry later.
fn storage_full(detail: &str) -> Problem {
    Problem::new(
        StatusCode::INSUFFICIENT_STORAGE,
        "storage-full",
        "The server is out of storage space",
    )
    .with_detail(detail)
}

/// Whether a storage error is the file system running out of space.
fn out_of_space(e: &StoreError) -> bool {
    let text = e.to_string();
    text.contains("No space left on device") || text.contains("NoSpace")
}

/// The problem for a storage failure (logged, not echoed).
pub fn from_store(e: crate::store::StoreError) -> Problem {
    from_append(AppendError::Store(e))
}

/// The problem for a refused append (the one mapping of store errors).
pub fn from_append(e: AppendError) -> Problem {
    let detail = e.to_string();
    match e {
        AppendError::WrongExpectedVersion { .. } => Problem::new(
            StatusCode::CONFLICT,
            "conflict",
            "Changed concurrently; reload and retry",
        ),
        AppendError::IdempotencyConflict { .. } => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency-key-reused",
            "This Idempotency-Key was used for a different request",
        ),
        AppendError::DuplicateEventId { .. } | AppendError::Invalid(_) => Problem::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "The request is malformed",
        ),
        AppendError::Unavailable(_) | AppendError::Indeterminate(_) => {
            // The cause (a storage error) goes to the log, not to the client.
            tracing::error!(error = %detail, "append refused by a stopped log writer");
            return Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "The event log is not accepting writes; retry later with the same Idempotency-Key",
            );
        }
        AppendError::StorageFull(ref why) | AppendError::Store(StoreError::StorageFull(ref why)) => {
            tracing::warn!(error = %why, "write refused: the disk is nearly full");
            return storage_full(why);
        }
        AppendError::Store(ref err) if out_of_space(err) => {
            tracing::error!(error = %err, "storage error: out of space");
            return storage_full(
                "the disk is full; the write failed and the log may have stopped (see /readyz): the operator must free space, then restart the service if /readyz still says the log is not accepting writes",
            );
        }
        AppendError::Store(ref err) => {
            tracing::error!(error = %err, "storage error");
            return Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            );
        }
    }
    .with_detail(detail)
}
