//! Registers (sổ đi, sổ đến) of an agency and year, in JSON and CSV.
//!
//! Must never: show a register to anyone `domain::access::may_read_register`
//! refuses.

use actix_web::{get, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::*;
use crate::domain::access::{self};
use crate::projections::registers;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RegisterQuery {
    /// `normal` (default), `secret`, or a document type with its own series.
    pub series: Option<String>,
    pub cursor: Option<u64>,
    pub limit: Option<usize>,
    pub min_position: Option<u64>,
}

/// `GET /v1/registers/{agency}/{year}/{outgoing|incoming}[.csv]`: sổ văn bản
/// đi / đến, in number order.
#[utoipa::path(tag = "queries", params(("agency" = String, Path), ("year" = i32, Path), ("direction" = String, Path, description = "outgoing, incoming, outgoing.csv or incoming.csv"), RegisterQuery),
    responses((status = 200, description = "{entries, next_cursor} or CSV"), (status = 400), (status = 401), (status = 403), (status = 404)))]
#[get("/v1/registers/{agency}/{year}/{direction}")]
pub(crate) async fn register(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<(String, i32, String)>,
    q: web::Query<RegisterQuery>,
) -> Result<HttpResponse, Problem> {
    caught_up(&state, &req, q.min_position, "registers").await?;
    let (agency, year, direction) = path.into_inner();
    let (stream, entries, next) = register_page(&state, &caller, &agency, year, &direction, &q)?;
    match next {
        RegisterEnd::Csv(outgoing) => Ok(register_csv(&stream, outgoing, &entries)),
        RegisterEnd::Page(next) => Ok(HttpResponse::Ok().json(json!({
            "register": stream,
            "entries": entries,
            "next_cursor": next,
        }))),
    }
}

/// How a register read ends: one page (and the next page's cursor), or the
/// whole register for CSV (`true`: the outgoing register).
pub(crate) enum RegisterEnd {
    Page(Option<u64>),
    Csv(bool),
}

/// The register `{agency}/{year}/{direction}` (`outgoing`, `incoming`, or
/// either with `.csv` for all of it) as the caller may read it: its
/// stream, entries in number order and how the read ended.
pub(crate) fn register_page(
    state: &AppState,
    caller: &Caller,
    agency: &str,
    year: i32,
    direction: &str,
    q: &RegisterQuery,
) -> Result<(String, Vec<registers::Entry>, RegisterEnd), Problem> {
    use crate::domain::numbering::{Direction, RegisterKey, Series};
    let (direction, as_csv) = match direction {
        "outgoing" => (Direction::Outgoing, false),
        "incoming" => (Direction::Incoming, false),
        "outgoing.csv" => (Direction::Outgoing, true),
        "incoming.csv" => (Direction::Incoming, true),
        _ => return Err(Problem::not_found()),
    };
    let now = state.docs.clock.now();
    let secret = q.series.as_deref() == Some("secret");
    state
        .org
        .read(|org| access::may_read_register(org, &caller.id, agency, secret, now))
        .map_err(refused)?;
    let series = match q.series.as_deref() {
        None | Some("normal") => Series::Normal,
        Some("secret") => Series::Secret,
        Some(t) if t.len() <= 8 && t.bytes().all(|b| b.is_ascii_alphanumeric()) => {
            Series::Type(t.to_ascii_uppercase())
        }
        Some(t) => return Err(Problem::bad_request(format!("series {t:?} is not valid"))),
    };
    let key = RegisterKey {
        agency: agency.to_owned(),
        direction,
        series,
        year,
    };
    let stream = key.stream_id();
    let prefix = registers::prefix(&stream);
    let t = table(state, "registers");
    let after = q
        .cursor
        .map(|c| format!("{prefix}{}", crate::projections::padded(c)));
    let page = if as_csv { usize::MAX } else { limit(q.limit)? };
    let rows = t
        .scan(prefix.as_bytes(), after.as_deref().map(str::as_bytes), page)
        .map_err(internal)?;
    let entries: Vec<registers::Entry> = rows
        .iter()
        .map(|(k, v)| decode(state, "registers", k, v))
        .collect::<Result<_, _>>()?;
    if as_csv {
        return Ok((
            stream,
            entries,
            RegisterEnd::Csv(direction == Direction::Outgoing),
        ));
    }
    let next = (entries.len() == page)
        .then(|| entries.last().map(|e| e.number))
        .flatten();
    Ok((stream, entries, RegisterEnd::Page(next)))
}

/// A register as CSV (sổ đi or sổ đến columns).
pub(crate) fn register_csv(
    stream: &str,
    outgoing: bool,
    entries: &[registers::Entry],
) -> HttpResponse {
    {
        let header: &[&str] = if outgoing {
            &[
                "so",
                "ngay",
                "so_ky_hieu",
                "loai",
                "trich_yeu",
                "nguoi_ky",
                "noi_nhan",
                "trang_thai",
            ]
        } else {
            &[
                "so_den",
                "ngay_den",
                "so_ky_hieu",
                "loai",
                "trich_yeu",
                "co_quan_ban_hanh",
                "nguoi_ky",
                "trang_thai",
            ]
        };
        let body = csv(
            header,
            entries.iter().map(|e| {
                let mut line = vec![
                    crate::domain::numbering::format_number(e.number),
                    e.date.format("%d/%m/%Y").to_string(),
                    e.reference.clone(),
                    e.doc_type.clone(),
                    e.title.clone(),
                ];
                if outgoing {
                    line.extend([e.signer.clone(), e.recipients.join("; "), e.status.clone()]);
                } else {
                    line.extend([e.agency.clone(), e.signer.clone(), e.status.clone()]);
                }
                line
            }),
        );
        csv_response(&format!("{stream}.csv"), body)
    }
}
