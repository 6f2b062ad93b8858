//! Authentication: `Authorization: Bearer <JWT>` (scheme matched without
//! regard to case, RFC 9110 §11.1) signed with EdDSA by the service's token
//! key, with `iss`, `aud`, `exp`, `iat` (and `nbf` when present) checked and
//! a maximum lifetime. A token is an official's (`sub` = official id) or an
//! integration client's (`client_id` = `sub`, RFC 9068 §2.2); the
//! organisation then decides: an official must be one it knows, a client
//! must be registered, and a client's scopes are what both its token and its
//! registration name (`domain::org::Org::authenticate`).
//!
//! Must never: accept an algorithm other than EdDSA, a token without `exp`,
//! `iss` or `aud`, or trust a role or a scope the organisation did not grant.

use std::future::{ready, Ready};

use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::problem::Problem;
use super::AppState;
use crate::domain::org::Subject;

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

/// Verifies tokens.
pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
    max_lifetime: i64,
}

impl TokenVerifier {
    /// From the token key's public half (SPKI PEM) and the policy.
    pub fn from_pem(pem: &[u8], policy: &TokenPolicy) -> Result<Self, jsonwebtoken::errors::Error> {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        validation.set_issuer(&[&policy.issuer]);
        validation.set_audience(&[&policy.audience]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY;
        Ok(Self {
            key: DecodingKey::from_ed_pem(pem)?,
            validation,
            max_lifetime: policy.max_lifetime.num_seconds(),
        })
    }

    /// What a bearer token claims, if it is valid now.
    pub fn verify(&self, token: &str) -> Result<Verified, String> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| e.to_string())?;
        let c = data.claims;
        if c.sub.is_empty() {
            return Err("empty sub".into());
        }
        let now = chrono::Utc::now().timestamp();
        if c.iat > now + LEEWAY as i64 {
            return Err("issued in the future (iat)".into());
        }
        if c.exp - c.iat > self.max_lifetime {
            return Err(format!(
                "lives {} s, longer than the {} s this service accepts",
                c.exp - c.iat,
                self.max_lifetime
            ));
        }
        let client = c.client_id.as_deref() == Some(c.sub.as_str());
        Ok(Verified {
            sub: c.sub,
            client,
            scopes: c
                .scope
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
        })
    }
}

fn mint(
    private_key_pem: &[u8],
    sub: &str,
    client: bool,
    scopes: &[String],
    ttl: chrono::Duration,
) -> Result<String, jsonwebtoken::errors::Error> {
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
    Problem::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Authentication required",
    )
    .with_detail(detail)
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
    type Future = Ready<Result<Self, Problem>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let Some(state) = req.app_data::<web::Data<AppState>>() else {
            return ready(Err(unauthorized("authentication is not configured")));
        };
        let header = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok());
        let Some(token) = header.and_then(bearer) else {
            return ready(Err(unauthorized("send Authorization: Bearer <token>")));
        };
        let verified = match state.tokens.verify(token) {
            Ok(v) => v,
            Err(e) => return ready(Err(unauthorized(format!("invalid token: {e}")))),
        };
        let now = state.docs.clock.now();
        let subject = state
            .org
            .read(|org| org.authenticate(&verified.sub, verified.client, &verified.scopes, now));
        ready(match subject {
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
        })
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
}
