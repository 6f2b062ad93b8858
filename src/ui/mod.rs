//! The pages for the people who chase replies: clerks (văn thư), leaders
//! and officials, under `/ui/`. Server-rendered HTML in Vietnamese (maud
//! templates), with a little plain JavaScript that only enhances: every
//! page works without it, and with it the deadline and inbox pages follow
//! the projections live (`live.rs`, server-sent events).
//!
//! - `session.rs`: the session cookie, CSRF tokens, the signed-in `Viewer`;
//! - `signin.rs`: sign-in through the province's SSO (OpenID Connect,
//!   authorization code with PKCE), the development sign-in, sign-out;
//! - `pages/`: home, *Hạn trả lời*, *Thống kê*, *Hộp văn bản*, *Sổ văn bản*,
//!   one file each; `forms.rs`: what their forms share (agency choice,
//!   dates, Vietnamese labels);
//! - `document.rs`: one document, its timeline, signatures, files, bundle;
//! - `chart.rs`: the on-time bar chart as SVG; `live.rs`: live refresh;
//! - `assets/`: the stylesheet and the script, served from the binary.
//!
//! Every page reads the same projections through the same functions as the
//! API (`api::queries`, `api::documents`), so the same access rules
//! (`domain::access`) decide what a page shows.
//!
//! Must never: decide who may see what itself, accept a bearer token,
//! answer a page request with JSON problems (pages get pages), or read the
//! service's configuration (`crate::config`): it is given its `Settings`.

mod chart;
mod document;
mod forms;
mod live;
mod pages;
pub mod session;
mod signin;

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse, ResponseError};
use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::http::problem::Problem;
use crate::http::AppState;
use session::Viewer;

/// What the pages hold besides the API's state.
pub struct Pages {
    pub sessions: session::Sessions,
    signin: signin::SignIn,
    /// Cookies are `Secure` (the service serves TLS).
    pub secure: bool,
    /// The development sign-in page is offered (development mode only).
    pub dev: bool,
    /// The origin browsers use (`ui.public_url`'s), which form posts must
    /// come from; `None`: the request's own.
    pub origin: Option<String>,
}

/// What the pages are set up with. The caller builds it from the service's
/// configuration (`Config::ui_settings`): the pages never read the
/// configuration themselves.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Development mode: the development sign-in is offered.
    pub dev: bool,
    /// The service serves TLS itself (cookies are `Secure`).
    pub tls: bool,
    /// Where browsers reach the service (`ui.public_url`), if set.
    pub public_url: Option<String>,
    /// Hours a page session lasts (`ui.session_hours`).
    pub session_hours: u32,
    /// Sign-in through the province's SSO.
    pub sso: SsoSettings,
}

/// How the pages sign in through the province's SSO.
#[derive(Debug, Clone, PartialEq)]
pub struct SsoSettings {
    /// Sign-in through the SSO is offered (`ui.oidc`).
    pub enabled: bool,
    /// The SSO's issuer (`auth.issuer`).
    pub issuer: String,
    /// The pages' own client id there (`ui.oidc_client_id`).
    pub client_id: Option<String>,
    /// A file holding that client's secret (`ui.oidc_client_secret_file`).
    pub client_secret_file: Option<std::path::PathBuf>,
    /// The API's audience (`auth.audience`), which the client id must not be.
    pub api_audience: String,
    /// Longest ID token lifetime accepted (`auth.max_token_hours`).
    pub max_token_lifetime: chrono::Duration,
}

/// The origin (`scheme://host[:port]`) of a URL.
fn origin_of(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            format!("{scheme}://{}", rest.split('/').next().unwrap_or_default())
        }
        None => url.to_owned(),
    }
}

impl Pages {
    /// From the settings (an unreadable client secret file is an error).
    pub fn new(settings: &Settings, http: reqwest::Client) -> Result<Self, String> {
        let public = settings
            .public_url
            .as_deref()
            .map(|u| u.trim_end_matches('/'));
        Ok(Self {
            sessions: session::Sessions::new(Duration::from_secs(
                u64::from(settings.session_hours.max(1)) * 3600,
            )),
            signin: signin::SignIn::new(&settings.sso, public, http)?,
            // Behind a TLS-terminating proxy the public address says so.
            secure: settings.tls || public.is_some_and(|u| u.starts_with("https://")),
            dev: settings.dev,
            origin: public.map(origin_of),
        })
    }
}

/// Registers the pages.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/ui")
            .wrap(
                actix_web::middleware::DefaultHeaders::new()
                    .add((
                        "Content-Security-Policy",
                        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
                         connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
                    ))
                    .add(("X-Content-Type-Options", "nosniff"))
                    .add(("Referrer-Policy", "same-origin"))
                    .add(("X-Frame-Options", "DENY")),
            )
            // Bad paths, queries and forms get a page, not the API's JSON.
            .app_data(web::QueryConfig::default().error_handler(|err, _| bad_input(err)))
            .app_data(web::PathConfig::default().error_handler(|err, _| bad_input(err)))
            .app_data(web::FormConfig::default().limit(64 << 10).error_handler(|err, _| bad_input(err)))
            .route("", web::get().to(to_home))
            .route("/static/app.css", web::get().to(css))
            .route("/static/app.js", web::get().to(js))
            .configure(signin::routes)
            .configure(pages::routes)
            .configure(document::routes)
            .configure(live::routes)
            .default_service(web::to(not_found)),
    );
}

fn bad_input(err: impl std::fmt::Display) -> actix_web::Error {
    UiError::page(400, "Yêu cầu không hợp lệ", &err.to_string()).into()
}

async fn to_home() -> HttpResponse {
    see_other("/ui/")
}

async fn css() -> HttpResponse {
    asset("text/css; charset=utf-8", include_str!("assets/app.css"))
}

async fn js() -> HttpResponse {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("assets/app.js"),
    )
}

fn asset(content_type: &str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("Cache-Control", "public, max-age=300"))
        .body(body)
}

async fn not_found() -> HttpResponse {
    UiError::not_found().error_response()
}

/// A 303 to `to`.
pub fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", to))
        .finish()
}

/// Why a page is not shown: sign-in is needed, or a page explaining why.
#[derive(Debug)]
pub enum UiError {
    /// Not signed in: to the sign-in page, then back to this address.
    SignIn(String),
    Page {
        status: u16,
        title: String,
        detail: String,
    },
}

impl UiError {
    pub fn page(status: u16, title: &str, detail: &str) -> Self {
        UiError::Page {
            status,
            title: title.to_owned(),
            detail: detail.to_owned(),
        }
    }

    /// No page at this address (404).
    pub fn not_found() -> Self {
        Self::page(
            404,
            "Không tìm thấy trang",
            "Địa chỉ này không có trang nào.",
        )
    }
}

impl std::fmt::Display for UiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UiError::SignIn(_) => f.write_str("sign-in needed"),
            UiError::Page { title, detail, .. } => write!(f, "{title}: {detail}"),
        }
    }
}

impl From<Problem> for UiError {
    fn from(p: Problem) -> Self {
        let title = match p.status {
            400 | 422 => "Yêu cầu không hợp lệ",
            401 => "Cần đăng nhập",
            403 => "Không có quyền",
            404 => "Không tìm thấy",
            409 => "Chưa thực hiện được",
            503 => "Dữ liệu đang được cập nhật",
            _ => "Có lỗi xảy ra",
        };
        UiError::Page {
            status: p.status,
            title: title.to_owned(),
            detail: p.detail.unwrap_or(p.title),
        }
    }
}

impl ResponseError for UiError {
    fn status_code(&self) -> StatusCode {
        match self {
            UiError::SignIn(_) => StatusCode::SEE_OTHER,
            UiError::Page { status, .. } => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            UiError::SignIn(next) => see_other(&format!(
                "/ui/sign-in?next={}",
                encode(signin::local_next(next))
            )),
            UiError::Page { title, detail, .. } => {
                let body = layout(
                    None,
                    title,
                    Nav::None,
                    html! {
                        h1 { (title) }
                        p { (detail) }
                        p { a href="/ui/" { "Về trang chủ" } }
                    },
                );
                HttpResponse::build(self.status_code())
                    .content_type("text/html; charset=utf-8")
                    .insert_header(("Cache-Control", "no-store"))
                    .body(body.into_string())
            }
        }
    }
}

/// Percent-encodes a query value.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Which item of the navigation a page is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    None,
    Home,
    Deadlines,
    Stats,
    Inbox,
    Registers,
}

/// Who is signed in, as the header shows them.
pub struct Who {
    pub name: String,
    pub role: String,
    pub csrf: String,
}

impl Who {
    pub fn of(state: &AppState, viewer: &Viewer) -> Who {
        let now = state.docs.clock.now();
        let (name, role) = state.org.read(|org| {
            let positions = org.positions_at(&viewer.caller.id, now);
            let name = positions
                .first()
                .map_or_else(|| viewer.caller.id.clone(), |a| a.name.clone());
            let role = positions
                .iter()
                .map(|a| {
                    format!(
                        "{} – {}",
                        a.title.clone().unwrap_or_default(),
                        org.agencies
                            .get(&a.agency)
                            .map_or(a.agency.as_str(), |g| g.name.as_str())
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            (name, role)
        });
        Who {
            name,
            role,
            csrf: viewer.csrf.clone(),
        }
    }
}

/// A whole page.
pub fn layout(who: Option<&Who>, title: &str, nav: Nav, main: Markup) -> Markup {
    let item = |href: &str, label: &str, this: Nav| {
        html! {
            @if nav == this {
                a href=(href) aria-current="page" { (label) }
            } @else {
                a href=(href) { (label) }
            }
        }
    };
    html! {
        (DOCTYPE)
        html lang="vi" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Văn bản điều hành" }
                link rel="stylesheet" href="/ui/static/app.css";
                script src="/ui/static/app.js" defer {}
            }
            body {
                a class="skip" href="#main" { "Bỏ qua đến nội dung chính" }
                header class="top" {
                    a class="brand" href="/ui/" { "Văn bản điều hành" }
                    @if let Some(who) = who {
                        nav aria-label="Chức năng chính" {
                            (item("/ui/deadlines", "Hạn trả lời", Nav::Deadlines))
                            (item("/ui/stats", "Thống kê", Nav::Stats))
                            (item("/ui/inbox", "Hộp văn bản", Nav::Inbox))
                            (item("/ui/registers", "Sổ văn bản", Nav::Registers))
                        }
                        div class="who" {
                            span { strong { (who.name) } br; small { (who.role) } }
                            form method="post" action="/ui/sign-out" {
                                input type="hidden" name="csrf" value=(who.csrf);
                                button type="submit" { "Đăng xuất" }
                            }
                        }
                    }
                }
                main id="main" tabindex="-1" { (main) }
            }
        }
    }
}

/// A page response (never cached: it shows what the official may see now).
pub fn html_response(markup: Markup) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(markup.into_string())
}

/// Việt Nam's time (Asia/Ho_Chi_Minh: UTC+7, no daylight saving).
fn vn() -> FixedOffset {
    FixedOffset::east_opt(7 * 3600).expect("a valid offset")
}

/// `dd/mm/yyyy`.
pub fn date(d: NaiveDate) -> String {
    d.format("%d/%m/%Y").to_string()
}

/// `dd/mm/yyyy HH:MM`, in Việt Nam's time.
pub fn time(t: DateTime<Utc>) -> String {
    t.with_timezone(&vn()).format("%d/%m/%Y %H:%M").to_string()
}

/// A rate as a Vietnamese percentage: `66,7 %`.
pub fn percent(rate: f64) -> String {
    format!("{:.1} %", rate * 100.0).replace('.', ",")
}

/// Raw markup the templates build themselves (the chart's SVG).
pub fn raw(s: String) -> PreEscaped<String> {
    PreEscaped(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_vietnamese() {
        let t = DateTime::parse_from_rfc3339("2026-12-31T17:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        // Already the next day in Hà Nội.
        assert_eq!(time(t), "01/01/2027 00:30");
        assert_eq!(
            date(NaiveDate::from_ymd_opt(2027, 3, 5).unwrap()),
            "05/03/2027"
        );
        assert_eq!(percent(2.0 / 3.0), "66,7 %");
        assert_eq!(encode("/ui/x?a=b c"), "/ui/x%3Fa%3Db%20c");
    }
}
