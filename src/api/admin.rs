//! Operator actions over HTTP, for admins: online backups.
//!
//! Must never: let anyone but an official with the admin role act, or take
//! a path from the request (backups go under the configured `backup_dir`).

use actix_web::{post, web, HttpResponse};

use crate::http::auth::Caller;
use crate::http::problem::{Kind, Problem};
use crate::http::AppState;

/// `POST /v1/admin/backups`: a consistent backup of the whole store into a
/// new directory under `backup_dir`, named by its time and head; answers
/// 201 with the manifest and the directory.
#[utoipa::path(tag = "ops", responses((status = 201, description = "{directory, manifest}"), (status = 401), (status = 403), (status = 503)))]
#[post("/v1/admin/backups")]
pub(crate) async fn backup(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, Problem> {
    require_admin(&state, &caller, "take a backup")?;
    let taken_at = crate::control::backup_time();
    let name = format!(
        "{}-{}",
        taken_at.format("%Y%m%dT%H%M%S%.6fZ"),
        state.log.head()
    );
    let dest = state.backup_dir.join(name);
    let log = state.log.clone();
    let (dest, manifest) = web::block(move || log.backup(&dest, taken_at).map(|m| (dest, m)))
        .await
        .map_err(|e| Problem::new(Kind::Internal, "Internal error").with_detail(e.to_string()))?
        .map_err(|e| {
            tracing::error!(error = %e, "backup failed");
            Problem::new(Kind::Unavailable, "The backup could not be taken")
                .with_detail(e.to_string())
        })?;
    tracing::info!(directory = %dest.display(), head = manifest.head, by = %caller.id, "backup taken");
    Ok(HttpResponse::Created().json(serde_json::json!({
        "directory": dest.display().to_string(),
        "manifest": manifest,
    })))
}

/// 403 unless `caller` holds the admin role now.
pub(crate) fn require_admin(state: &AppState, caller: &Caller, what: &str) -> Result<(), Problem> {
    let now = state.docs.clock.now();
    if state.org.read(|org| org.is_admin(&caller.id, now)) {
        Ok(())
    } else {
        Err(Problem::forbidden(format!(
            "only an official with the admin role may {what}; {} has none",
            caller.id
        )))
    }
}
