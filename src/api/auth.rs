//! Authentication: `Authorization: Bearer <JWT>` signed with EdDSA by the
//! service's token key; `sub` is an official id (or an integration client
//! id), `scope` a space-separated list. What a caller may do comes from the
//! organisation (e.g. the admin role), never from claims in the token.
//!
//! Must never: accept an algorithm other than EdDSA, a token without `exp`,
//! or trust a role claimed in the token.

use std::future::{ready, Ready};

use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::problem::Problem;
use super::AppState;

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Official id or integration client id.
    pub id: String,
    pub scopes: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
    iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
}

/// Verifies tokens.
pub struct TokenVerifier {
    key: DecodingKey,
}

impl TokenVerifier {
    /// From the token key's public half (SPKI PEM).
    pub fn from_pem(pem: &[u8]) -> Result<Self, jsonwebtoken::errors::Error> {
        Ok(Self {
            key: DecodingKey::from_ed_pem(pem)?,
        })
    }

    /// The caller a bearer token stands for.
    pub fn verify(&self, token: &str) -> Result<Caller, String> {
        let mut v = Validation::new(Algorithm::EdDSA);
        v.set_required_spec_claims(&["exp", "sub"]);
        v.validate_aud = false;
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.key, &v).map_err(|e| e.to_string())?;
        let c = data.claims;
        if c.sub.is_empty() {
            return Err("empty sub".into());
        }
        Ok(Caller {
            id: c.sub,
            scopes: c
                .scope
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
        })
    }
}

/// Mints a token for `sub` (development: `vanthu token`).
pub fn mint(
    private_key_pem: &[u8],
    sub: &str,
    scopes: &[String],
    ttl: chrono::Duration,
) -> Result<String, jsonwebtoken::errors::Error> {
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        sub: sub.to_owned(),
        iat: now,
        exp: now + ttl.num_seconds(),
        scope: (!scopes.is_empty()).then(|| scopes.join(" ")),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::EdDSA),
        &claims,
        &EncodingKey::from_ed_pem(private_key_pem)?,
    )
}

fn unauthorized(detail: impl Into<String>) -> Problem {
    Problem::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Authentication required",
    )
    .with_detail(detail)
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
        let token = match header.and_then(|h| h.strip_prefix("Bearer ")) {
            Some(t) => t.trim(),
            None => return ready(Err(unauthorized("send Authorization: Bearer <token>"))),
        };
        ready(
            state
                .tokens
                .verify(token)
                .map_err(|e| unauthorized(format!("invalid token: {e}"))),
        )
    }
}
