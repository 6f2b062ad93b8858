//! Authentication: `Authorization: Bearer <JWT>` (scheme matched without
//! regard to case, RFC 9110 §11.1) signed with EdDSA by the service's token
//! key or by a key of the SSO's JWK Set (`crate::jwks`), with `iss`, `aud`,
//! `exp`, `iat` (and `nbf` when present) checked and
//! a maximum lifetime. A token is an official's (`sub` = official id) or an
//! integration client's (`client_id` = `sub`, RFC 9068 §2.2); the
//! organisation then decides: an official must be one it knows, a client
//! must be registered, and a client's scopes are what both its token and its
//! registration name (`domain::org::Org::authenticate`).
//!
//! Must never: accept an algorithm its key was not made for (never HMAC or
//! `none`), a token without `exp`,
//! `iss` or `aud`, or trust a role or a scope the organisation did not grant.

use actix_web::{web, FromRequest, HttpRequest};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::problem::{Kind, Problem};
use super::AppState;
use crate::domain::org::Subject;
use crate::jwks::{Jwks, TokenKey};

/// The issuer and audience development tokens carry (`vanthu token`), and
/// the service's defaults for `auth.issuer` and `auth.audience`.
pub const DEV_ISSUER: &str = "vanthu-dev";
pub const DEFAULT_AUDIENCE: &str = "vanthu";

/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
const LEEWAY: u64 = 60;

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Official id or integration client id (the two never overlap).
    pub id: String,
    pub subject: Subject,
}

impl Caller {
    /// An official (not an integration client).
    pub fn is_official(&self) -> bool {
        matches!(self.subject, Subject::Official)
    }

    /// Whether the organisation granted this caller `scope` (clients only).
    pub fn has_scope(&self, scope: &str) -> bool {
        matches!(&self.subject, Subject::Client { scopes } if scopes.iter().any(|s| s == scope))
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
    iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<i64>,
    iss: String,
    /// A string or an array of strings (RFC 7519 §4.1.3).
    aud: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
}

/// What a verified token claims, before the organisation has judged it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub sub: String,
    /// `client_id` = `sub`: an integration client's own token.
    pub client: bool,
    pub scopes: Vec<String>,
}

/// Which tokens the service accepts.
#[derive(Debug, Clone)]
pub struct TokenPolicy {
    pub issuer: String,
    pub audience: String,
    /// Longest `exp - iat` accepted.
    pub max_lifetime: chrono::Duration,
}

/// Verifies tokens: signed by the service's own token key or by a key of
/// the configured JWK Set (the province's SSO), with the policy's claims.
pub struct TokenVerifier {
    /// `keys_dir/jwt/jwt.pub.pem`, when present.
    own: Option<TokenKey>,
    jwks: Option<std::sync::Arc<Jwks>>,
    policy: TokenPolicy,
    /// Tokens verified before, by the SHA-256 of the whole token: a client
    /// sends the same token with every request, and its signature cannot
    /// change, so a repeat skips the Ed25519 check. A hit still checks
    /// `exp`/`nbf` against now, and only counts while the JWK Set is the
    /// one that verified it (a key the SSO withdrew stops its tokens at
    /// once).
    verified: std::sync::Mutex<std::collections::HashMap<[u8; 32], Cached>>,
}

/// A verified token, while it stays valid.
struct Cached {
    verified: Verified,
    exp: i64,
    nbf: Option<i64>,
    /// The JWK Set's keys when it was verified (None: no set configured).
    keys: Option<std::sync::Arc<Vec<TokenKey>>>,
}

/// Most tokens remembered; past it expired ones are dropped, then all.
const CACHED_TOKENS: usize = 8192;

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// No key held verifies its signature (perhaps one the provider has
    /// rotated in since the set was loaded).
    NoKey(String),
    Invalid(String),
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenError::NoKey(s) | TokenError::Invalid(s) => f.write_str(s),
        }
    }
}

impl TokenVerifier {
    /// From the service's token key (SPKI PEM, if any), the JWK Set (if
    /// configured) and the policy.
    pub fn new(
        own_pem: Option<&[u8]>,
        jwks: Option<std::sync::Arc<Jwks>>,
        policy: &TokenPolicy,
    ) -> Result<Self, jsonwebtoken::errors::Error> {
        let own = own_pem
            .map(|pem| {
                Ok::<_, jsonwebtoken::errors::Error>(TokenKey {
                    kid: None,
                    algorithms: vec![Algorithm::EdDSA],
                    key: DecodingKey::from_ed_pem(pem)?,
                })
            })
            .transpose()?;
        Ok(Self {
            own,
            jwks,
            policy: policy.clone(),
            verified: Default::default(),
        })
    }

    /// The JWK Set, if one is configured.
    pub fn jwks(&self) -> Option<&std::sync::Arc<Jwks>> {
        self.jwks.as_ref()
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut validation = Validation::new(alg);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        validation.set_issuer(&[&self.policy.issuer]);
        validation.set_audience(&[&self.policy.audience]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY;
        validation
    }

    /// What a bearer token claims, if it is valid now, judged with the keys
    /// held; a token no held key verifies makes the JWK Set reload (at most
    /// every `jwks::MIN_RELOAD`) and is judged once more.
    pub async fn verify_reloading(&self, token: &str) -> Result<Verified, String> {
        match (self.verify(token), &self.jwks) {
            (Err(TokenError::NoKey(_)), Some(jwks)) => {
                // Reloaded now, or by a concurrent request moments ago:
                // either way the keys may have changed since the first try.
                jwks.reload_soon().await;
                self.verify(token).map_err(|e| e.to_string())
            }
            (other, _) => other.map_err(|e| e.to_string()),
        }
    }

    /// What a bearer token claims, if it is valid now: from the cache of
    /// tokens verified before, or verified afresh (`verify_signed`).
    pub fn verify(&self, token: &str) -> Result<Verified, TokenError> {
        use sha2::Digest;
        let hash: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        let keys = self.jwks.as_ref().map(|j| j.keys());
        // Real time, as `verify_signed` judges tokens.
        #[allow(clippy::disallowed_methods)]
        let now = chrono::Utc::now().timestamp();
        let leeway = LEEWAY as i64;
        let mut cache = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = cache.get(&hash) {
            let same_keys = match (&c.keys, &keys) {
                (Some(a), Some(b)) => std::sync::Arc::ptr_eq(a, b),
                (None, None) => true,
                _ => false,
            };
            if same_keys && now <= c.exp + leeway && c.nbf.is_none_or(|n| now + leeway >= n) {
                return Ok(c.verified.clone());
            }
            cache.remove(&hash);
        }
        drop(cache);
        let (verified, exp, nbf) = self.verify_signed(token)?;
        let mut cache = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHED_TOKENS {
            cache.retain(|_, c| now <= c.exp + leeway);
            if cache.len() >= CACHED_TOKENS {
                cache.clear();
            }
        }
        cache.insert(
            hash,
            Cached {
                verified: verified.clone(),
                exp,
                nbf,
                keys,
            },
        );
        Ok(verified)
    }

    /// What a bearer token claims, if its signature and claims are valid
    /// now, with its `exp` and `nbf`. The key is one made for the header's
    /// algorithm (and named by its `kid`, if the key has one); the header
    /// never picks an algorithm a key was not made for.
    fn verify_signed(&self, token: &str) -> Result<(Verified, i64, Option<i64>), TokenError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| TokenError::Invalid(e.to_string()))?;
        let alg = header.alg;
        let set = self.jwks.as_ref().map(|j| j.keys());
        let candidates = self
            .own
            .iter()
            .chain(set.iter().flat_map(|keys| keys.iter()))
            .filter(|k| k.algorithms.contains(&alg))
            .filter(|k| match (&header.kid, &k.kid) {
                (Some(want), Some(have)) => want == have,
                _ => true,
            });
        let mut data = None;
        for k in candidates {
            match jsonwebtoken::decode::<Claims>(token, &k.key, &self.validation(alg)) {
                Ok(d) => {
                    data = Some(d);
                    break;
                }
                Err(e) if *e.kind() == jsonwebtoken::errors::ErrorKind::InvalidSignature => {}
                Err(e) => return Err(TokenError::Invalid(e.to_string())),
            }
        }
        let Some(data) = data else {
            return Err(TokenError::NoKey(match header.kid {
                Some(kid) => format!("no {alg:?} key {kid:?} of this service verifies it"),
                None => format!("no {alg:?} key of this service verifies it"),
            }));
        };
        let c = data.claims;
        let invalid = |s: String| Err(TokenError::Invalid(s));
        if c.sub.is_empty() {
            return invalid("empty sub".into());
        }
        // Tokens live in real time, as jsonwebtoken checks `exp` and `nbf`
        // against the system clock: the development clock never stretches them.
        #[allow(clippy::disallowed_methods)]
        let now = chrono::Utc::now().timestamp();
        if c.iat > now + LEEWAY as i64 {
            return invalid("issued in the future (iat)".into());
        }
        let max_lifetime = self.policy.max_lifetime.num_seconds();
        if c.exp - c.iat > max_lifetime {
            return invalid(format!(
                "lives {} s, longer than the {} s this service accepts",
                c.exp - c.iat,
                max_lifetime
            ));
        }
        let client = c.client_id.as_deref() == Some(c.sub.as_str());
        let verified = Verified {
            sub: c.sub,
            client,
            scopes: c
                .scope
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
        };
        Ok((verified, c.exp, c.nbf))
    }
}

fn mint(
    private_key_pem: &[u8],
    sub: &str,
    client: bool,
    scopes: &[String],
    ttl: chrono::Duration,
) -> Result<String, jsonwebtoken::errors::Error> {
    // Real time, as the verifier checks it (see `TokenVerifier::verify`).
    #[allow(clippy::disallowed_methods)]
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        sub: sub.to_owned(),
        iat: now,
        nbf: Some(now),
        exp: now + ttl.num_seconds(),
        iss: DEV_ISSUER.to_owned(),
        aud: DEFAULT_AUDIENCE.into(),
        client_id: client.then(|| sub.to_owned()),
        scope: (!scopes.is_empty()).then(|| scopes.join(" ")),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::EdDSA),
        &claims,
        &EncodingKey::from_ed_pem(private_key_pem)?,
    )
}

/// Mints a development token for an official (`vanthu token --official`).
pub fn mint_official(
    private_key_pem: &[u8],
    official: &str,
    ttl: chrono::Duration,
) -> Result<String, jsonwebtoken::errors::Error> {
    mint(private_key_pem, official, false, &[], ttl)
}

/// Mints a development token for an integration client (`vanthu token
/// --client`): `client_id` = `sub`, with the scopes asked for.
pub fn mint_client(
    private_key_pem: &[u8],
    client: &str,
    scopes: &[String],
    ttl: chrono::Duration,
) -> Result<String, jsonwebtoken::errors::Error> {
    mint(private_key_pem, client, true, scopes, ttl)
}

fn unauthorized(detail: impl Into<String>) -> Problem {
    Problem::new(Kind::Unauthorized, "Authentication required").with_detail(detail)
}

/// What an integration client's scope lets it call: `feed:read` the feeds,
/// `org:read` the organisation. Nothing else is open to clients.
fn scope_covers(scope: &str, method: &actix_web::http::Method, path: &str) -> bool {
    let get = method == actix_web::http::Method::GET;
    match scope {
        "feed:read" => get && path.starts_with("/v1/feed/"),
        "org:read" => get && path == "/v1/org",
        _ => false,
    }
}

/// The token of an `Authorization` header value: scheme `Bearer` in any case.
fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

impl FromRequest for Caller {
    type Error = Problem;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, Problem>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { authenticate(&req).await })
    }
}

/// The caller of `req`: a valid token whose subject the organisation knows,
/// and (for a client) a scope that covers the route.
pub(crate) async fn authenticate(req: &HttpRequest) -> Result<Caller, Problem> {
    let Some(state) = req.app_data::<web::Data<AppState>>() else {
        return Err(unauthorized("authentication is not configured"));
    };
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok());
    let Some(token) = header.and_then(bearer) else {
        return Err(unauthorized("send Authorization: Bearer <token>"));
    };
    let verified = state
        .tokens
        .verify_reloading(token)
        .await
        .map_err(|e| unauthorized(format!("invalid token: {e}")))?;
    let now = state.docs.clock.now();
    let subject = state
        .org
        .read(|org| org.authenticate(&verified.sub, verified.client, &verified.scopes, now));
    match subject {
        Some(Subject::Client { scopes })
            if !scopes
                .iter()
                .any(|s| scope_covers(s, req.method(), req.path())) =>
        {
            Err(Problem::forbidden(format!(
                "integration client {} may call only what its scopes cover ({}); not {} {}",
                verified.sub,
                if scopes.is_empty() {
                    "none".to_owned()
                } else {
                    scopes.join(", ")
                },
                req.method(),
                req.path()
            )))
        }
        Some(subject) => Ok(Caller {
            id: verified.sub,
            subject,
        }),
        None if verified.client => Err(unauthorized(format!(
            "{} is not a registered integration client",
            verified.sub
        ))),
        None => Err(unauthorized(format!(
            "{} is not an official of this organisation",
            verified.sub
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::bearer;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for (header, token) in [
            ("Bearer abc", Some("abc")),
            ("bearer abc", Some("abc")),
            ("BEARER  abc ", Some("abc")),
            ("Basic abc", None),
            ("Bearer", None),
            ("Bearer ", None),
            ("Bearerabc", None),
        ] {
            assert_eq!(bearer(header), token, "{header:?}");
        }
    }

    /// A repeated token is answered from the cache, but a hit still checks
    /// its expiry against now and that the key set is the one that verified
    /// it; a token never verified is never served from it.
    #[test]
    fn verified_tokens_are_remembered_only_while_valid() {
        use super::*;
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("keys-dev/jwt");
        let policy = crate::config::AuthConfig::default().policy();
        let pub_pem = std::fs::read(root.join("jwt.pub.pem")).unwrap();
        let key = std::fs::read(root.join("jwt.key")).unwrap();
        let verifier = TokenVerifier::new(Some(&pub_pem), None, &policy).unwrap();
        let token = mint_official(&key, "svhtt-cv-qlvh", chrono::Duration::hours(1)).unwrap();
        let first = verifier.verify(&token).unwrap();
        assert_eq!(verifier.verified.lock().unwrap().len(), 1);
        assert_eq!(verifier.verify(&token).unwrap(), first);

        // Cached entries as if they had been verified: one past its exp
        // (and the leeway), one fine. Only the fine one is served; the
        // stale one falls through to a signature check, which this forged
        // token fails.
        #[allow(clippy::disallowed_methods)]
        let now = chrono::Utc::now().timestamp();
        let forged = |tag: &str| format!("forged.{tag}.token");
        for (tag, exp) in [("stale", now - 2 * LEEWAY as i64), ("fresh", now + 60)] {
            use sha2::Digest;
            verifier.verified.lock().unwrap().insert(
                sha2::Sha256::digest(forged(tag).as_bytes()).into(),
                Cached {
                    verified: first.clone(),
                    exp,
                    nbf: None,
                    keys: None,
                },
            );
        }
        assert!(verifier.verify(&forged("stale")).is_err());
        assert!(verifier.verify(&forged("fresh")).is_ok());
        assert!(verifier.verify(&forged("never")).is_err());
    }
}
