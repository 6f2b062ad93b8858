//! The pages officials work from, one file each: home (`home.rs`), *Hạn
//! trả lời* (`deadlines.rs`: deadlines, with the overdue CSV), *Thống kê*
//! (`stats.rs`: on-time rates per agency, unit and month), *Hộp văn bản*
//! (`inbox.rs`: the official's boxes with read marks) and *Sổ văn bản*
//! (`registers.rs`: registers, paged, with CSV); here their routes and the
//! deadline rows three of them read. What their forms share is in
//! `ui::forms`.
//!
//! Must never: read a view other than through `api::queries`' functions,
//! which apply `domain::access`.

mod deadlines;
mod home;
mod inbox;
mod registers;
mod stats;

use actix_web::web;

use super::session::Viewer;
use super::UiError;
use crate::api::queries::{self, deadline_rows, deadline_scope, DeadlineQuery};
use crate::http::AppState;
use crate::projections::deadlines::{Row, Status};

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.configure(home::routes)
        .configure(deadlines::routes)
        .configure(stats::routes)
        .configure(inbox::routes)
        .configure(registers::routes);
}

/// A deadline query for `agency`'s own rows or `issuer`'s follow-up, no
/// other filter.
fn a_query(agency: Option<String>, issuer: Option<String>) -> DeadlineQuery {
    DeadlineQuery {
        agency,
        issuer,
        unit: None,
        status: None,
        due_before: None,
        from: None,
        to: None,
        by: None,
        cursor: None,
        limit: None,
        min_position: None,
    }
}

/// Rows of the issuer's follow-up (`issued`) or of the agency's own
/// deadlines, as `queries::deadline_rows` gives them to this viewer (read
/// off the HTTP workers: every row of the view may be read).
async fn rows_of(
    state: &web::Data<AppState>,
    viewer: &Viewer,
    agency: &str,
    issued: bool,
    q: &DeadlineQuery,
) -> Result<Vec<(Row, Status)>, UiError> {
    let mut query = if issued {
        a_query(None, Some(agency.to_owned()))
    } else {
        a_query(Some(agency.to_owned()), None)
    };
    query.status = q.status.clone();
    query.due_before = q.due_before;
    query.from = q.from;
    query.to = q.to;
    let scope = deadline_scope(state, &viewer.caller, &query)?;
    let (rows, _) = queries::blocking(state.clone(), move |st| {
        deadline_rows(st, &scope, &query, None)
    })
    .await?;
    Ok(rows)
}
