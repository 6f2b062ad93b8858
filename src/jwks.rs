//! Token keys from a JWK Set (RFC 7517): a file, or a URL such as an OIDC
//! provider's `jwks_uri` (or its discovery document, whose `jwks_uri` is
//! followed). The province's SSO signs the tokens; vanthu only verifies.
//! The set is reloaded on a schedule and, at once (at most every
//! [`MIN_RELOAD`]), when a token names a key the set lacks or no key of the
//! set verifies it: that is how a provider's key rotation reaches vanthu.
//!
//! Must never: accept a symmetric (`oct`) key or one meant for encryption,
//! let a token's header choose an algorithm its key was not made for, or
//! drop the keys it has for a set that does not load.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

/// A reload asked for by an unknown key waits at least this long after the
/// previous load, so tokens naming random keys cannot flood the provider.
pub const MIN_RELOAD: Duration = Duration::from_secs(2);

/// A key tokens may be signed with.
#[derive(Clone)]
pub struct TokenKey {
    /// The JWK's `kid`; `None` for the service's own token key.
    pub kid: Option<String>,
    /// The algorithms this key was made for (never HMAC or `none`).
    pub algorithms: Vec<Algorithm>,
    pub key: DecodingKey,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKey")
            .field("kid", &self.kid)
            .field("algorithms", &self.algorithms)
            .finish()
    }
}

/// The signature algorithms a JWK may be used with: its `alg` if it names
/// one, else every signature algorithm of its key type and curve.
fn algorithms(jwk: &Jwk) -> Result<Vec<Algorithm>, String> {
    use Algorithm::*;
    if let Some(alg) = jwk.common.key_algorithm {
        let one = match alg {
            KeyAlgorithm::RS256 => RS256,
            KeyAlgorithm::RS384 => RS384,
            KeyAlgorithm::RS512 => RS512,
            KeyAlgorithm::PS256 => PS256,
            KeyAlgorithm::PS384 => PS384,
            KeyAlgorithm::PS512 => PS512,
            KeyAlgorithm::ES256 => ES256,
            KeyAlgorithm::ES384 => ES384,
            KeyAlgorithm::EdDSA => EdDSA,
            other => {
                return Err(format!(
                    "algorithm {other:?} is not a signature algorithm vanthu accepts"
                ))
            }
        };
        return Ok(vec![one]);
    }
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Ok(vec![RS256, RS384, RS512, PS256, PS384, PS512]),
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => Ok(vec![ES256]),
            EllipticCurve::P384 => Ok(vec![ES384]),
            ref c => Err(format!("curve {c:?} is not supported")),
        },
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            Ok(vec![EdDSA])
        }
        AlgorithmParameters::OctetKey(_) => {
            Err("a symmetric (oct) key: tokens must be signed by the provider alone".into())
        }
        _ => Err("an unsupported key type".into()),
    }
}

/// The usable signature keys of a JWK Set. Keys for other uses or of other
/// types are skipped (a provider's set may hold them); a set with none
/// usable is an error that names why each was skipped.
pub fn parse_set(json: &[u8]) -> Result<Vec<TokenKey>, String> {
    let set: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| format!("not JSON: {e}"))?;
    let entries = set
        .get("keys")
        .and_then(|k| k.as_array())
        .ok_or("not a JWK Set (no \"keys\" array)")?;
    let mut keys = Vec::new();
    let mut skipped = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let usable = serde_json::from_value::<Jwk>(entry.clone())
            .map_err(|e| e.to_string())
            .and_then(|jwk| {
                if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
                    return Err("an encryption key (use = enc)".into());
                }
                let algorithms = algorithms(&jwk)?;
                let key = DecodingKey::from_jwk(&jwk).map_err(|e| e.to_string())?;
                Ok(TokenKey {
                    kid: jwk.common.key_id.clone(),
                    algorithms,
                    key,
                })
            });
        match usable {
            Ok(k) => keys.push(k),
            Err(why) => skipped.push(format!("key {i}: {why}")),
        }
    }
    if keys.is_empty() {
        return Err(if skipped.is_empty() {
            "the set has no keys".into()
        } else {
            format!("no usable signature key ({})", skipped.join("; "))
        });
    }
    Ok(keys)
}

/// Where the set comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    Url(String),
}

impl Source {
    /// An `http://` or `https://` URL, else a file path.
    pub fn parse(s: &str) -> Self {
        if s.starts_with("https://") || s.starts_with("http://") {
            Source::Url(s.to_owned())
        } else {
            Source::File(PathBuf::from(s))
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::File(p) => write!(f, "{}", p.display()),
            Source::Url(u) => f.write_str(u),
        }
    }
}

/// A JWK Set, its source and when it was last loaded.
pub struct Jwks {
    source: Source,
    http: reqwest::Client,
    keys: RwLock<Arc<Vec<TokenKey>>>,
    /// When the last load was tried; held across a load so concurrent
    /// requests for a reload wait for one load instead of each starting one.
    last_load: tokio::sync::Mutex<Option<Instant>>,
}

impl Jwks {
    /// A set not loaded yet (no keys until [`Jwks::load`] succeeds),
    /// fetched with `http` when it is a URL (`crate::outbound::client`).
    pub fn new(source: Source, http: reqwest::Client) -> Self {
        Self {
            source,
            http,
            keys: RwLock::new(Arc::new(Vec::new())),
            last_load: tokio::sync::Mutex::new(None),
        }
    }

    /// The keys as of the last successful load.
    pub fn keys(&self) -> Arc<Vec<TokenKey>> {
        Arc::clone(&self.keys.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Loads the set now; on failure the keys already held stay.
    pub async fn load(&self) -> Result<usize, String> {
        let mut last = self.last_load.lock().await;
        self.load_locked(&mut last).await
    }

    /// Loads the set unless a load began less than [`MIN_RELOAD`] ago.
    pub async fn reload_soon(&self) {
        let mut last = self.last_load.lock().await;
        if last.is_some_and(|t| t.elapsed() < MIN_RELOAD) {
            return;
        }
        let _ = self.load_locked(&mut last).await;
    }

    async fn load_locked(&self, last: &mut Option<Instant>) -> Result<usize, String> {
        *last = Some(Instant::now());
        let result = self.fetch().await.and_then(|bytes| parse_set(&bytes));
        match result {
            Ok(keys) => {
                let n = keys.len();
                *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
                tracing::info!(source = %self.source, keys = n, "token keys (JWKS) loaded");
                Ok(n)
            }
            Err(e) => {
                tracing::warn!(source = %self.source, error = %e, "token keys (JWKS) did not load; keeping the last ones");
                Err(format!("{}: {e}", self.source))
            }
        }
    }

    async fn fetch(&self) -> Result<Vec<u8>, String> {
        match &self.source {
            // A small local file: read in place.
            Source::File(p) => std::fs::read(p).map_err(|e| e.to_string()),
            Source::Url(url) => {
                let body = self.get(url).await?;
                // An OIDC discovery document names the set's URL.
                let discovered = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("jwks_uri")?.as_str().map(str::to_owned));
                match discovered {
                    Some(jwks_uri) => self.get(&jwks_uri).await,
                    None => Ok(body),
                }
            }
        }
    }

    async fn get(&self, url: &str) -> Result<Vec<u8>, String> {
        let r = self.http.get(url).send().await.map_err(|e| e.to_string())?;
        if !r.status().is_success() {
            return Err(format!("GET {url}: HTTP {}", r.status()));
        }
        Ok(r.bytes().await.map_err(|e| e.to_string())?.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_signature_keys_made_for_an_algorithm_are_taken() {
        let ed = r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"ed"}"#;
        let rsa = r#"{"kty":"RSA","e":"AQAB","n":"rmdoim1gCguFcb51MSQTjvUzOrl5kKEYcnPlDOGQ2bTpyg7JitnILUC0aTrdgqi4bZzMHyQ8qCo-Mpeoburd6iJJj9dvQ5sRDUAy5b8AzAwYxR2wvxRkTCgTt5sU2dGG7sGfpU9jxb-2I2_hrnUJ04rE1kYQ0wXcarAWL-EX4_NS0aQKxcAO2zO8ggI5tHdDz_Zy5lKxhoC2nfivXPaox3933Z5EDftyqeDPMDpGp6OM4jrT0BAXjqrL-OnXvFRM5Jy_b7b73B2eYWvGVaFmMT5j9tvP4i5cBkzULKXSFGhETmI1nVb0ThZi5qvNnGcgug9rO4nyH9Rbr8StArPcDQ","kid":"r","alg":"RS256"}"#;
        let oct = r#"{"kty":"oct","k":"c2VjcmV0","kid":"hmac"}"#;
        let enc = r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","use":"enc"}"#;
        let set = format!(r#"{{"keys":[{ed},{rsa},{oct},{enc}]}}"#);
        let keys = parse_set(set.as_bytes()).unwrap();
        let got: Vec<_> = keys
            .iter()
            .map(|k| (k.kid.clone(), k.algorithms.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (Some("ed".into()), vec![Algorithm::EdDSA]),
                (Some("r".into()), vec![Algorithm::RS256]),
            ]
        );
        for bad in [
            format!(r#"{{"keys":[{oct}]}}"#),
            format!(r#"{{"keys":[{enc}]}}"#),
            r#"{"keys":[]}"#.to_owned(),
            r#"{"kty":"OKP"}"#.to_owned(),
            "not json".to_owned(),
        ] {
            assert!(parse_set(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_source_is_a_url_or_a_file() {
        assert_eq!(
            Source::parse("https://sso.example/jwks"),
            Source::Url("https://sso.example/jwks".into())
        );
        assert_eq!(
            Source::parse("/etc/vanthu/jwks.json"),
            Source::File("/etc/vanthu/jwks.json".into())
        );
    }
}
