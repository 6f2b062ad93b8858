//! Page sessions: who is signed in to the pages, by an opaque cookie.
//!
//! A session is a random 256-bit id in an HttpOnly, SameSite=Strict cookie
//! (Secure under TLS), kept in this node's memory with the official it
//! belongs to and its CSRF token; every form carries that token and every
//! POST is refused without it (and from another origin). Each request asks
//! the organisation again (`Org::authenticate`), so an official removed
//! since sign-in is signed out at once.
//!
//! Must never: take a bearer token or any other credential from a page
//! request, put anything but the opaque id in a cookie, or accept a form
//! without its CSRF token.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::cookie::{time::Duration as CookieAge, Cookie, SameSite};
use actix_web::{web, FromRequest, HttpRequest};

use super::UiError;
use crate::domain::org::Subject;
use crate::http::auth::Caller;
use crate::http::AppState;

/// The session cookie.
pub const COOKIE: &str = "vanthu_session";
/// The cookie carrying the token of the sign-in form (before a session).
pub const FORM_COOKIE: &str = "vanthu_form";
/// Most sessions held; past it expired ones go, then the oldest.
const MAX_SESSIONS: usize = 20_000;
/// Most sessions one official holds (a browser each: office, home, phone,
/// a few tabs signed in afresh); past it that official's oldest goes. So
/// one official who scripts sign-ins only signs themself out, never
/// everyone else through `MAX_SESSIONS`.
pub const MAX_SESSIONS_PER_OFFICIAL: usize = 10;

/// `bytes` random bytes from the system, base64url without padding.
pub fn random_token(bytes: usize) -> String {
    use base64::Engine;
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the system's random source");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// Whether two tokens are equal, in time independent of where they differ.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[derive(Debug, Clone)]
struct Session {
    official: String,
    csrf: String,
    expires: Instant,
}

/// The sessions of this node.
pub struct Sessions {
    ttl: Duration,
    /// Most sessions held (`MAX_SESSIONS`).
    max: usize,
    /// Most sessions of one official (`MAX_SESSIONS_PER_OFFICIAL`).
    per_official: usize,
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    pub fn new(ttl: Duration) -> Self {
        Self::with_limits(ttl, MAX_SESSIONS, MAX_SESSIONS_PER_OFFICIAL)
    }

    /// With other caps than the defaults (tests).
    fn with_limits(ttl: Duration, max: usize, per_official: usize) -> Self {
        Self {
            ttl,
            max: max.max(1),
            per_official: per_official.max(1),
            map: Mutex::default(),
        }
    }

    /// How long a session lasts.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A new session for `official`: its id. Past `per_official` sessions
    /// of theirs, their oldest goes; past `max` in all, expired sessions
    /// go, then the oldest.
    pub fn start(&self, official: &str) -> String {
        let id = random_token(32);
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let mut theirs: Vec<(Instant, String)> = map
            .iter()
            .filter(|(_, s)| s.official == official)
            .map(|(k, s)| (s.expires, k.clone()))
            .collect();
        if theirs.len() >= self.per_official {
            theirs.sort_unstable();
            for (_, k) in &theirs[..=theirs.len() - self.per_official] {
                map.remove(k);
            }
        }
        if map.len() >= self.max {
            map.retain(|_, s| s.expires > now);
            if map.len() >= self.max {
                if let Some(oldest) = map
                    .iter()
                    .min_by_key(|(_, s)| s.expires)
                    .map(|(k, _)| k.clone())
                {
                    map.remove(&oldest);
                }
            }
        }
        map.insert(
            id.clone(),
            Session {
                official: official.to_owned(),
                csrf: random_token(32),
                expires: now + self.ttl,
            },
        );
        id
    }

    /// The official and CSRF token of a live session.
    fn get(&self, id: &str) -> Option<(String, String)> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(id) {
            Some(s) if s.expires > Instant::now() => Some((s.official.clone(), s.csrf.clone())),
            Some(_) => {
                map.remove(id);
                None
            }
            None => None,
        }
    }

    /// Ends a session.
    pub fn end(&self, id: &str) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
}

/// A cookie of the pages: HttpOnly, SameSite as given, Secure under TLS.
pub fn cookie(
    name: &'static str,
    value: String,
    path: &'static str,
    same_site: SameSite,
    age: Option<Duration>,
    secure: bool,
) -> Cookie<'static> {
    let mut c = Cookie::build(name, value)
        .path(path)
        .http_only(true)
        .secure(secure)
        .same_site(same_site)
        .finish();
    if let Some(age) = age {
        c.set_max_age(CookieAge::seconds(age.as_secs() as i64));
    }
    c
}

/// A cookie that removes `name` at `path`.
pub fn removal(name: &'static str, path: &'static str, secure: bool) -> Cookie<'static> {
    let mut c = cookie(
        name,
        String::new(),
        path,
        SameSite::Strict,
        Some(Duration::ZERO),
        secure,
    );
    c.make_removal();
    c
}

/// The signed-in official of a page request.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub caller: Caller,
    /// The session's CSRF token, for the page's forms.
    pub csrf: String,
    pub session: String,
}

impl FromRequest for Viewer {
    type Error = UiError;
    type Future = std::future::Ready<Result<Self, UiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(viewer(req))
    }
}

fn viewer(req: &HttpRequest) -> Result<Viewer, UiError> {
    let sign_in = || UiError::SignIn(req.uri().to_string());
    let state = req.app_data::<web::Data<AppState>>().ok_or_else(sign_in)?;
    let pages = req
        .app_data::<web::Data<super::Pages>>()
        .ok_or_else(sign_in)?;
    let id = req.cookie(COOKIE).ok_or_else(sign_in)?.value().to_owned();
    let (official, csrf) = pages.sessions.get(&id).ok_or_else(sign_in)?;
    let now = state.docs.clock.now();
    // Asked again at every request: a removed official is signed out.
    match state
        .org
        .read(|org| org.authenticate(&official, false, &[], now))
    {
        Some(subject @ Subject::Official) => Ok(Viewer {
            caller: Caller {
                id: official,
                subject,
            },
            csrf,
            session: id,
        }),
        _ => {
            pages.sessions.end(&id);
            Err(sign_in())
        }
    }
}

/// Refuses a form post that is not this session's: a CSRF token other
/// than `expected`, or an `Origin` other than the request's own.
pub fn check_form(req: &HttpRequest, expected: &str, sent: &str) -> Result<(), UiError> {
    same_origin(req)?;
    if sent.is_empty() || !same_token(expected, sent) {
        return Err(UiError::page(
            403,
            "Biểu mẫu không hợp lệ",
            "Biểu mẫu đã hết hạn hoặc không phải của phiên này (CSRF). Hãy tải lại trang rồi thử lại.",
        ));
    }
    Ok(())
}

/// Refuses a request whose `Origin` names another site than the one it
/// was sent to (browsers send it with every POST).
fn same_origin(req: &HttpRequest) -> Result<(), UiError> {
    let Some(origin) = req.headers().get("Origin") else {
        return Ok(());
    };
    let configured = req
        .app_data::<web::Data<super::Pages>>()
        .and_then(|p| p.origin.clone());
    let ours = configured.unwrap_or_else(|| {
        let info = req.connection_info();
        format!("{}://{}", info.scheme(), info.host())
    });
    if origin.to_str().ok() == Some(ours.as_str()) {
        Ok(())
    } else {
        Err(UiError::page(
            403,
            "Yêu cầu từ trang khác",
            "Biểu mẫu này chỉ được gửi từ chính trang của hệ thống.",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_end_and_expire() {
        let s = Sessions::new(Duration::from_secs(60));
        let a = s.start("ubnd-van-thu");
        let b = s.start("ubnd-van-thu");
        assert_ne!(a, b);
        assert_eq!(a.len(), 43, "256 bits, base64url");
        let (who, csrf) = s.get(&a).unwrap();
        assert_eq!(who, "ubnd-van-thu");
        assert_ne!(csrf, s.get(&b).unwrap().1, "each session its own token");
        s.end(&a);
        assert!(s.get(&a).is_none());
        assert!(s.get("not-a-session").is_none());
        let short = Sessions::new(Duration::ZERO);
        let c = short.start("x");
        assert!(short.get(&c).is_none(), "expired");
    }

    /// D9: one official signing in again and again signs out only their
    /// own oldest sessions, never anyone else's.
    #[test]
    fn one_official_cannot_push_others_out() {
        let s = Sessions::with_limits(Duration::from_secs(60), 8, 3);
        let clerk = s.start("ubnd-van-thu");
        let mut script = Vec::new();
        for _ in 0..50 {
            script.push(s.start("attacker"));
            // Distinct expiry instants, so "oldest" is well defined.
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(s.get(&clerk).is_some(), "the clerk is still signed in");
        let live: Vec<_> = script.iter().filter(|id| s.get(id).is_some()).collect();
        assert_eq!(live.len(), 3, "the cap per official");
        assert_eq!(
            live,
            script[47..].iter().collect::<Vec<_>>(),
            "the newest kept"
        );
    }

    /// The global cap still holds across many officials: the oldest goes.
    #[test]
    fn the_global_cap_evicts_the_oldest() {
        let s = Sessions::with_limits(Duration::from_secs(60), 4, 3);
        let ids: Vec<String> = (0..6)
            .map(|i| {
                let id = s.start(&format!("official-{i}"));
                std::thread::sleep(Duration::from_millis(1));
                id
            })
            .collect();
        assert_eq!(s.map.lock().unwrap().len(), 4);
        assert!(s.get(&ids[0]).is_none() && s.get(&ids[1]).is_none());
        assert!(ids[2..].iter().all(|id| s.get(id).is_some()));
    }

    #[test]
    fn tokens_compare_whole() {
        for (a, b, same) in [
            ("abc", "abc", true),
            ("abc", "abd", false),
            ("abc", "ab", false),
            ("", "", true),
        ] {
            assert_eq!(same_token(a, b), same, "{a} {b}");
        }
    }
}
