//! Subject naming for the JetStream log: which NATS subject carries a
//! vanthu stream, the way back, and the stream that records a log-level
//! idempotency key.
//!
//! Must never: map two vanthu streams to one subject, or produce a subject
//! with more than one token after the prefix (a `.` or `%` is escaped).

use sha2::{Digest, Sha256};

/// The subject of vanthu stream `stream` under `prefix` (`vanthu.ev.`):
/// `%` and `.` escaped, so the stream id is exactly one subject token.
pub fn subject(prefix: &str, stream: &str) -> String {
    let mut s = String::with_capacity(prefix.len() + stream.len() + 8);
    s.push_str(prefix);
    for c in stream.chars() {
        match c {
            '%' => s.push_str("%25"),
            '.' => s.push_str("%2E"),
            c => s.push(c),
        }
    }
    s
}

/// The vanthu stream of `subject`, if it is one `subject` made.
pub fn stream_of(prefix: &str, subject: &str) -> Option<String> {
    let token = subject.strip_prefix(prefix)?;
    if token.is_empty() || token.contains('.') {
        return None;
    }
    let mut out = String::with_capacity(token.len());
    let mut rest = token;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3)? {
            "%25" => out.push('%'),
            "%2E" => out.push('.'),
            _ => return None,
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

/// The stream that records the use of log-level idempotency key `key`.
pub fn key_stream(key: &str) -> String {
    format!("key-{}", hex::encode(Sha256::digest(key.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_one_token_and_map_back() {
        let prefix = "vanthu.ev.";
        for (stream, expected) in [
            ("doc-0192", "vanthu.ev.doc-0192"),
            (
                "register-UBND.X-out-2026",
                "vanthu.ev.register-UBND%2EX-out-2026",
            ),
            ("a..b", "vanthu.ev.a%2E%2Eb"),
            (".lead", "vanthu.ev.%2Elead"),
            ("org", "vanthu.ev.org"),
            ("x:y_z", "vanthu.ev.x:y_z"),
        ] {
            let s = subject(prefix, stream);
            assert_eq!(s, expected);
            assert_eq!(s.matches('.').count(), 2, "{s}");
            assert_eq!(stream_of(prefix, &s).as_deref(), Some(stream));
        }
    }

    #[test]
    fn foreign_subjects_are_not_streams() {
        let prefix = "vanthu.ev.";
        for subject in [
            "vanthu.ev.",
            "vanthu.ev.a.b",
            "vanthu.other.a",
            "other.ev.a",
            "vanthu.ev.a%2",
            "vanthu.ev.a%41",
        ] {
            assert_eq!(stream_of(prefix, subject), None, "{subject}");
        }
    }
}
