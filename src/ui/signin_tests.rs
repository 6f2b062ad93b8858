//! Tests of the sign-in (`signin.rs`): sealed pending sign-ins, PKCE,
//! where a sign-in returns to, the pages' own client id and the
//! discovery document's issuer.

use super::*;

/// Sign-in through the SSO off, with the service's default issuer and
/// audience.
fn settings() -> crate::ui::SsoSettings {
    crate::ui::SsoSettings {
        enabled: false,
        issuer: crate::http::auth::DEV_ISSUER.into(),
        client_id: None,
        client_secret_file: None,
        api_audience: crate::http::auth::DEFAULT_AUDIENCE.into(),
        max_token_lifetime: chrono::Duration::hours(12),
    }
}

#[test]
fn a_pending_sign_in_opens_only_sealed_by_this_process_for_its_state_in_time() {
    let config = settings();
    let http = || crate::outbound::client(Duration::from_secs(1), None).unwrap();
    let sso = SignIn::new(&config, None, http()).unwrap();
    let other = SignIn::new(&config, None, http()).unwrap();
    let pending = Pending {
        state: "s1".into(),
        verifier: "v".into(),
        nonce: "n".into(),
        next: "/ui/".into(),
        expires: 1000,
    };
    let sealed = sso.seal(&pending);
    assert_eq!(sso.open(&sealed, "s1", 999), Some(pending.clone()));
    assert_eq!(sso.open(&sealed, "s2", 999), None, "another state");
    assert_eq!(sso.open(&sealed, "s1", 1000), None, "expired");
    assert_eq!(other.open(&sealed, "s1", 999), None, "another key");
    let forged = sealed.replacen("eyJ", "eyI", 1);
    assert_eq!(sso.open(&forged, "s1", 999), None, "changed body");
    assert_eq!(sso.open("garbage", "s1", 999), None);
}

/// D10: an ID token counts only when issued to the pages' own client.
#[test]
fn an_id_token_must_be_issued_to_this_client() {
    use serde_json::json;
    for (claims, ok) in [
        (json!({"aud": "vanthu-ui"}), true),
        (json!({"aud": ["vanthu-ui"]}), true),
        (json!({"aud": "vanthu-ui", "azp": "vanthu-ui"}), true),
        (
            json!({"aud": ["vanthu-ui", "vanthu"], "azp": "vanthu-ui"}),
            true,
        ),
        (json!({"aud": "vanthu"}), false),
        (json!({"aud": ["vanthu-ui", "vanthu"]}), false),
        (
            json!({"aud": ["vanthu-ui", "vanthu"], "azp": "vanthu"}),
            false,
        ),
        (json!({"aud": "vanthu-ui", "azp": "other-app"}), false),
        (json!({}), false),
    ] {
        assert_eq!(issued_to(&claims, "vanthu-ui"), ok, "{claims}");
    }
}

/// D10: the pages sign in as a client of their own, never as the API.
#[test]
fn the_pages_need_a_client_id_of_their_own() {
    let http = || crate::outbound::client(Duration::from_secs(1), None).unwrap();
    let mut config = settings();
    config.enabled = true;
    let err = SignIn::new(&config, None, http()).err().unwrap();
    assert!(err.contains("ui.oidc_client_id"), "{err}");
    config.client_id = Some(config.api_audience.clone());
    let err = SignIn::new(&config, None, http()).err().unwrap();
    assert!(err.contains("API bearer token"), "{err}");
    config.client_id = Some("vanthu-ui".into());
    let sso = SignIn::new(&config, None, http()).unwrap();
    assert_eq!(sso.client_id, "vanthu-ui");
    assert_eq!(sso.id_tokens.audience, "vanthu-ui");
    assert_eq!(sso.id_tokens.issuer, config.issuer);
}

/// Serves `body(its base URL)` as JSON to every request on a port of
/// its own: its base URL.
fn serve_json(body: impl FnOnce(&str) -> String) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let body = body(&base);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    base
}

/// D10: a discovery document naming another issuer than `auth.issuer`
/// (OpenID Connect Discovery 1.0 §4.3) sets up no sign-in; its own
/// issuer does.
#[tokio::test]
async fn the_discovery_document_must_name_the_configured_issuer() {
    let http = || crate::outbound::client(Duration::from_secs(5), None).unwrap();
    let document = |issuer: &str| {
        serde_json::json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
        })
        .to_string()
    };
    let mut config = settings();
    config.enabled = true;
    config.client_id = Some("vanthu-ui".into());

    // The document says it is another provider.
    config.issuer = serve_json(|_| document("https://sso.evil.example"));
    let sso = SignIn::new(&config, None, http()).unwrap();
    let err = sso.endpoints().await.unwrap_err();
    assert!(
        format!("{err:?}").contains("không khớp với cấu hình"),
        "{err:?}"
    );
    assert!(sso.endpoints.lock().await.is_none(), "nothing cached");

    // A document that names its own issuer, the configured one.
    config.issuer = serve_json(|base| document(base));
    let sso = SignIn::new(&config, None, http()).unwrap();
    let found = sso.endpoints().await.unwrap();
    assert_eq!(found.issuer, config.issuer);
    assert_eq!(found.token_endpoint, format!("{}/token", config.issuer));
}

#[test]
fn pkce_challenge_is_rfc_7636_s256() {
    // RFC 7636 Appendix B.
    assert_eq!(
        challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    );
}

#[test]
fn sign_in_returns_only_to_the_pages() {
    for (next, to) in [
        (
            "/ui/deadlines?status=overdue",
            "/ui/deadlines?status=overdue",
        ),
        ("/ui/", "/ui/"),
        ("https://evil.example/ui/", "/ui/"),
        ("//evil.example/ui/", "/ui/"),
        ("/ui/\\evil", "/ui/"),
        ("/v1/inbox", "/ui/"),
        ("/ui/sign-in?next=/ui/", "/ui/"),
        ("/ui/live?view=inbox", "/ui/"),
        ("/ui/\u{1}", "/ui/"),
        ("/ui/a b", "/ui/"),
        ("/ui/đ", "/ui/"),
    ] {
        assert_eq!(local_next(next), to, "{next}");
    }
}
