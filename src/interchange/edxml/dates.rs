//! Dates and instants on the interchange: read in every form the field
//! uses, written as the axis's guide writes them (`YYYY/MM/DD`, timestamps
//! `YYYY/MM/DD HH:MM:SS` in UTC+7).
//!
//! Must never: accept a year outside 1900–2200.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

/// A date as the axis writes it: `YYYY/MM/DD`.
pub fn write_date(d: NaiveDate) -> String {
    d.format("%Y/%m/%d").to_string()
}

/// An instant as the axis writes it: `YYYY/MM/DD HH:MM:SS`, Vietnam time.
pub fn write_timestamp(t: DateTime<Utc>) -> String {
    (t + chrono::Duration::hours(7))
        .format("%Y/%m/%d %H:%M:%S")
        .to_string()
}

/// A date in any of the forms the field uses.
pub fn read_date(text: &str) -> Result<NaiveDate, String> {
    let t = text.trim();
    for f in ["%Y/%m/%d", "%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y"] {
        if let Ok(d) = NaiveDate::parse_from_str(t, f) {
            return plausible(d);
        }
    }
    read_instant(t)
        .map(|i| (i + chrono::Duration::hours(7)).date_naive())
        .map_err(|_| format!("{t:?} is not a date (YYYY/MM/DD, YYYY-MM-DD or DD/MM/YYYY)"))
        .and_then(plausible)
}

/// Years a package may name.
const YEARS: std::ops::RangeInclusive<i32> = 1900..=2200;

fn plausible(d: NaiveDate) -> Result<NaiveDate, String> {
    use chrono::Datelike;
    if YEARS.contains(&d.year()) {
        Ok(d)
    } else {
        Err(format!(
            "{d} is outside the years {}–{}",
            YEARS.start(),
            YEARS.end()
        ))
    }
}

/// An instant in any of the forms the field uses; without an offset it is
/// Vietnam time.
pub fn read_instant(text: &str) -> Result<DateTime<Utc>, String> {
    use chrono::Datelike;
    let t = text.trim();
    let in_range = |i: DateTime<Utc>| {
        if YEARS.contains(&i.year()) {
            Ok(i)
        } else {
            Err(format!(
                "{t:?} is outside the years {}–{}",
                YEARS.start(),
                YEARS.end()
            ))
        }
    };
    if let Ok(i) = DateTime::parse_from_rfc3339(t) {
        return in_range(i.with_timezone(&Utc));
    }
    for f in [
        "%Y/%m/%d %H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%d/%m/%Y %H:%M:%S",
    ] {
        if let Ok(local) = NaiveDateTime::parse_from_str(t, f) {
            let utc = local
                .checked_sub_signed(chrono::Duration::hours(7))
                .ok_or_else(|| format!("{t:?} is out of range"))?;
            return in_range(utc.and_utc());
        }
    }
    Err(format!(
        "{t:?} is not an instant (YYYY/MM/DD HH:MM:SS, or RFC 3339)"
    ))
}
