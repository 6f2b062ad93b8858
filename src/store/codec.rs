//! The record envelope of the event log and its byte encoding.
//!
//! A record is stored as its RFC 8785 canonical JSON (JCS) bytes, so any
//! verifier can re-derive the exact bytes from the JSON it is shown and check
//! the leaf hash `SHA-256(0x00 ‖ bytes)` (RFC 6962 §2.1 leaf). This module
//! also owns the key layout of the log's column families.
//!
//! Must never: touch RocksDB, know what a document is, or produce bytes that
//! differ from `serde_json_canonicalizer::to_vec(&record)` (a property test
//! holds the hand-spliced encoder to that).

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Largest integer that survives a round trip through an IEEE double, which
/// is how RFC 8785 (and every JavaScript verifier) reads JSON numbers.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Longest accepted stream id, in bytes.
pub const MAX_STREAM_ID_LEN: usize = 200;
/// Longest accepted event type, in bytes.
pub const MAX_EVENT_TYPE_LEN: usize = 100;
/// Longest accepted idempotency key, in bytes.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// Who and what caused an event. Every field is optional; absent fields are
/// left out of the encoding rather than written as `null`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// Official (or integration client) whose request produced the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// The event or command this one was caused by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    /// Groups every event of one business conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<Uuid>,
    /// The HTTP request id, for joining logs with the audit trail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// SHA-256 fingerprint (hex) of the certificate used, where one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    /// Why, in the actor's words, where the change needs one (the
    /// operator's note on the first admin, the reason for a backdated change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One event as stored in the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Global position, gapless from 1.
    pub position: u64,
    /// Stream the event belongs to, e.g. `doc-0192…`.
    pub stream: String,
    /// Version of the stream after this event, gapless from 1.
    pub version: u64,
    /// Event id (UUID v7 unless the caller chose one).
    pub event_id: Uuid,
    /// Versioned event name, e.g. `document.signed.v1`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// When the log accepted the event (UTC, microsecond precision).
    #[serde(with = "micros")]
    pub recorded_at: DateTime<Utc>,
    /// The event body.
    pub payload: Value,
    /// Actor, causation and correlation.
    pub metadata: Metadata,
}

/// Why bytes or values could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("stream id must be 1..={MAX_STREAM_ID_LEN} bytes of [A-Za-z0-9._:-], got {0:?}")]
    BadStreamId(String),
    #[error("event type must be 1..={MAX_EVENT_TYPE_LEN} bytes of [a-z0-9._], got {0:?}")]
    BadEventType(String),
    #[error("idempotency key must be 1..={MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters")]
    BadIdempotencyKey,
    #[error(
        "integer {0} at {1} is outside ±(2^53-1) and would not survive canonical JSON (RFC 8785)"
    )]
    UnsafeInteger(String, String),
    #[error("JSON encoding failed: {0}")]
    Json(#[from] serde_json::Error),
    #[error("stored key has the wrong length ({0} bytes)")]
    BadKey(usize),
}

/// Checks a stream id: ASCII letters, digits and `._:-`, at most 200 bytes.
pub fn validate_stream_id(stream: &str) -> Result<(), CodecError> {
    let ok = !stream.is_empty()
        && stream.len() <= MAX_STREAM_ID_LEN
        && stream
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(CodecError::BadStreamId(stream.to_owned()))
    }
}

/// Checks an event type: lower-case ASCII letters, digits, `.` and `_`.
pub fn validate_event_type(event_type: &str) -> Result<(), CodecError> {
    let ok = !event_type.is_empty()
        && event_type.len() <= MAX_EVENT_TYPE_LEN
        && event_type
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(CodecError::BadEventType(event_type.to_owned()))
    }
}

/// Checks an idempotency key: visible ASCII, 1..=255 bytes.
pub fn validate_idempotency_key(key: &str) -> Result<(), CodecError> {
    if !key.is_empty()
        && key.len() <= MAX_IDEMPOTENCY_KEY_LEN
        && key.bytes().all(|b| b.is_ascii_graphic())
    {
        Ok(())
    } else {
        Err(CodecError::BadIdempotencyKey)
    }
}

/// Rejects integers that canonical JSON would silently round (I-JSON, RFC 7493 §2.2).
pub fn check_safe_numbers(value: &Value) -> Result<(), CodecError> {
    fn walk(value: &Value, path: &mut String) -> Result<(), CodecError> {
        match value {
            Value::Number(n) => {
                let unsafe_int = match (n.as_u64(), n.as_i64()) {
                    (Some(u), _) => u > MAX_SAFE_INTEGER,
                    (None, Some(i)) => i.unsigned_abs() > MAX_SAFE_INTEGER,
                    (None, None) => false,
                };
                if unsafe_int {
                    let at = if path.is_empty() { "/" } else { path };
                    return Err(CodecError::UnsafeInteger(n.to_string(), at.to_owned()));
                }
                Ok(())
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("/{i}"));
                    walk(item, path)?;
                    path.truncate(len);
                }
                Ok(())
            }
            Value::Object(map) => {
                for (k, item) in map {
                    let len = path.len();
                    path.push('/');
                    path.push_str(k);
                    walk(item, path)?;
                    path.truncate(len);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
    walk(value, &mut String::new())
}

/// Canonical (RFC 8785) bytes of any serialisable value.
pub fn canonical<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    Ok(serde_json_canonicalizer::to_vec(value)?)
}

/// Canonical (RFC 8785) bytes of a JSON value, fast: serde_json's own
/// output already is canonical when every object key is below U+E000
/// (there UTF-8 byte order, which serde_json's sorted map follows, and
/// RFC 8785's UTF-16 code-unit order agree) and every number is an integer
/// within ±(2^53-1) (written the same way by both); its string escaping is
/// RFC 8785's. Any
/// other value goes through the reference canonicaliser. The property tests
/// hold the two to the same bytes.
pub fn canonical_value(value: &Value) -> Result<Vec<u8>, CodecError> {
    fn plain(v: &Value) -> bool {
        match v {
            // Integers a double holds exactly (RFC 8785 writes numbers as
            // doubles; larger ones are refused before this anyway).
            Value::Number(n) => match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => u <= MAX_SAFE_INTEGER,
                (None, Some(i)) => i.unsigned_abs() <= MAX_SAFE_INTEGER,
                (None, None) => false,
            },
            Value::Array(items) => items.iter().all(plain),
            Value::Object(map) => map
                .iter()
                .all(|(k, v)| k.chars().all(|c| c < '\u{E000}') && plain(v)),
            _ => true,
        }
    }
    if plain(value) {
        Ok(serde_json::to_vec(value)?)
    } else {
        canonical(value)
    }
}

/// The parts of a record a caller can fix before the writer assigns its
/// position, version and time: canonical payload and metadata bytes are
/// computed on the caller's thread, so the single writer only splices.
#[derive(Debug, Clone)]
pub struct PreEncoded {
    pub event_id: Uuid,
    pub event_type: String,
    pub payload: Vec<u8>,
    pub metadata: Vec<u8>,
}

impl PreEncoded {
    /// Validates and canonicalises an event's parts.
    pub fn new(
        event_id: Uuid,
        event_type: &str,
        payload: &Value,
        metadata: &Metadata,
    ) -> Result<Self, CodecError> {
        validate_event_type(event_type)?;
        check_safe_numbers(payload)?;
        Ok(Self {
            event_id,
            event_type: event_type.to_owned(),
            payload: canonical_value(payload)?,
            metadata: canonical_value(&serde_json::to_value(metadata)?)?,
        })
    }

    /// The most bytes `encode` can produce for this event in `stream`,
    /// whatever its position, version and time (20-digit numbers, a
    /// timestamp of at most 32 characters).
    pub fn max_encoded_len(&self, stream: &str) -> usize {
        const FIXED: usize = r#"{"event_id":"","metadata":,"payload":,"position":,"recorded_at":"","stream":"","type":"","version":}"#.len();
        FIXED
            + 36
            + 20
            + 32
            + 20
            + self.metadata.len()
            + self.payload.len()
            + stream.len()
            + self.event_type.len()
    }

    /// The record's canonical bytes once position, stream, version and time are known.
    ///
    /// Keys appear in RFC 8785 order (all ASCII, so byte order): event_id,
    /// metadata, payload, position, recorded_at, stream, type, version. The
    /// stream id and event type were validated to need no escaping.
    pub fn encode(
        &self,
        position: u64,
        stream: &str,
        version: u64,
        recorded_at: &DateTime<Utc>,
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(160 + self.payload.len() + self.metadata.len());
        out.extend_from_slice(b"{\"event_id\":\"");
        out.extend_from_slice(self.event_id.hyphenated().to_string().as_bytes());
        out.extend_from_slice(b"\",\"metadata\":");
        out.extend_from_slice(&self.metadata);
        out.extend_from_slice(b",\"payload\":");
        out.extend_from_slice(&self.payload);
        out.extend_from_slice(b",\"position\":");
        out.extend_from_slice(position.to_string().as_bytes());
        out.extend_from_slice(b",\"recorded_at\":\"");
        out.extend_from_slice(micros::format(recorded_at).as_bytes());
        out.extend_from_slice(b"\",\"stream\":\"");
        out.extend_from_slice(stream.as_bytes());
        out.extend_from_slice(b"\",\"type\":\"");
        out.extend_from_slice(self.event_type.as_bytes());
        out.extend_from_slice(b"\",\"version\":");
        out.extend_from_slice(version.to_string().as_bytes());
        out.push(b'}');
        out
    }
}

/// Decodes a record from its stored bytes.
pub fn decode(bytes: &[u8]) -> Result<Record, CodecError> {
    Ok(serde_json::from_slice(bytes)?)
}

/// Canonical bytes of a whole record (the reference encoding).
pub fn encode(record: &Record) -> Result<Vec<u8>, CodecError> {
    canonical(record)
}

/// RFC 6962 leaf hash: `SHA-256(0x00 ‖ record bytes)`.
pub fn leaf_hash(record_bytes: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(record_bytes);
    h.finalize().into()
}

/// Time as the log records it: UTC, truncated to whole microseconds.
pub fn log_time(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

/// Key helpers for the log's column families.
pub mod keys {
    use super::CodecError;
    use uuid::Uuid;

    /// `log` and `leaves`: position as 8 bytes big-endian, so keys sort by position.
    pub fn position(pos: u64) -> [u8; 8] {
        pos.to_be_bytes()
    }

    /// Reads a position key.
    pub fn parse_position(key: &[u8]) -> Result<u64, CodecError> {
        let arr: [u8; 8] = key.try_into().map_err(|_| CodecError::BadKey(key.len()))?;
        Ok(u64::from_be_bytes(arr))
    }

    /// `streams` prefix: stream id length (u16 BE) then the id, so that no
    /// stream's keys are a prefix of another's (`doc-1` vs `doc-10`).
    pub fn stream_prefix(stream: &str) -> Vec<u8> {
        let mut k = Vec::with_capacity(2 + stream.len() + 8);
        // Stream ids are at most MAX_STREAM_ID_LEN (200) bytes, so this fits.
        k.extend_from_slice(&(stream.len() as u16).to_be_bytes());
        k.extend_from_slice(stream.as_bytes());
        k
    }

    /// `streams` key: prefix ‖ version BE.
    pub fn stream_version(stream: &str, version: u64) -> Vec<u8> {
        let mut k = stream_prefix(stream);
        k.extend_from_slice(&version.to_be_bytes());
        k
    }

    /// `ids` key of an event id.
    pub fn event_id(id: &Uuid) -> [u8; 17] {
        let mut k = [0u8; 17];
        k[0] = b'e';
        k[1..].copy_from_slice(id.as_bytes());
        k
    }

    /// `ids` key of the append whose first event has this id.
    pub fn first_event(id: &Uuid) -> [u8; 17] {
        let mut k = [0u8; 17];
        k[0] = b'f';
        k[1..].copy_from_slice(id.as_bytes());
        k
    }

    /// `ids` key of an append's idempotency key.
    pub fn dedup(key: &str) -> Vec<u8> {
        let mut k = Vec::with_capacity(1 + key.len());
        k.push(b'k');
        k.extend_from_slice(key.as_bytes());
        k
    }
}

/// `recorded_at` as `YYYY-MM-DDTHH:MM:SS.ffffffZ`: fixed width, sorts as text.
pub mod micros {
    use chrono::{DateTime, NaiveDateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    const FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6fZ";

    /// Formats an instant the way the log stores it.
    pub fn format(t: &DateTime<Utc>) -> String {
        t.format(FORMAT).to_string()
    }

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        NaiveDateTime::parse_from_str(&s, FORMAT)
            .map(|n| n.and_utc())
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;
    use serde_json::json;

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-(MAX_SAFE_INTEGER as i64)..=(MAX_SAFE_INTEGER as i64)).prop_map(|i| json!(i)),
            (-1.0e12f64..1.0e12).prop_map(|f| json!(f)),
            ".{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::btree_map(".{0,8}", inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn arb_metadata() -> impl Strategy<Value = Metadata> {
        (
            proptest::option::of(".{0,10}"),
            proptest::option::of(any::<u128>().prop_map(Uuid::from_u128)),
            proptest::option::of(any::<u128>().prop_map(Uuid::from_u128)),
            proptest::option::of("[a-z0-9-]{0,12}"),
            proptest::option::of("[0-9a-f]{64}"),
            proptest::option::of(".{0,20}"),
        )
            .prop_map(
                |(actor, causation_id, correlation_id, request_id, certificate, reason)| Metadata {
                    actor,
                    causation_id,
                    correlation_id,
                    request_id,
                    certificate,
                    reason,
                },
            )
    }

    fn arb_record() -> impl Strategy<Value = Record> {
        (
            1..=MAX_SAFE_INTEGER,
            "[A-Za-z0-9._:-]{1,40}",
            1..=MAX_SAFE_INTEGER,
            any::<u128>(),
            "[a-z0-9._]{1,30}",
            0i64..4_102_444_800_000_000, // up to year 2100, in microseconds
            arb_json(),
            arb_metadata(),
        )
            .prop_map(
                |(position, stream, version, id, event_type, us, payload, metadata)| Record {
                    position,
                    stream,
                    version,
                    event_id: Uuid::from_u128(id),
                    event_type,
                    recorded_at: Utc.timestamp_micros(us).single().expect("in range"),
                    payload,
                    metadata,
                },
            )
    }

    /// JSON as the service writes it: ASCII keys, integers, strings with
    /// any character (control characters, quotes, non-ASCII), so that the
    /// fast path of `canonical_value` is the one exercised.
    fn arb_plain_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|i| json!(i)),
            any::<u64>().prop_map(|u| json!(u)),
            "(.|[\\x00-\\x1f\\\\\"/\\x7f\u{2028}])*".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map("[ -~]{0,10}|[a-z_]{1,12}|.{0,4}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// serde_json's map is sorted (no `preserve_order` feature crept in
    /// through a dependency): the fast path relies on it.
    #[test]
    fn serde_json_maps_are_sorted() {
        let v: Value = serde_json::from_str(r#"{"b":1,"a":2,"Z":3}"#).unwrap();
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["Z", "a", "b"]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// The fast canonical encoding equals the reference one on any value
        /// (falling back where it must: floats, keys at or above U+E000).
        #[test]
        fn fast_canonical_equals_reference(v in prop_oneof![arb_plain_json(), arb_json()]) {
            prop_assert_eq!(canonical_value(&v).unwrap(), canonical(&v).unwrap());
        }

        /// The spliced encoder writes exactly the reference canonical bytes.
        #[test]
        fn spliced_encoding_equals_canonical(r in arb_record()) {
            let pre = PreEncoded::new(r.event_id, &r.event_type, &r.payload, &r.metadata).unwrap();
            let spliced = pre.encode(r.position, &r.stream, r.version, &r.recorded_at);
            prop_assert_eq!(&spliced, &encode(&r).unwrap());
        }

        /// decode ∘ encode is stable: re-encoding decoded bytes gives the same bytes,
        /// and every field except float spelling survives.
        #[test]
        fn round_trip(r in arb_record()) {
            let bytes = encode(&r).unwrap();
            let back = decode(&bytes).unwrap();
            prop_assert_eq!(&encode(&back).unwrap(), &bytes);
            prop_assert_eq!(back.position, r.position);
            prop_assert_eq!(&back.stream, &r.stream);
            prop_assert_eq!(back.version, r.version);
            prop_assert_eq!(back.event_id, r.event_id);
            prop_assert_eq!(&back.event_type, &r.event_type);
            prop_assert_eq!(back.recorded_at, r.recorded_at);
            prop_assert_eq!(&back.metadata, &r.metadata);
            prop_assert_eq!(leaf_hash(&encode(&back).unwrap()), leaf_hash(&bytes));
        }

        /// Keys of different streams never share a prefix relation.
        #[test]
        fn stream_keys_do_not_collide(a in "[a-z0-9-]{1,20}", b in "[a-z0-9-]{1,20}", v in any::<u64>()) {
            prop_assume!(a != b);
            prop_assert!(!keys::stream_version(&b, v).starts_with(&keys::stream_prefix(&a)));
        }
    }

    #[test]
    fn leaf_hash_is_rfc6962_leaf() {
        // SHA-256(0x00) — the RFC 6962 hash of an empty leaf.
        assert_eq!(
            hex::encode(leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }

    #[test]
    fn unsafe_integers_are_rejected_with_their_path() {
        let cases = [
            (json!({"a": 9007199254740991u64}), None),
            (json!({"a": -9007199254740991i64}), None),
            (
                json!({"a": [1, {"b": 9007199254740992u64}]}),
                Some("/a/1/b"),
            ),
            (json!(-9007199254740992i64), Some("/")),
            (json!({"f": 1.5e300}), None),
        ];
        for (value, want) in cases {
            match (check_safe_numbers(&value), want) {
                (Ok(()), None) => {}
                (Err(CodecError::UnsafeInteger(_, path)), Some(p)) => assert_eq!(path, p),
                (got, want) => panic!("{value}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn validators() {
        for ok in ["doc-0192", "org", "register-UBND-QD-2026", "a:b.c_d"] {
            validate_stream_id(ok).unwrap();
        }
        for bad in ["", "has space", "ý", "a/b", &"x".repeat(201)] {
            assert!(validate_stream_id(bad).is_err(), "{bad:?}");
        }
        validate_event_type("document.signed.v1").unwrap();
        for bad in ["", "Document", "a-b", &"x".repeat(101)] {
            assert!(validate_event_type(bad).is_err(), "{bad:?}");
        }
        validate_idempotency_key("3f1c-retry").unwrap();
        for bad in ["", "a b", "é", &"k".repeat(256)] {
            assert!(validate_idempotency_key(bad).is_err(), "{bad:?}");
        }
    }
}
