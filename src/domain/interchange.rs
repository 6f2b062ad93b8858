//! The national document interchange's vocabulary (liên thông văn bản):
//! organisation identifiers (mã định danh) that packages are routed by, and
//! the status codes a receiving system sends back. Issue 16's edXML
//! packages and status messages are built from these.
//!
//! Must never: accept an identifier outside Decision 20/2020/QĐ-TTg's shape,
//! or a status code outside the nine the interchange uses.

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
    #[error("status code {0:?} is not one of 01, 02, 03, 04, 05, 06, 13, 15, 16")]
    StatusCode(String),
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

impl StatusCode {
    pub const ALL: [StatusCode; 9] = [
        StatusCode::Arrived,
        StatusCode::Refused,
        StatusCode::Received,
        StatusCode::Assigned,
        StatusCode::InProgress,
        StatusCode::Completed,
        StatusCode::RecallRequested,
        StatusCode::RecallAgreed,
        StatusCode::RecallRefused,
    ];

    /// The two-digit code on the wire.
    pub fn code(self) -> &'static str {
        match self {
            StatusCode::Arrived => "01",
            StatusCode::Refused => "02",
            StatusCode::Received => "03",
            StatusCode::Assigned => "04",
            StatusCode::InProgress => "05",
            StatusCode::Completed => "06",
            StatusCode::RecallRequested => "13",
            StatusCode::RecallAgreed => "15",
            StatusCode::RecallRefused => "16",
        }
    }

    /// Its Vietnamese name, as clerks read it.
    pub fn name(self) -> &'static str {
        match self {
            StatusCode::Arrived => "Đã đến",
            StatusCode::Refused => "Từ chối tiếp nhận",
            StatusCode::Received => "Đã tiếp nhận",
            StatusCode::Assigned => "Phân công",
            StatusCode::InProgress => "Đang xử lý",
            StatusCode::Completed => "Hoàn thành",
            StatusCode::RecallRequested => "Yêu cầu lấy lại",
            StatusCode::RecallAgreed => "Đồng ý lấy lại",
            StatusCode::RecallRefused => "Từ chối lấy lại",
        }
    }

    /// From the wire: exactly two digits, one of the nine.
    pub fn parse(text: &str) -> Result<Self, InterchangeError> {
        Self::ALL
            .into_iter()
            .find(|s| s.code() == text)
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
    fn the_nine_status_codes_round_trip_and_nothing_else_parses() {
        for s in StatusCode::ALL {
            assert_eq!(StatusCode::parse(s.code()), Ok(s));
            assert!(!s.name().is_empty());
        }
        for bad in ["", "1", "00", "07", "14", "17", " 01", "01 ", "3"] {
            assert!(StatusCode::parse(bad).is_err(), "{bad:?}");
        }
    }
}
