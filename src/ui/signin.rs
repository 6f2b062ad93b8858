//! Signing in to the pages and out again.
//!
//! - Through the province's SSO: OpenID Connect authorization code flow
//!   (OpenID Connect Core 1.0 §3.1) with PKCE S256 (RFC 7636), a `state`
//!   bound to the browser by a cookie and a `nonce` bound to the ID token.
//!   The pages are a client of their own at the SSO (`ui.oidc_client_id`,
//!   never the API's `auth.audience`, so an ID token is no API bearer
//!   token). The SSO's discovery document must name `auth.issuer` as its
//!   `issuer` (OpenID Connect Discovery 1.0 §4.3). The ID token is verified
//!   with the SSO's keys of the API's JWK Set, for issuer `auth.issuer` and
//!   audience this client, its `azp` (when present or when `aud` names
//!   others too) must be this client (OpenID Connect Core 1.0 §3.1.3.7),
//!   and its subject must be an official the organisation knows.
//! - In development mode only: a page listing the organisation's officials,
//!   one button each.
//!
//! A pending sign-in at the SSO (its `state`, PKCE verifier, `nonce` and
//! where to go next) lives in the browser, in an HttpOnly cookie sealed
//! with HMAC-SHA-256 under a key of this process: nothing is held for it
//! on the server, so requests that start sign-ins and never finish them
//! cost nothing.
//!
//! Must never: offer the development sign-in outside development mode,
//! accept a callback whose `state` is not the one sealed in this browser's
//! cookie (which the callback removes), start a session for an ID token
//! not issued to this client by the configured issuer, or sign in as the
//! API's audience.

use std::time::Duration;

use actix_web::cookie::SameSite;
use actix_web::{web, HttpRequest, HttpResponse};
use hmac::Mac;
use maud::html;
use serde::{Deserialize, Serialize};
use sha2::Digest;

use super::session::{self, check_form, cookie, random_token, removal, Viewer, FORM_COOKIE};
use super::{html_response, layout, see_other, Nav, UiError};
use crate::domain::org::Subject;
use crate::http::AppState;

/// The cookie binding a pending sign-in at the SSO to this browser. Lax:
/// the SSO's redirect back is a navigation from another site.
const OIDC_COOKIE: &str = "vanthu_oidc";
const CALLBACK: &str = "/ui/oidc/callback";
/// How long a sign-in at the SSO may take.
const PENDING: Duration = Duration::from_secs(600);

/// The SSO's endpoints (OpenID Connect Discovery 1.0 §3).
#[derive(Debug, Clone, Deserialize)]
struct Endpoints {
    /// Must be `auth.issuer` exactly (§4.3).
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
}

/// A sign-in begun at the SSO, sealed into `OIDC_COOKIE`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Pending {
    state: String,
    verifier: String,
    nonce: String,
    next: String,
    /// Unix seconds (service clock) after which the callback is refused.
    expires: i64,
}

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Sign-in through the SSO, when configured.
pub(super) struct SignIn {
    oidc: bool,
    /// `auth.issuer` without a trailing `/`, to build the discovery URL.
    issuer: String,
    /// Which ID tokens count: `auth.issuer` as configured, audience
    /// `client_id`, the API's longest lifetime.
    id_tokens: crate::http::auth::TokenPolicy,
    client_id: String,
    client_secret: Option<String>,
    public_url: Option<String>,
    http: reqwest::Client,
    endpoints: tokio::sync::Mutex<Option<Endpoints>>,
    /// Seals pending sign-ins (random at each start).
    seal_key: [u8; 32],
}

impl SignIn {
    /// From the settings and the public address (without a trailing `/`);
    /// the client secret is read from its file.
    pub(super) fn new(
        settings: &super::SsoSettings,
        public_url: Option<&str>,
        http: reqwest::Client,
    ) -> Result<Self, String> {
        let client_secret = match &settings.client_secret_file {
            None => None,
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| format!("ui.oidc_client_secret_file {}: {e}", path.display()))?
                    .trim()
                    .to_owned(),
            ),
        };
        let client_id = settings.client_id.clone().unwrap_or_default();
        if settings.enabled {
            if client_id.is_empty() {
                return Err(
                    "ui.oidc needs ui.oidc_client_id, the pages' own client id at the SSO".into(),
                );
            }
            if client_id == settings.api_audience {
                return Err(format!(
                    "ui.oidc_client_id is auth.audience ({client_id:?}): every ID token the SSO issues to the pages would also be an API bearer token; register the pages as a client of their own"
                ));
            }
        }
        Ok(Self {
            oidc: settings.enabled,
            issuer: settings.issuer.trim_end_matches('/').to_owned(),
            id_tokens: crate::http::auth::TokenPolicy {
                issuer: settings.issuer.clone(),
                audience: client_id.clone(),
                max_lifetime: settings.max_token_lifetime,
            },
            client_id,
            client_secret,
            public_url: public_url.map(|u| u.trim_end_matches('/').to_owned()),
            http,
            endpoints: Default::default(),
            seal_key: {
                let mut key = [0u8; 32];
                getrandom::fill(&mut key).expect("the system's random source");
                key
            },
        })
    }

    /// The SSO's endpoints, discovered once from the issuer.
    async fn endpoints(&self) -> Result<Endpoints, UiError> {
        let mut cached = self.endpoints.lock().await;
        if let Some(e) = cached.as_ref() {
            return Ok(e.clone());
        }
        let url = format!("{}/.well-known/openid-configuration", self.issuer);
        let found: Endpoints = async {
            self.http
                .get(&url)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await
        }
        .await
        .map_err(|e| {
            tracing::warn!(%url, error = %e, "the SSO's discovery document did not load");
            sso_down()
        })?;
        if found.issuer != self.id_tokens.issuer {
            tracing::error!(
                %url,
                issuer = %found.issuer,
                expected = %self.id_tokens.issuer,
                "the SSO's discovery document names another issuer than auth.issuer: no sign-in through it"
            );
            return Err(sso_misconfigured());
        }
        *cached = Some(found.clone());
        Ok(found)
    }

    fn redirect_uri(&self, req: &HttpRequest) -> String {
        match &self.public_url {
            Some(base) => format!("{base}{CALLBACK}"),
            None => {
                let info = req.connection_info();
                format!("{}://{}{CALLBACK}", info.scheme(), info.host())
            }
        }
    }

    /// Itself when sign-in through the SSO is on; else there is no such page.
    fn enabled(&self) -> Result<&Self, UiError> {
        if self.oidc {
            Ok(self)
        } else {
            Err(UiError::not_found())
        }
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.seal_key).expect("HMAC takes any key length")
    }

    /// `pending` as a cookie value: base64url(JSON) "." base64url(HMAC).
    fn seal(&self, pending: &Pending) -> String {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let body = b64.encode(serde_json::to_vec(pending).expect("a pending sign-in serialises"));
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        format!("{body}.{}", b64.encode(mac.finalize().into_bytes()))
    }

    /// The pending sign-in a cookie value seals, if this process sealed it,
    /// it names `state` and it has not expired at `now` (Unix seconds).
    fn open(&self, sealed: &str, state: &str, now: i64) -> Option<Pending> {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let (body, tag) = sealed.split_once('.')?;
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        mac.verify_slice(&b64.decode(tag).ok()?).ok()?;
        let pending: Pending = serde_json::from_slice(&b64.decode(body).ok()?).ok()?;
        (session::same_token(&pending.state, state) && pending.expires > now).then_some(pending)
    }
}

fn sso_misconfigured() -> UiError {
    UiError::page(
        503,
        "Hệ thống đăng nhập chưa được cấu hình đúng",
        "Hệ thống đăng nhập một lần (SSO) không khớp với cấu hình của hệ thống này. Hãy báo người quản trị.",
    )
}

fn sso_down() -> UiError {
    UiError::page(
        503,
        "Không kết nối được hệ thống đăng nhập",
        "Hệ thống đăng nhập một lần (SSO) của tỉnh không trả lời. Hãy thử lại sau ít phút.",
    )
}

/// PKCE's S256 challenge of a verifier (RFC 7636 §4.2).
pub(super) fn challenge(verifier: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}

/// `next` if it is an address of the pages, else the home page: a sign-in
/// never sends the browser elsewhere.
pub(super) fn local_next(next: &str) -> &str {
    // Visible ASCII only (a request's own address is percent-encoded): it
    // goes into a Location header.
    let ok = next.starts_with("/ui/")
        && next.bytes().all(|b| b.is_ascii_graphic())
        && !next.contains('\\')
        && !next.starts_with("/ui/sign-in")
        && !next.starts_with("/ui/live");
    if ok {
        next
    } else {
        "/ui/"
    }
}

/// Where a sign-in goes on to: the `next` asked for, if it is a page.
fn next_of(next: &Option<String>) -> &str {
    local_next(next.as_deref().unwrap_or("/ui/"))
}

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/sign-in", web::get().to(page))
        .route("/sign-in/dev", web::post().to(dev_sign_in))
        .route("/sign-in/oidc", web::get().to(oidc_start))
        .route("/oidc/callback", web::get().to(oidc_callback))
        .route("/sign-out", web::post().to(sign_out));
}

/// An official on the development sign-in page: id, name, title.
type Person = (String, String, String);

#[derive(Debug, Deserialize)]
struct Next {
    next: Option<String>,
}

/// `GET /ui/sign-in`: the ways to sign in.
async fn page(
    state: web::Data<AppState>,
    pages: web::Data<super::Pages>,
    req: HttpRequest,
    q: web::Query<Next>,
) -> Result<HttpResponse, UiError> {
    let next = next_of(&q.next).to_owned();
    if let Ok(_viewer) = <Viewer as actix_web::FromRequest>::extract(&req).await {
        return Ok(see_other(&next));
    }
    let ui = &pages;
    let now = state.docs.clock.now();
    // Officials by agency, for the development sign-in.
    let officials: Vec<(String, Vec<Person>)> = if ui.dev {
        state.org.read(|org| {
            org.agencies
                .values()
                .map(|agency| {
                    let mut people: Vec<Person> = org
                        .appointments
                        .iter()
                        .filter(|a| a.agency == agency.code && a.span.contains(now))
                        .map(|a| {
                            (
                                a.official.clone(),
                                a.name.clone(),
                                a.title.clone().unwrap_or_default(),
                            )
                        })
                        .collect();
                    people.dedup_by(|a, b| a.0 == b.0);
                    (agency.name.clone(), people)
                })
                .collect()
        })
    } else {
        Vec::new()
    };
    // The form's token: the one this browser holds already (another tab's
    // sign-in page stays valid), else a new one.
    let form_token = req
        .cookie(FORM_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|t| {
            t.len() == 43
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .unwrap_or_else(|| random_token(32));
    let body = html! {
        h1 { "Đăng nhập" }
        @if ui.signin.oidc {
            p {
                a class="button primary" href={ "/ui/sign-in/oidc?next=" (super::encode(&next)) } {
                    "Đăng nhập bằng tài khoản một cửa của tỉnh (SSO)"
                }
            }
        }
        @if ui.dev {
            section aria-labelledby="dev-title" class="dev" {
                h2 id="dev-title" { "Đăng nhập thử (chế độ phát triển)" }
                p { "Chỉ có ở chế độ phát triển: chọn một cán bộ của tổ chức mẫu." }
                @for (agency, people) in &officials {
                    h3 { (agency) }
                    ul class="people" {
                        @for (id, name, title) in people {
                            li {
                                form method="post" action="/ui/sign-in/dev" {
                                    input type="hidden" name="csrf" value=(form_token);
                                    input type="hidden" name="next" value=(next);
                                    input type="hidden" name="official" value=(id);
                                    button type="submit" data-official=(id) {
                                        (name) " – " (title) " "
                                        small { "(" (id) ")" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if !ui.signin.oidc && !ui.dev {
            p { "Chưa cấu hình đăng nhập cho các trang này: người quản trị cần bật "
                code { "ui.oidc" } " với hệ thống đăng nhập một lần của tỉnh." }
        }
    };
    let mut resp = html_response(layout(None, "Đăng nhập", Nav::None, body));
    resp.add_cookie(&cookie(
        FORM_COOKIE,
        form_token,
        "/ui/sign-in",
        SameSite::Strict,
        Some(PENDING),
        ui.secure,
    ))
    .map_err(|_| UiError::page(500, "Lỗi", "cookie"))?;
    Ok(resp)
}

#[derive(Debug, Deserialize)]
struct DevForm {
    csrf: String,
    official: String,
    next: Option<String>,
}

/// `POST /ui/sign-in/dev`: signs in as a listed official (development only).
async fn dev_sign_in(
    state: web::Data<AppState>,
    pages: web::Data<super::Pages>,
    req: HttpRequest,
    form: web::Form<DevForm>,
) -> Result<HttpResponse, UiError> {
    if !pages.dev {
        return Err(UiError::not_found());
    }
    let expected = req
        .cookie(FORM_COOKIE)
        .map(|c| c.value().to_owned())
        .unwrap_or_default();
    check_form(&req, &expected, &form.csrf)?;
    if expected.is_empty() {
        return Err(UiError::page(
            403,
            "Biểu mẫu không hợp lệ",
            "Hãy mở lại trang đăng nhập.",
        ));
    }
    start_session(&state, &pages, &form.official, next_of(&form.next), false)
}

/// Starts a session for `official` if the organisation knows them now; the
/// browser goes on to `next` (through a page of our own after the SSO's
/// redirect, so that the SameSite=Strict cookie is sent: a redirect chain
/// started by another site would not send it).
fn start_session(
    state: &AppState,
    pages: &super::Pages,
    official: &str,
    next: &str,
    from_sso: bool,
) -> Result<HttpResponse, UiError> {
    let now = state.docs.clock.now();
    let known = state
        .org
        .read(|org| org.authenticate(official, false, &[], now));
    if !matches!(known, Some(Subject::Official)) {
        return Err(UiError::page(
            403,
            "Không đăng nhập được",
            "Tài khoản này không phải cán bộ của tổ chức trong hệ thống.",
        ));
    }
    let id = pages.sessions.start(official);
    tracing::info!(official, "signed in to the pages");
    let mut resp = if from_sso {
        let body = html! {
            (maud::DOCTYPE)
            html lang="vi" {
                head {
                    meta charset="utf-8";
                    meta http-equiv="refresh" content={ "0;url=" (next) };
                    title { "Đang đăng nhập…" }
                }
                body { p { "Đã đăng nhập. " a href=(next) { "Tiếp tục" } } }
            }
        };
        html_response(body)
    } else {
        see_other(next)
    };
    let secure = pages.secure;
    for c in [
        cookie(
            session::COOKIE,
            id,
            "/ui",
            SameSite::Strict,
            Some(pages.sessions.ttl()),
            secure,
        ),
        removal(FORM_COOKIE, "/ui/sign-in", secure),
        removal(OIDC_COOKIE, "/ui/oidc", secure),
    ] {
        resp.add_cookie(&c)
            .map_err(|_| UiError::page(500, "Lỗi", "cookie"))?;
    }
    Ok(resp)
}

/// `GET /ui/sign-in/oidc`: to the SSO's authorization endpoint.
async fn oidc_start(
    state: web::Data<AppState>,
    pages: web::Data<super::Pages>,
    req: HttpRequest,
    q: web::Query<Next>,
) -> Result<HttpResponse, UiError> {
    let sso = pages.signin.enabled()?;
    let endpoints = sso.endpoints().await?;
    let pending = Pending {
        state: random_token(32),
        verifier: random_token(32),
        nonce: random_token(16),
        next: next_of(&q.next).to_owned(),
        expires: state.docs.clock.now().timestamp() + PENDING.as_secs() as i64,
    };
    let redirect = sso.redirect_uri(&req);
    let mut url = reqwest::Url::parse(&endpoints.authorization_endpoint).map_err(|_| sso_down())?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &sso.client_id)
        .append_pair("redirect_uri", &redirect)
        .append_pair("scope", "openid")
        .append_pair("state", &pending.state)
        .append_pair("nonce", &pending.nonce)
        .append_pair("code_challenge", &challenge(&pending.verifier))
        .append_pair("code_challenge_method", "S256");
    let mut resp = see_other(url.as_str());
    resp.add_cookie(&cookie(
        OIDC_COOKIE,
        sso.seal(&pending),
        "/ui/oidc",
        SameSite::Lax,
        Some(PENDING),
        pages.secure,
    ))
    .map_err(|_| UiError::page(500, "Lỗi", "cookie"))?;
    Ok(resp)
}

#[derive(Debug, Deserialize)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

fn refused(detail: &str) -> UiError {
    UiError::page(401, "Không đăng nhập được", detail)
}

/// `GET /ui/oidc/callback`: the SSO sends the browser back with a code.
async fn oidc_callback(
    state: web::Data<AppState>,
    pages: web::Data<super::Pages>,
    req: HttpRequest,
    q: web::Query<Callback>,
) -> Result<HttpResponse, UiError> {
    let sso = pages.signin.enabled()?;
    let now = state.docs.clock.now().timestamp();
    let pending = match (&q.state, req.cookie(OIDC_COOKIE)) {
        (Some(s), Some(c)) => sso.open(c.value(), s, now),
        _ => None,
    }
    .ok_or_else(|| {
        refused("Phiên đăng nhập không khớp hoặc đã hết hạn. Hãy đăng nhập lại từ đầu.")
    })?;
    if let Some(error) = &q.error {
        tracing::info!(error, description = ?q.error_description, "the SSO refused a sign-in");
        return Err(refused("Hệ thống đăng nhập một lần đã từ chối đăng nhập."));
    }
    let code = q
        .code
        .as_deref()
        .ok_or_else(|| refused("Hệ thống đăng nhập không gửi mã đăng nhập."))?;
    let endpoints = sso.endpoints().await?;
    let redirect = sso.redirect_uri(&req);
    let mut exchange = sso.http.post(&endpoints.token_endpoint).form(&[
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect.as_str()),
        ("client_id", sso.client_id.as_str()),
        ("code_verifier", pending.verifier.as_str()),
    ]);
    if let Some(secret) = &sso.client_secret {
        exchange = exchange.basic_auth(&sso.client_id, Some(secret));
    }
    #[derive(Deserialize)]
    struct Tokens {
        id_token: String,
    }
    let tokens: Tokens = async { exchange.send().await?.error_for_status()?.json().await }
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "the SSO's token endpoint refused the code");
            refused("Không đổi được mã đăng nhập lấy thẻ đăng nhập (ID token).")
        })?;
    // The SSO's keys only (the service's own token key signs no ID token),
    // for this client's audience.
    let verifier =
        crate::http::auth::TokenVerifier::new(None, state.tokens.jwks().cloned(), &sso.id_tokens)
            .map_err(|e| {
            tracing::warn!(error = %e, "no verifier for ID tokens");
            sso_down()
        })?;
    let verified = verifier
        .verify_reloading(&tokens.id_token)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "an ID token from the SSO did not verify");
            refused("Thẻ đăng nhập (ID token) không hợp lệ.")
        })?;
    let claims = claims_of(&tokens.id_token).unwrap_or_default();
    if verified.client
        || !issued_to(&claims, &sso.client_id)
        || claims.get("nonce").and_then(|n| n.as_str()) != Some(pending.nonce.as_str())
    {
        return Err(refused(
            "Thẻ đăng nhập (ID token) không dành cho lần đăng nhập này.",
        ));
    }
    start_session(&state, &pages, &verified.sub, &pending.next, true)
}

/// The claims of a token whose signature was verified.
fn claims_of(token: &str) -> Option<serde_json::Value> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Whether ID token `claims` were issued to `client_id` (OpenID Connect
/// Core 1.0 §3.1.3.7, items 3 to 5): `aud` names it, and `azp`, required
/// when `aud` names others too, is it.
fn issued_to(claims: &serde_json::Value, client_id: &str) -> bool {
    let aud: Vec<&str> = match &claims["aud"] {
        serde_json::Value::String(a) => vec![a.as_str()],
        serde_json::Value::Array(a) => a.iter().filter_map(|v| v.as_str()).collect(),
        _ => Vec::new(),
    };
    let azp = claims.get("azp").and_then(|v| v.as_str());
    aud.contains(&client_id)
        && match azp {
            Some(azp) => azp == client_id,
            None => aud.len() == 1,
        }
}

#[derive(Debug, Deserialize)]
struct Csrf {
    csrf: String,
}

/// `POST /ui/sign-out`: ends the session.
async fn sign_out(
    pages: web::Data<super::Pages>,
    req: HttpRequest,
    viewer: Viewer,
    form: web::Form<Csrf>,
) -> Result<HttpResponse, UiError> {
    check_form(&req, &viewer.csrf, &form.csrf)?;
    pages.sessions.end(&viewer.session);
    let mut resp = see_other("/ui/sign-in");
    resp.add_cookie(&removal(session::COOKIE, "/ui", pages.secure))
        .map_err(|_| UiError::page(500, "Lỗi", "cookie"))?;
    Ok(resp)
}

#[cfg(test)]
#[path = "signin_tests.rs"]
mod tests;
