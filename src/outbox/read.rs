//! The outbox as admins and the sender read it: a delivery with its state,
//! a webhook's delivery log in order, its counts, the subscribers.
//!
//! Must never: write, or skip a row it cannot decode (its error names the
//! row).

use super::{json, Delivery, OutboxError, Report, State, Status, Subscriber};
use crate::store::tables::Table;

/// The subscribers the fold knows now.
pub fn subscribers(table: &Table) -> Result<Vec<Subscriber>, OutboxError> {
    table
        .scan(b"s/", None, usize::MAX)?
        .iter()
        .map(|(k, v)| json(k, v))
        .collect()
}

/// The delivery `id` and its state.
pub fn report(table: &Table, id: &str) -> Result<Report, OutboxError> {
    let key = format!("q/{id}");
    let bytes = table
        .get(key.as_bytes())?
        .ok_or_else(|| OutboxError::NotFound(id.into()))?;
    let delivery: Delivery = json(key.as_bytes(), &bytes)?;
    let state_key = format!("a/{id}");
    let state = match table.get(state_key.as_bytes())? {
        Some(b) => json(state_key.as_bytes(), &b)?,
        None => State {
            next_at: Some(delivery.created_at),
            since: Some(delivery.created_at),
            ..State::default()
        },
    };
    Ok(Report { delivery, state })
}

/// Up to `limit` deliveries of `webhook` after the delivery `after` (an
/// id of this webhook's), in order, optionally only those with `status`;
/// and the id to ask after for the next page.
pub fn list(
    table: &Table,
    webhook: &str,
    after: Option<&str>,
    status: Option<Status>,
    limit: usize,
) -> Result<(Vec<Report>, Option<String>), OutboxError> {
    let prefix = format!("i/{webhook}/");
    let start = match after {
        Some(id) => {
            let r = report(table, id)?;
            if r.delivery.webhook != webhook {
                return Err(OutboxError::NotFound(id.into()));
            }
            Some(r.delivery.index_key())
        }
        None => None,
    };
    let mut out = Vec::new();
    let mut last = None;
    let mut from = start;
    // Filtering by status reads on, a page at a time, until a page is full.
    'pages: loop {
        let rows = table.scan(prefix.as_bytes(), from.as_deref().map(str::as_bytes), 256)?;
        if rows.is_empty() {
            break;
        }
        for (key, _) in &rows {
            if out.len() == limit {
                break 'pages;
            }
            let key = String::from_utf8_lossy(key).into_owned();
            let Some(id) = key.rsplit('/').next() else {
                continue;
            };
            let r = report(table, id)?;
            last = Some(id.to_owned());
            if status.is_none_or(|s| s == r.state.status) {
                out.push(r);
            }
        }
        from = rows
            .last()
            .map(|(k, _)| String::from_utf8_lossy(k).into_owned());
    }
    let next = if out.len() == limit { last } else { None };
    Ok((out, next))
}

/// Counts of a webhook's deliveries by status: from the counters (two
/// rows), or on a table from before them, by reading every delivery.
pub fn counts(table: &Table, webhook: &str) -> Result<[u64; 3], OutboxError> {
    match super::counters::counted(table, webhook)? {
        Some(counts) => Ok(counts),
        None => counted_by_rows(table, webhook),
    }
}

/// Counts of a webhook's deliveries by status, reading every one.
pub(crate) fn counted_by_rows(table: &Table, webhook: &str) -> Result<[u64; 3], OutboxError> {
    let mut counts = [0; 3];
    for (key, _) in table.scan(format!("i/{webhook}/").as_bytes(), None, usize::MAX)? {
        let key = String::from_utf8_lossy(&key).into_owned();
        let Some(id) = key.rsplit('/').next() else {
            continue;
        };
        let status = match table.get(format!("a/{id}").as_bytes())? {
            Some(b) => json::<State>(key.as_bytes(), &b)?.status,
            None => Status::Pending,
        };
        counts[status as usize] += 1;
    }
    Ok(counts)
}
