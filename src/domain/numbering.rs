//! Register numbering (Decree 30/2020 Art. 15): per agency, per year (reset
//! each 1 January, Asia/Ho_Chi_Minh), per series (normal, secret, each
//! legal-normative type); numbers start at 1, are printed with at least two
//! digits ("05"), and together with the symbol are unique within the year.
//! Symbols: `QĐ-UBND` for typed documents, `STTTT-VP` (agency–drafting
//! unit) for công văn (Appendix I).
//!
//! Must never: hand out a number itself; numbers come from a register
//! stream's `number_allocated` events appended atomically with `issued`.

use chrono::{DateTime, Datelike, FixedOffset, Utc};
use serde::{Deserialize, Serialize};

use super::doctype::DocType;

/// Vietnam's time zone (UTC+7, no daylight saving).
pub fn vietnam() -> FixedOffset {
    FixedOffset::east_opt(7 * 3600).expect("+07:00 is a valid offset")
}

/// The register year of an instant: the calendar year in Vietnam.
pub fn year_of(t: DateTime<Utc>) -> i32 {
    t.with_timezone(&vietnam()).year()
}

/// Outgoing (văn bản đi) or incoming (văn bản đến).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Outgoing,
    Incoming,
}

/// A number series within an agency's registers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Series {
    Normal,
    /// Secret documents have their own series (Art. 15.2).
    Secret,
    /// A legal-normative type with its own series (Art. 15.1.a), by type code.
    Type(String),
}

/// Which register a number comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterKey {
    pub agency: String,
    pub direction: Direction,
    pub series: Series,
    pub year: i32,
}

impl RegisterKey {
    /// The register's stream id, e.g. `register-UBND-out-2026`,
    /// `register-UBND-out-secret-2026`, `register-UBND-out-NQ-2026`.
    pub fn stream_id(&self) -> String {
        let dir = match self.direction {
            Direction::Outgoing => "out",
            Direction::Incoming => "in",
        };
        let series = match &self.series {
            Series::Normal => String::new(),
            Series::Secret => "-secret".into(),
            Series::Type(code) => format!("-{code}"),
        };
        format!("register-{}-{dir}{series}-{}", self.agency, self.year)
    }
}

/// Which series each agency numbers its outgoing documents in (Decree
/// 30/2020 Art. 15.1: numbers run per agency and year; secret documents
/// and each legal-normative type take their own series; the head of the
/// agency sets the rest). Default: one normal series plus the secret one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Per agency code, the document type codes with a series of their own.
    #[serde(default)]
    pub own_series: std::collections::BTreeMap<String, Vec<String>>,
}

impl Policy {
    /// The series a document of `doc_type` from `agency` is numbered in.
    pub fn series(&self, agency: &str, doc_type: &str, secret: bool) -> Series {
        if secret {
            Series::Secret
        } else if self
            .own_series
            .get(agency)
            .is_some_and(|types| types.iter().any(|t| t.eq_ignore_ascii_case(doc_type)))
        {
            Series::Type(doc_type.to_ascii_uppercase())
        } else {
            Series::Normal
        }
    }
}

/// The printed number: at least two digits ("01" … "09", "10", "1552").
pub fn format_number(n: u64) -> String {
    format!("{n:02}")
}

/// The symbol (ký hiệu) without the number: `QĐ-UBND`, or for types without
/// an abbreviation (công văn, thư công) `AGENCY-UNIT` from the drafting unit.
/// Abbreviations are printed as Appendix III has them (`TTr`, `QyĐ`); agency
/// and unit codes are upper-case ASCII (checked by `domain::org`).
pub fn symbol(doc_type: &DocType, agency: &str, drafting_unit: &str) -> String {
    match doc_type.abbreviation {
        Some(abbr) => format!("{abbr}-{agency}"),
        None => format!("{agency}-{drafting_unit}"),
    }
}

/// `Số: 05/QĐ-UBND`: the number line as printed on the document.
pub fn number_line(number: u64, symbol: &str) -> String {
    format!("Số: {}/{symbol}", format_number(number))
}

/// `05/QĐ-UBND`: number and symbol as one reference.
pub fn reference(number: u64, symbol: &str) -> String {
    format!("{}/{symbol}", format_number(number))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::doctype::by_code;
    use chrono::TimeZone;

    #[test]
    fn symbols_and_numbers() {
        let cases = [
            ("QD", "UBND", "VP", 5, "Số: 05/QĐ-UBND"),
            ("KH", "UBND", "VP", 420, "Số: 420/KH-UBND"),
            ("TTR", "SNV", "TCBC", 365, "Số: 365/TTr-SNV"),
            ("CV", "STTTT", "VP", 1552, "Số: 1552/STTTT-VP"),
            ("BC", "SVHTT", "QLVH", 1, "Số: 01/BC-SVHTT"),
            ("THC", "UBND", "VP", 9, "Số: 09/UBND-VP"),
        ];
        for (code, agency, unit, n, want) in cases {
            let t = by_code(code).unwrap();
            assert_eq!(number_line(n, &symbol(t, agency, unit)), want);
        }
        assert_eq!(reference(12, "BC-SVHTT"), "12/BC-SVHTT");
        assert_eq!(format_number(0), "00");
    }

    #[test]
    fn the_year_turns_at_midnight_in_vietnam() {
        // 31 Dec 2026 16:59:59 UTC is 23:59:59 in Hà Nội; one second later it is 2027.
        let before = Utc.with_ymd_and_hms(2026, 12, 31, 16, 59, 59).unwrap();
        let after = Utc.with_ymd_and_hms(2026, 12, 31, 17, 0, 0).unwrap();
        assert_eq!(year_of(before), 2026);
        assert_eq!(year_of(after), 2027);
    }

    #[test]
    fn register_stream_ids_are_valid_and_distinct() {
        let key = |direction, series, year| RegisterKey {
            agency: "UBND".into(),
            direction,
            series,
            year,
        };
        let ids = [
            key(Direction::Outgoing, Series::Normal, 2026).stream_id(),
            key(Direction::Outgoing, Series::Secret, 2026).stream_id(),
            key(Direction::Outgoing, Series::Type("NQ".into()), 2026).stream_id(),
            key(Direction::Incoming, Series::Normal, 2026).stream_id(),
            key(Direction::Outgoing, Series::Normal, 2027).stream_id(),
        ];
        assert_eq!(ids[0], "register-UBND-out-2026");
        assert_eq!(ids[1], "register-UBND-out-secret-2026");
        assert_eq!(ids[2], "register-UBND-out-NQ-2026");
        assert_eq!(ids[3], "register-UBND-in-2026");
        let unique: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
        // Stream ids are ASCII letters, digits and `-`.
        assert!(ids
            .iter()
            .all(|id| id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')));
    }
}
