//! The catalogue of administrative document types of Decree 30/2020
//! (Art. 7; abbreviations from Appendix III), plus the copy forms.
//! Each type has a stable ASCII `code` used in the API and in stream ids,
//! and the printed abbreviation used in symbols (`QĐ`, `KH`, …).
//!
//! Must never: invent an abbreviation for công văn or thư công: they have
//! none, and their symbol is built from the agency and drafting unit.

use serde::Serialize;

/// One document type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DocType {
    /// Stable ASCII id used in the API (`QD`, `KH`, `CV`).
    pub code: &'static str,
    /// Printed abbreviation in symbols (`QĐ`); `None` for công văn and thư công.
    pub abbreviation: Option<&'static str>,
    /// Vietnamese name.
    pub name: &'static str,
}

macro_rules! types {
    ($($code:literal, $abbr:expr, $name:literal;)*) => {
        /// Decree 30/2020 Art. 7 types (Appendix III abbreviations) and copy forms.
        pub const CATALOGUE: &[DocType] = &[$(DocType { code: $code, abbreviation: $abbr, name: $name }),*];
    };
}

types! {
    "NQ", Some("NQ"), "Nghị quyết (cá biệt)";
    "QD", Some("QĐ"), "Quyết định (cá biệt)";
    "CT", Some("CT"), "Chỉ thị";
    "QC", Some("QC"), "Quy chế";
    "QYD", Some("QyĐ"), "Quy định";
    "TC", Some("TC"), "Thông cáo";
    "TB", Some("TB"), "Thông báo";
    "HD", Some("HD"), "Hướng dẫn";
    "CTR", Some("CTr"), "Chương trình";
    "KH", Some("KH"), "Kế hoạch";
    "PA", Some("PA"), "Phương án";
    "DEA", Some("ĐA"), "Đề án";
    "DA", Some("DA"), "Dự án";
    "BC", Some("BC"), "Báo cáo";
    "BB", Some("BB"), "Biên bản";
    "TTR", Some("TTr"), "Tờ trình";
    "HDG", Some("HĐ"), "Hợp đồng";
    "CV", None, "Công văn";
    "CD", Some("CĐ"), "Công điện";
    "BGN", Some("BGN"), "Bản ghi nhớ";
    "BTT", Some("BTT"), "Bản thỏa thuận";
    "GUQ", Some("GUQ"), "Giấy ủy quyền";
    "GM", Some("GM"), "Giấy mời";
    "GGT", Some("GGT"), "Giấy giới thiệu";
    "GNP", Some("GNP"), "Giấy nghỉ phép";
    "PG", Some("PG"), "Phiếu gửi";
    "PC", Some("PC"), "Phiếu chuyển";
    "PB", Some("PB"), "Phiếu báo";
    "THC", None, "Thư công";
    "SY", Some("SY"), "Bản sao y";
    "TRS", Some("TrS"), "Bản trích sao";
    "SL", Some("SL"), "Bản sao lục";
}

/// Looks a type up by its API code (case-insensitive).
pub fn by_code(code: &str) -> Option<&'static DocType> {
    CATALOGUE.iter().find(|t| t.code.eq_ignore_ascii_case(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_is_decree_30() {
        // 29 administrative types (Art. 7) + 3 copy forms.
        assert_eq!(CATALOGUE.len(), 32);
        let codes: std::collections::HashSet<_> = CATALOGUE.iter().map(|t| t.code).collect();
        assert_eq!(codes.len(), CATALOGUE.len(), "codes are unique");
        assert!(CATALOGUE
            .iter()
            .all(|t| t.code.bytes().all(|b| b.is_ascii_uppercase())));
        for (code, abbr) in [
            ("QD", Some("QĐ")),
            ("kh", Some("KH")),
            ("TTR", Some("TTr")),
            ("QYD", Some("QyĐ")),
            ("CV", None),
            ("THC", None),
        ] {
            assert_eq!(by_code(code).map(|t| t.abbreviation), Some(abbr), "{code}");
        }
        assert!(by_code("XX").is_none());
    }
}
