//! What every handler of the API and the pages can reach: the application's
//! service handles ([`crate::service::Core`], reached through `Deref`), the
//! token verifier and the edge's own handles (the pages' sessions are the
//! pages' own `web::Data<ui::Pages>`).
//!
//! Must never: hold a rule or a cache of its own (state lives in the log,
//! the projections and the services), or name `api` or `ui`.

use std::sync::Arc;

use crate::service::Core;

/// Largest JSON body accepted (DESIGN §7).
pub const JSON_LIMIT: usize = 1 << 20;

/// What every handler can reach. Derefs to the services' [`Core`], so a
/// handler writes `state.log`, `state.docs`, `state.org`, and passes
/// `&state` where a service takes `&Core`.
pub struct AppState {
    /// The log, files, organisation, views and checkpoints the services use.
    pub core: Arc<Core>,
    pub tokens: super::auth::TokenVerifier,
    /// How far back an organisation change may take effect (with a reason).
    pub org_backdate_window: chrono::Duration,
    /// Where `POST /v1/admin/backups` puts backups.
    pub backup_dir: std::path::PathBuf,
    /// Webhook deliveries: their table, re-drives, secrets.
    pub outbox: Arc<crate::outbox::dispatch::Sender>,
    /// The interchange's peers (who may post packages, with which secret).
    pub peers: Arc<crate::interchange::Peers>,
}

impl std::ops::Deref for AppState {
    type Target = Core;

    fn deref(&self) -> &Core {
        &self.core
    }
}
