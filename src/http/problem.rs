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

/// Every kind of problem the service answers, one list: its `type` (after
/// [`TYPE_PREFIX`]) and status. docs/API.md's error table lists exactly
/// these (`tests/it/documents.rs` checks it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    BadRequest,
    MalformedRequest,
    HeaderTooLarge,
    HttpError,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    WrongState,
    Conflict,
    PreconditionFailed,
    TooLarge,
    QuotaExceeded,
    UnsupportedMediaType,
    Rule,
    OrgRule,
    SignatureRejected,
    IdempotencyKeyReused,
    Internal,
    Unavailable,
    SealUnavailable,
    ProjectionBehind,
    ViewUnreadable,
    NotReady,
    StorageFull,
}

impl Kind {
    pub const ALL: [Kind; 25] = [
        Kind::BadRequest,
        Kind::MalformedRequest,
        Kind::HeaderTooLarge,
        Kind::HttpError,
        Kind::Unauthorized,
        Kind::Forbidden,
        Kind::NotFound,
        Kind::MethodNotAllowed,
        Kind::WrongState,
        Kind::Conflict,
        Kind::PreconditionFailed,
        Kind::TooLarge,
        Kind::QuotaExceeded,
        Kind::UnsupportedMediaType,
        Kind::Rule,
        Kind::OrgRule,
        Kind::SignatureRejected,
        Kind::IdempotencyKeyReused,
        Kind::Internal,
        Kind::Unavailable,
        Kind::SealUnavailable,
        Kind::ProjectionBehind,
        Kind::ViewUnreadable,
        Kind::NotReady,
        Kind::StorageFull,
    ];

    /// The `type` after [`TYPE_PREFIX`] (`wrong-state:<state>` names a family).
    pub fn code(self) -> &'static str {
        match self {
            Kind::BadRequest => "bad-request",
            Kind::MalformedRequest => "malformed-request",
            Kind::HeaderTooLarge => "header-too-large",
            Kind::HttpError => "http-error",
            Kind::Unauthorized => "unauthorized",
            Kind::Forbidden => "forbidden",
            Kind::NotFound => "not-found",
            Kind::MethodNotAllowed => "method-not-allowed",
            Kind::WrongState => "wrong-state:<state>",
            Kind::Conflict => "conflict",
            Kind::PreconditionFailed => "precondition-failed",
            Kind::TooLarge => "too-large",
            Kind::QuotaExceeded => "quota-exceeded",
            Kind::UnsupportedMediaType => "unsupported-media-type",
            Kind::Rule => "rule",
            Kind::OrgRule => "org-rule",
            Kind::SignatureRejected => "signature-rejected",
            Kind::IdempotencyKeyReused => "idempotency-key-reused",
            Kind::Internal => "internal",
            Kind::Unavailable => "unavailable",
            Kind::SealUnavailable => "seal-unavailable",
            Kind::ProjectionBehind => "projection-behind",
            Kind::ViewUnreadable => "view-unreadable",
            Kind::NotReady => "not-ready",
            Kind::StorageFull => "storage-full",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Kind::BadRequest => StatusCode::BAD_REQUEST,
            Kind::MalformedRequest => StatusCode::BAD_REQUEST,
            Kind::HeaderTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Kind::HttpError => StatusCode::BAD_REQUEST,
            Kind::Unauthorized => StatusCode::UNAUTHORIZED,
            Kind::Forbidden => StatusCode::FORBIDDEN,
            Kind::NotFound => StatusCode::NOT_FOUND,
            Kind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Kind::WrongState => StatusCode::CONFLICT,
            Kind::Conflict => StatusCode::CONFLICT,
            Kind::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Kind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Kind::QuotaExceeded => StatusCode::PAYLOAD_TOO_LARGE,
            Kind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Kind::Rule => StatusCode::UNPROCESSABLE_ENTITY,
            Kind::OrgRule => StatusCode::UNPROCESSABLE_ENTITY,
            Kind::SignatureRejected => StatusCode::UNPROCESSABLE_ENTITY,
            Kind::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Kind::SealUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Kind::ProjectionBehind => StatusCode::SERVICE_UNAVAILABLE,
            Kind::ViewUnreadable => StatusCode::SERVICE_UNAVAILABLE,
            Kind::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            Kind::StorageFull => StatusCode::INSUFFICIENT_STORAGE,
        }
    }

    /// The status as docs/API.md writes it (`4xx` for the HTTP layer's
    /// other refusals, whose status varies).
    pub fn documented_status(self) -> &'static str {
        match self {
            Kind::BadRequest => "400",
            Kind::MalformedRequest => "400",
            Kind::HeaderTooLarge => "431",
            Kind::HttpError => "4xx",
            Kind::Unauthorized => "401",
            Kind::Forbidden => "403",
            Kind::NotFound => "404",
            Kind::MethodNotAllowed => "405",
            Kind::WrongState => "409",
            Kind::Conflict => "409",
            Kind::PreconditionFailed => "412",
            Kind::TooLarge => "413",
            Kind::QuotaExceeded => "413",
            Kind::UnsupportedMediaType => "415",
            Kind::Rule => "422",
            Kind::OrgRule => "422",
            Kind::SignatureRejected => "422",
            Kind::IdempotencyKeyReused => "422",
            Kind::Internal => "500",
            Kind::Unavailable => "503",
            Kind::SealUnavailable => "503",
            Kind::ProjectionBehind => "503",
            Kind::ViewUnreadable => "503",
            Kind::NotReady => "503",
            Kind::StorageFull => "507",
        }
    }
}

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
    /// A problem of `kind`, with its status.
    pub fn new(kind: Kind, title: &str) -> Self {
        Self {
            kind: format!("{TYPE_PREFIX}{}", kind.code()),
            title: title.to_owned(),
            status: kind.status().as_u16(),
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
        Self::new(Kind::NotFound, "No such resource")
    }

    /// 403: the caller's role does not allow it; `detail` names the rule.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(Kind::Forbidden, "Not allowed").with_detail(detail)
    }

    /// 422: the request breaks a rule of its own.
    pub fn rule(detail: impl Into<String>) -> Self {
        Self::new(Kind::Rule, "The command breaks a rule").with_detail(detail)
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(Kind::BadRequest, "The request is malformed").with_detail(detail)
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
        DomainError::WrongState { state, .. } => {
            let mut p = Problem::new(
                Kind::WrongState,
                "The command does not fit the document's state",
            );
            p.kind = format!("{TYPE_PREFIX}wrong-state:{state}");
            p.with("state", state).with_detail(detail)
        }
        DomainError::Forbidden(_) => Problem::forbidden(detail),
        DomainError::Invalid(_) => Problem::rule(detail),
    }
}

/// 507: nothing was written for lack of disk space; retry later.
fn storage_full(detail: &str) -> Problem {
    Problem::new(Kind::StorageFull, "The server is out of storage space").with_detail(detail)
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
        AppendError::WrongExpectedVersion { .. } => Problem::new(Kind::Conflict,
            "Changed concurrently; reload and retry",
        ),
        AppendError::IdempotencyConflict { .. } => Problem::new(Kind::IdempotencyKeyReused,
            "This Idempotency-Key was used for a different request",
        ),
        AppendError::DuplicateEventId { .. } | AppendError::Invalid(_) => Problem::new(Kind::BadRequest,
            "The request is malformed",
        ),
        AppendError::Unavailable(_)
        | AppendError::Indeterminate(_)
        | AppendError::Store(StoreError::Unavailable(_)) => {
            // The cause (a storage error) goes to the log, not to the client.
            tracing::error!(error = %detail, "append refused by a stopped log writer");
            return Problem::new(Kind::Unavailable,
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
            return Problem::new(Kind::Internal,
                "Internal error",
            );
        }
    }
    .with_detail(detail)
}

/// 422 `org-rule`, or the append's problem.
impl From<crate::service::org::OrgFailure> for Problem {
    fn from(e: crate::service::org::OrgFailure) -> Self {
        use crate::service::org::OrgFailure;
        match e {
            OrgFailure::Rule(err) => {
                Problem::new(Kind::OrgRule, "The organisation change breaks a rule")
                    .with_detail(err.to_string())
            }
            OrgFailure::Append(err) => from_append(err),
        }
    }
}

/// 404 (never 403: whether a document exists is not the caller's business).
impl From<crate::service::load::ReadError> for Problem {
    fn from(e: crate::service::load::ReadError) -> Self {
        use crate::service::load::ReadError;
        match e {
            ReadError::NotAnId => Problem::not_found().with_detail("no such document"),
            ReadError::NotFound => Problem::not_found(),
            ReadError::Store(err) => from_store(err),
        }
    }
}

impl From<crate::service::evidence::EvidenceError> for Problem {
    fn from(e: crate::service::evidence::EvidenceError) -> Self {
        use crate::service::evidence::EvidenceError;
        match e {
            EvidenceError::Read(err) => err.into(),
            EvidenceError::NotFound(what) => Problem::not_found().with_detail(what),
            EvidenceError::WrongState(err) => from_domain(err),
            EvidenceError::NotCovered { .. } => Problem::new(
                Kind::Unavailable,
                "The log has not signed a checkpoint covering this document yet",
            )
            .with_detail(e.to_string()),
            EvidenceError::Broken(detail) => {
                Problem::new(Kind::Internal, "Internal error").with_detail(detail)
            }
            EvidenceError::Store(err) => from_store(err),
        }
    }
}
