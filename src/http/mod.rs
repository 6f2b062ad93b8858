//! The HTTP edge both doors share: the JSON API (`api`) and the pages (`ui`)
//! stand on it. It holds the application state handlers reach
//! ([`AppState`]), authentication (`auth`: tokens → `Caller`), the one
//! error → RFC 9457 problem table (`problem`), request ids (`request_id`),
//! Prometheus metrics (`metrics`), each connection's framing (`wire`: the
//! HTTP layer's own errors as problem+json too) and HTTPS (`tls`).
//!
//! Must never: import `api` or `ui` (they import it), read `config` (the
//! composition root hands it settings), or decide a rule (the domain does).

pub mod auth;
pub mod metrics;
pub mod problem;
pub mod request_id;
mod state;
pub mod tls;
pub mod wire;

pub use state::{AppState, JSON_LIMIT};
