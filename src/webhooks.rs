//! Webhook message signatures as the Standard Webhooks specification
//! (standardwebhooks.com, `spec/standard-webhooks.md`) defines them: a
//! message carries `webhook-id`, `webhook-timestamp` (Unix seconds) and
//! `webhook-signature`, a space-separated list of `v1,<base64 HMAC-SHA256>`
//! over `{id}.{timestamp}.{body}`, keyed by a secret written `whsec_<base64>`.
//! While a subscriber rotates its secret, messages are signed with both the
//! old and the new one; a receiver accepts a message any of its secrets
//! signed, within a tolerance of its own clock.
//!
//! This is the signing half of the outbox's webhook deliveries (issue 16)
//! and the check a receiving vanthu makes.
//!
//! Must never: read a clock (the instant is given), compare signatures in
//! time that depends on where they differ, or show a secret in `Debug` or
//! `Display` output.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::Mac;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The prefix of a secret's text form.
pub const SECRET_PREFIX: &str = "whsec_";
/// The only signature scheme of the specification's version 1.
const SCHEME: &str = "v1";
/// Key sizes the specification allows (24 to 64 bytes).
const KEY_BYTES: std::ops::RangeInclusive<usize> = 24..=64;
/// How far a message's timestamp may be from the receiver's clock by
/// default (the specification's reference libraries use five minutes).
pub const TOLERANCE_SECONDS: i64 = 5 * 60;

/// Why a secret or a message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("a webhook secret is `whsec_` and the base64 of 24 to 64 random bytes")]
    Secret,
    #[error("the message lacks the {0} header")]
    Missing(&'static str),
    #[error("webhook-timestamp is not Unix seconds")]
    Timestamp,
    #[error("the message's timestamp is {0} s from now, beyond the tolerance")]
    Stale(i64),
    #[error("no v1 signature in webhook-signature matches a secret")]
    NoMatch,
}

/// A subscriber's signing secret.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl WebhookSecret {
    /// A new random secret of 32 bytes.
    pub fn generate() -> Self {
        let mut key = vec![0u8; 32];
        getrandom::fill(&mut key).expect("the system's random source");
        Self(key)
    }

    /// The secret derived from the service's webhook key for `webhook` at
    /// `generation`: HMAC-SHA-256(key, label ‖ webhook ‖ generation), 32
    /// bytes, so secrets are never stored and every node computes the same.
    pub fn derive(key: &[u8; 32], webhook: &str, generation: u32) -> Self {
        let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(b"vanthu webhook secret v1\0");
        mac.update(webhook.as_bytes());
        mac.update(b"\0");
        mac.update(&generation.to_be_bytes());
        Self(mac.finalize().into_bytes().to_vec())
    }

    /// From its text form, `whsec_<base64>`.
    pub fn parse(text: &str) -> Result<Self, WebhookError> {
        let b64 = text
            .strip_prefix(SECRET_PREFIX)
            .ok_or(WebhookError::Secret)?;
        let key = STANDARD.decode(b64).map_err(|_| WebhookError::Secret)?;
        if !KEY_BYTES.contains(&key.len()) {
            return Err(WebhookError::Secret);
        }
        Ok(Self(key))
    }

    /// The text form, to hand to the subscriber once (never logged).
    pub fn expose(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// The HMAC of a message's signed content, `{id}.{timestamp}.{body}`.
    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(body);
        mac
    }

    /// This secret's signature of a message.
    fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> [u8; 32] {
        self.mac(id, timestamp, body).finalize().into_bytes().into()
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(whsec_…)")
    }
}

/// The `webhook-signature` header of a message: one `v1,` signature per
/// secret (two while a secret is rotated), space-separated.
pub fn signature_header(
    secrets: &[WebhookSecret],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|s| format!("{SCHEME},{}", STANDARD.encode(s.sign(id, timestamp, body))))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Signatures of one header looked at (the specification expects one per
/// secret in rotation).
const MAX_SIGNATURES: usize = 8;

/// Whether `a` and `b` are equal, in time independent of where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks a received message's headers (`None` when absent) against the
/// receiver's secrets at `now` (Unix seconds): its timestamp within
/// `tolerance` seconds, and a `v1` signature that one of the secrets made.
/// Signatures of other schemes are skipped, as the specification says.
pub fn verify(
    secrets: &[WebhookSecret],
    id: Option<&str>,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
    tolerance: i64,
) -> Result<(), WebhookError> {
    let mut check = Streaming::start(secrets, id, timestamp, signature, now, tolerance)?;
    check.update(body);
    check.finish()
}

/// [`verify`] fed the body a piece at a time, for a body too large to hold
/// before it is known to be signed: the headers are checked at `start`,
/// each piece goes to `update` (a pass of SHA-256 per secret: run it off
/// the async workers), and `finish` compares.
pub struct Streaming {
    /// Each secret's MAC so far.
    macs: Vec<HmacSha256>,
    signature: String,
}

impl Streaming {
    /// Checks the headers (present, the timestamp within `tolerance` of
    /// `now`) and starts each secret's MAC.
    pub fn start(
        secrets: &[WebhookSecret],
        id: Option<&str>,
        timestamp: Option<&str>,
        signature: Option<&str>,
        now: i64,
        tolerance: i64,
    ) -> Result<Self, WebhookError> {
        let id = id
            .filter(|s| !s.is_empty())
            .ok_or(WebhookError::Missing("webhook-id"))?;
        let timestamp = timestamp
            .filter(|s| !s.is_empty())
            .ok_or(WebhookError::Missing("webhook-timestamp"))?;
        let signature = signature
            .filter(|s| !s.is_empty())
            .ok_or(WebhookError::Missing("webhook-signature"))?;
        let at: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| WebhookError::Timestamp)?;
        let off = at.saturating_sub(now);
        if off.saturating_abs() > tolerance {
            return Err(WebhookError::Stale(off));
        }
        Ok(Self {
            macs: secrets.iter().map(|s| s.mac(id, at, &[])).collect(),
            signature: signature.to_owned(),
        })
    }

    /// The next piece of the body.
    pub fn update(&mut self, piece: &[u8]) {
        for mac in &mut self.macs {
            mac.update(piece);
        }
    }

    /// Whether one of the header's signatures is one secret's over the
    /// whole body.
    pub fn finish(self) -> Result<(), WebhookError> {
        // Each secret's MAC over the body is computed once, however many
        // signatures the header lists (a long header costs no more passes
        // over a large body), and compared in constant time with each.
        let expected: Vec<[u8; 32]> = self
            .macs
            .into_iter()
            .map(|m| m.finalize().into_bytes().into())
            .collect();
        let matched = self.signature.split(' ').take(MAX_SIGNATURES).any(|part| {
            let Some((SCHEME, b64)) = part.split_once(',') else {
                return false;
            };
            let Ok(sig) = STANDARD.decode(b64) else {
                return false;
            };
            expected.iter().any(|e| constant_time_eq(e, &sig))
        });
        if matched {
            Ok(())
        } else {
            Err(WebhookError::NoMatch)
        }
    }
}

/// The key webhook secrets are derived from (`keys_dir/webhooks/webhooks.key`).
pub struct SecretKey([u8; 32]);

impl SecretKey {
    /// Reads the file: the base64 of 32 random bytes, on one line.
    pub fn load(path: &std::path::Path) -> Result<Self, String> {
        use base64::Engine;
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| format!("{}: not base64: {e}", path.display()))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| format!("{}: the key must be 32 bytes", path.display()))?;
        Ok(Self(key))
    }

    /// The bytes (for the development-key check).
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The secret webhook `id` signs with at `generation` (0, then one
    /// more per rotation): the same on every node sharing the key, never
    /// stored.
    pub fn secret(&self, webhook: &str, generation: u32) -> WebhookSecret {
        WebhookSecret::derive(&self.0, webhook, generation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The specification's example, as its reference libraries test it.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const AT: i64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn the_specifications_example_signs_and_verifies() {
        let secret = WebhookSecret::parse(SECRET).unwrap();
        assert_eq!(
            signature_header(std::slice::from_ref(&secret), ID, AT, BODY),
            SIGNATURE
        );
        let ok = verify(
            &[secret],
            Some(ID),
            Some(&AT.to_string()),
            Some(SIGNATURE),
            BODY,
            AT,
            300,
        );
        assert_eq!(ok, Ok(()));
    }

    #[test]
    fn a_rotated_secret_signs_twice_and_either_verifies() {
        let (old, new) = (WebhookSecret::generate(), WebhookSecret::generate());
        let header = signature_header(&[old.clone(), new.clone()], ID, AT, BODY);
        assert_eq!(header.split(' ').count(), 2);
        for receiver in [old, new] {
            let got = verify(
                &[receiver],
                Some(ID),
                Some(&AT.to_string()),
                Some(&header),
                BODY,
                AT,
                300,
            );
            assert_eq!(got, Ok(()));
        }
    }

    #[test]
    fn refusals_name_what_is_wrong() {
        let secret = WebhookSecret::parse(SECRET).unwrap();
        let at = AT.to_string();
        let other = WebhookSecret::generate();
        // An unknown scheme first, then the good signature.
        let mixed = format!("v1a,x {SIGNATURE}");
        // (secrets, id, timestamp, signature, body, now) → outcome
        type Case<'a> = (
            Vec<WebhookSecret>,
            Option<&'a str>,
            Option<&'a str>,
            Option<&'a str>,
            &'a [u8],
            i64,
            Result<(), WebhookError>,
        );
        let cases: Vec<Case<'_>> = vec![
            (
                vec![secret.clone()],
                None,
                Some(&at),
                Some(SIGNATURE),
                BODY,
                AT,
                Err(WebhookError::Missing("webhook-id")),
            ),
            (
                vec![secret.clone()],
                Some(ID),
                Some(""),
                Some(SIGNATURE),
                BODY,
                AT,
                Err(WebhookError::Missing("webhook-timestamp")),
            ),
            (
                vec![secret.clone()],
                Some(ID),
                Some(&at),
                None,
                BODY,
                AT,
                Err(WebhookError::Missing("webhook-signature")),
            ),
            (
                vec![secret.clone()],
                Some(ID),
                Some("soon"),
                Some(SIGNATURE),
                BODY,
                AT,
                Err(WebhookError::Timestamp),
            ),
            (
                vec![secret.clone()],
                Some(ID),
                Some(&at),
                Some(SIGNATURE),
                BODY,
                AT + 301,
                Err(WebhookError::Stale(-301)),
            ),
            (
                vec![secret.clone()],
                Some(ID),
                Some(&at),
                Some(SIGNATURE),
                BODY,
                AT - 301,
                Err(WebhookError::Stale(301)),
            ),
            (
                vec![secret.clone()],
                Some(ID),
                Some(&at),
                Some(SIGNATURE),
                BODY,
                AT + 300,
                Ok(()),
            ),
            (
                vec![secret.clone()],
                Some(ID),
                Some(&at),
                Some(SIGNATURE),
                b"{\"test\": 2432232315}",
                AT,
                Err(WebhookError::NoMatch),
            ),
            (
                vec![secret.clone()],
                Some("msg_other"),
                Some(&at),
                Some(SIGNATURE),
                BODY,
                AT,
                Err(WebhookError::NoMatch),
            ),
            (
                vec![other.clone()],
                Some(ID),
                Some(&at),
                Some(SIGNATURE),
                BODY,
                AT,
                Err(WebhookError::NoMatch),
            ),
            (
                vec![secret.clone()],
                Some(ID),
                Some(&at),
                Some("v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
                BODY,
                AT,
                Err(WebhookError::NoMatch),
            ),
            (
                vec![secret.clone()],
                Some(ID),
                Some(&at),
                Some("v1,not base64!"),
                BODY,
                AT,
                Err(WebhookError::NoMatch),
            ),
            (
                vec![other, secret],
                Some(ID),
                Some(&at),
                Some(mixed.as_str()),
                BODY,
                AT,
                Ok(()),
            ),
        ];
        for (i, (secrets, id, ts, sig, body, now, want)) in cases.into_iter().enumerate() {
            assert_eq!(
                verify(&secrets, id, ts, sig, body, now, 300),
                want,
                "case {i}"
            );
        }
    }

    #[test]
    fn secrets_parse_strictly_and_never_show() {
        for bad in [
            "",
            "whsec_",
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_!!!",
            "whsec_AAAA",
        ] {
            assert_eq!(
                WebhookSecret::parse(bad),
                Err(WebhookError::Secret),
                "{bad:?}"
            );
        }
        let s = WebhookSecret::generate();
        assert_eq!(WebhookSecret::parse(&s.expose()), Ok(s.clone()));
        assert!(!format!("{s:?}").contains(&s.expose()[6..]));
    }

    #[test]
    fn only_a_4xx_other_than_408_425_429_refuses_for_good() {
        for (status, permanent) in [
            (400, true),
            (403, true),
            (404, true),
            (409, true),
            (413, true),
            (422, true),
            (499, true),
            (408, false),
            (425, false),
            (429, false),
            (500, false),
            (503, false),
            (302, false),
            (200, false),
        ] {
            assert_eq!(refuses_for_good(status), permanent, "{status}");
        }
    }

    #[test]
    fn the_key_derives_one_secret_per_webhook_and_generation() {
        let key = SecretKey([7; 32]);
        let a0 = key.secret("portal", 0).expose();
        assert_eq!(a0, key.secret("portal", 0).expose(), "stable");
        assert_ne!(a0, key.secret("portal", 1).expose(), "rotation changes it");
        assert_ne!(a0, key.secret("archive", 0).expose(), "per webhook");
        assert_ne!(
            a0,
            SecretKey([8; 32]).secret("portal", 0).expose(),
            "per key"
        );
        assert!(WebhookSecret::parse(&a0).is_ok());
    }
}

/// What posting a message came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The receiver's HTTP status, when it answered.
    pub status: Option<u16>,
    /// Why it failed (None: a 2xx came back).
    pub error: Option<String>,
    /// A `Retry-After` the receiver asked for, in seconds.
    pub retry_after: Option<std::time::Duration>,
}

/// One signed message to post.
pub struct Message<'a> {
    pub url: &'a str,
    pub id: &'a str,
    /// Unix seconds, of the sending machine's clock.
    pub timestamp: i64,
    pub secrets: &'a [WebhookSecret],
    pub content_type: &'a str,
    /// Extra headers (`Vanthu-Peer` for the interchange).
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// Posts `m` with the Standard Webhooks headers, within `timeout`; a 2xx
/// is delivered, anything else (or no answer) a failure, whose error keeps
/// the start of what the receiver answered. Redirects are
/// the client's to refuse; errors never carry the URL.
pub async fn post(http: &reqwest::Client, m: Message<'_>, timeout: std::time::Duration) -> Sent {
    let signature = signature_header(m.secrets, m.id, m.timestamp, &m.body);
    let mut request = http
        .post(m.url)
        .timeout(timeout)
        .header("content-type", m.content_type)
        .header("user-agent", concat!("vanthu/", env!("CARGO_PKG_VERSION")))
        .header("webhook-id", m.id)
        .header("webhook-timestamp", m.timestamp.to_string())
        .header("webhook-signature", signature);
    for (name, value) in m.headers {
        request = request.header(name, value);
    }
    match request.body(m.body).send().await {
        Ok(resp) => {
            let code = resp.status();
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(std::time::Duration::from_secs);
            let error = if code.is_success() {
                None
            } else {
                // What the receiver said (a problem body, say), bounded.
                let said = answer_text(resp).await;
                Some(if said.is_empty() {
                    format!("answered {code}")
                } else {
                    format!("answered {code}: {said}")
                })
            };
            Sent {
                status: Some(code.as_u16()),
                error,
                retry_after,
            }
        }
        Err(e) => Sent {
            status: None,
            error: Some(describe(e)),
            retry_after: None,
        },
    }
}

/// Bytes of a refusal's body kept in the attempt record.
pub const ANSWER_KEPT: usize = 1024;

/// The start of a response's body (at most [`ANSWER_KEPT`] bytes, read no
/// further), as text with its whitespace runs folded.
async fn answer_text(mut resp: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < ANSWER_KEPT {
        match resp.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    bytes.truncate(ANSWER_KEPT);
    String::from_utf8_lossy(&bytes)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether HTTP status `status` refuses a message for good: a 4xx other
/// than 408 (timeout), 425 (too early) and 429 (too many requests). Sending
/// the same bytes again gets the same answer.
pub fn refuses_for_good(status: u16) -> bool {
    (400..500).contains(&status) && !matches!(status, 408 | 425 | 429)
}

/// A failed request in a few words, without its URL (a receiver may carry
/// a token in it).
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "could not connect".into()
    } else if e.is_redirect() {
        "answered with a redirect (not followed)".into()
    } else {
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            text = format!("{text}: {s}");
            source = s.source();
        }
        text
    }
}
