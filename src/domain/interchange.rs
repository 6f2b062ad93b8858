//! The national document interchange's vocabulary (liên thông văn bản):
//! organisation identifiers (mã định danh) that packages are routed by,
//! the status codes a receiving system sends back (one [`TABLE`]) and the
//! order they come in (`StatusCode::fits`), and what a package's sealed
//! evidence says against what its header claims (`SealedFacts`). Issue
//! 16's edXML packages and status messages are built from these.
//!
//! Must never: accept an identifier outside Decision 20/2020/QĐ-TTg's shape,
//! a status code outside the nine the interchange uses, or believe a header
//! field the sealed evidence contradicts.

use std::fmt;

/// Longest organisation identifier (Decision 20/2020/QĐ-TTg).
pub const ORGAN_ID_MAX: usize = 35;

/// Why an identifier or a status code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterchangeError {
    #[error(
        "organisation identifier {0:?} is not groups of 0-9 and A-Z separated by '.', at most 35 characters (Decision 20/2020/QĐ-TTg)"
    )]
    OrganId(String),
    #[error("status code {0:?} is not one of {codes}", codes = codes())]
    StatusCode(String),
}

/// The codes of [`TABLE`], comma-separated, for messages.
fn codes() -> String {
    TABLE.map(|(_, code, _)| code).join(", ")
}

/// An organisation identifier (mã định danh), e.g. `000.00.01.H01`: at
/// most 35 characters, non-empty groups of digits and capital letters
/// separated by dots (Decision 20/2020/QĐ-TTg).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OrganId(String);

impl OrganId {
    pub fn parse(text: &str) -> Result<Self, InterchangeError> {
        let well_formed = !text.is_empty()
            && text.len() <= ORGAN_ID_MAX
            && text.split('.').all(|group| {
                !group.is_empty()
                    && group
                        .bytes()
                        .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
            });
        if well_formed {
            Ok(Self(text.to_owned()))
        } else {
            Err(InterchangeError::OrganId(text.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrganId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a receiving system reports about a document it was sent: the nine
/// codes the interchange's systems send, as independent implementations
/// of it agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StatusCode {
    /// 01: arrived, awaiting reception.
    Arrived,
    /// 02: refused (returned to the sender), or a recall refused.
    Refused,
    /// 03: received and registered, or a recall accepted.
    Received,
    /// 04: a leader assigned its handling.
    Assigned,
    /// 05: being handled.
    InProgress,
    /// 06: handling completed.
    Completed,
    /// 13: the sender asks for it back (recall).
    RecallRequested,
    /// 15: the recall (or an update) is agreed.
    RecallAgreed,
    /// 16: the recall (or an update) is refused.
    RecallRefused,
}

/// Every status code: its variant, its two digits on the wire and its
/// Vietnamese name as clerks read it. The one list: adding a code is a
/// variant above and a row here.
const TABLE: [(StatusCode, &str, &str); 9] = [
    (StatusCode::Arrived, "01", "Đã đến"),
    (StatusCode::Refused, "02", "Từ chối tiếp nhận"),
    (StatusCode::Received, "03", "Đã tiếp nhận"),
    (StatusCode::Assigned, "04", "Phân công"),
    (StatusCode::InProgress, "05", "Đang xử lý"),
    (StatusCode::Completed, "06", "Hoàn thành"),
    (StatusCode::RecallRequested, "13", "Yêu cầu lấy lại"),
    (StatusCode::RecallAgreed, "15", "Đồng ý lấy lại"),
    (StatusCode::RecallRefused, "16", "Từ chối lấy lại"),
];

impl StatusCode {
    pub const ALL: [StatusCode; TABLE.len()] = {
        let mut all = [StatusCode::Arrived; TABLE.len()];
        let mut i = 0;
        while i < TABLE.len() {
            all[i] = TABLE[i].0;
            i += 1;
        }
        all
    };

    fn row(self) -> &'static (StatusCode, &'static str, &'static str) {
        TABLE
            .iter()
            .find(|(s, _, _)| *s == self)
            .expect("every status code has its row in TABLE")
    }

    /// The two-digit code on the wire.
    pub fn code(self) -> &'static str {
        self.row().1
    }

    /// Its Vietnamese name, as clerks read it.
    pub fn name(self) -> &'static str {
        self.row().2
    }

    /// Whether a recipient's system may report `self` now, having reported
    /// `before` (its codes so far, about this document), with a recall
    /// asked of it or not: "arrived" (01) only first; assigned, in
    /// progress and completed (04, 05, 06) only once it was received (03);
    /// a recall agreed or refused (15, 16) only once a recall was asked
    /// (13). The order is QCVN 102's status flow as the interchange's
    /// systems send it (received before handled, answers after asks).
    pub fn fits(self, before: &[StatusCode], recall_asked: bool) -> Result<(), String> {
        use StatusCode::*;
        match self {
            Arrived => match before.iter().find(|c| **c != Arrived) {
                Some(c) => Err(format!(
                    "01 ({}) comes first, but {} ({}) was already reported",
                    Arrived.name(),
                    c.code(),
                    c.name()
                )),
                None => Ok(()),
            },
            Assigned | InProgress | Completed if !before.contains(&Received) => Err(format!(
                "{} ({}) comes after 03 ({}), which was not reported",
                self.code(),
                self.name(),
                Received.name()
            )),
            RecallAgreed | RecallRefused if !recall_asked => Err(format!(
                "{} ({}) answers a recall (13), and none was asked",
                self.code(),
                self.name()
            )),
            _ => Ok(()),
        }
    }

    /// From the wire: exactly two digits, one of the nine.
    pub fn parse(text: &str) -> Result<Self, InterchangeError> {
        TABLE
            .iter()
            .find(|(_, code, _)| *code == text)
            .map(|(s, _, _)| *s)
            .ok_or_else(|| InterchangeError::StatusCode(text.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn organisation_identifiers_have_decision_20s_shape() {
        for (text, ok) in [
            // Shapes seen in the field.
            ("000.00.01.H01", true),
            ("000.01.01.H08", true),
            ("H37.DN.001", true),
            ("G01", true),
            (&"A".repeat(35), true),
            (&"A".repeat(36), false),
            ("", false),
            ("000..01", false),
            (".H01", false),
            ("H01.", false),
            ("h01.000", false),
            ("H01 .000", false),
            ("H01-000", false),
            ("Đ01.000", false),
            ("H01.000\n", false),
        ] {
            assert_eq!(OrganId::parse(text).is_ok(), ok, "{text:?}");
        }
        assert_eq!(
            OrganId::parse("H37.DN.001").unwrap().to_string(),
            "H37.DN.001"
        );
    }

    #[test]
    fn a_status_fits_only_after_what_it_follows() {
        use StatusCode::*;
        for (code, before, recall, ok) in [
            (Arrived, &[][..], false, true),
            (Arrived, &[Arrived][..], false, true),
            (Arrived, &[Received][..], false, false),
            (Arrived, &[Refused][..], false, false),
            (Refused, &[][..], false, true),
            (Refused, &[Arrived][..], false, true),
            (Received, &[][..], false, true),
            (Received, &[Arrived][..], false, true),
            (Assigned, &[Arrived][..], false, false),
            (Assigned, &[Arrived, Received][..], false, true),
            (InProgress, &[][..], false, false),
            (InProgress, &[Received][..], false, true),
            (Completed, &[][..], false, false),
            (Completed, &[Arrived][..], false, false),
            (Completed, &[Refused][..], false, false),
            (Completed, &[Arrived, Received, Assigned][..], false, true),
            (RecallAgreed, &[Received][..], false, false),
            (RecallAgreed, &[Received][..], true, true),
            (RecallRefused, &[][..], false, false),
            (RecallRefused, &[Arrived][..], true, true),
            (RecallRequested, &[][..], false, true),
        ] {
            assert_eq!(
                code.fits(before, recall).is_ok(),
                ok,
                "{} after {:?}, recall asked {recall}",
                code.code(),
                before.iter().map(|c| c.code()).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn the_nine_status_codes_round_trip_and_nothing_else_parses() {
        let codes: std::collections::BTreeSet<_> = TABLE.iter().map(|r| r.1).collect();
        assert_eq!(codes.len(), TABLE.len(), "each code once");
        for s in StatusCode::ALL {
            assert_eq!(StatusCode::parse(s.code()), Ok(s));
            assert!(!s.name().is_empty());
        }
        for bad in ["", "1", "00", "07", "14", "17", " 01", "01 ", "3"] {
            assert!(StatusCode::parse(bad).is_err(), "{bad:?}");
        }
    }
}
