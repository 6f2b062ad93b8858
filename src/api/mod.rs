//! The HTTP API: an actix-web application factory shared by `vanthu serve`
//! and the tests, with the service's routes, body limits and JSON error
//! handling.
//!
//! Must never: carry business rules (they live in `domain`) or touch RocksDB
//! directly (everything goes through `store::EventLog`).

pub mod ops;
pub mod problem;

use actix_web::{web, HttpResponse};

use crate::store::EventLog;
use problem::Problem;

/// Largest JSON body accepted (DESIGN §7).
pub const JSON_LIMIT: usize = 1 << 20;

/// What every handler can reach.
pub struct AppState {
    pub log: EventLog,
}

/// Registers every route and the JSON error handler on an app.
pub fn configure(state: web::Data<AppState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(state)
            .app_data(
                web::JsonConfig::default()
                    .limit(JSON_LIMIT)
                    .error_handler(|err, _req| Problem::bad_request(err.to_string()).into()),
            )
            .service(ops::healthz)
            .service(ops::readyz)
            .default_service(web::to(not_found));
    }
}

async fn not_found() -> HttpResponse {
    actix_web::ResponseError::error_response(&Problem::not_found())
}
