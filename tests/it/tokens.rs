//! Tokens from the province's SSO: keys from a JWK Set file, and from a
//! real OpenID Connect provider process (`oidc-provider-mock`, installed by
//! `make test-deps` into `target/test-venv`), reloaded when the provider
//! rotates its key.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use serde_json::{json, Value};

use crate::helpers::TestServer;

const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// An Ed25519 key as a JWK (public) and a PKCS#8 PEM (private).
fn ed_key(seed: u8, kid: &str) -> (Value, Vec<u8>) {
    let sk = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
    let jwk = json!({
        "kty": "OKP", "crv": "Ed25519", "kid": kid, "use": "sig",
        "x": B64URL.encode(sk.verifying_key().to_bytes()),
    });
    let pem = sk.to_pkcs8_pem(Default::default()).unwrap();
    (jwk, pem.as_bytes().to_vec())
}

fn claims(iss: &str, sub: &str) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({"iss": iss, "aud": "vanthu", "sub": sub, "iat": now, "exp": now + 600})
}

fn sign_ed(pem: &[u8], kid: Option<&str>, claims: &Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_ed_pem(pem).unwrap(),
    )
    .unwrap()
}

/// A token signed with HMAC, using `secret` (a public key) as the secret:
/// the classic algorithm-confusion forgery.
fn sign_hs256(secret: &[u8], kid: &str, claims: &Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap()
}

pub(crate) async fn status(server: &TestServer, token: &str) -> u16 {
    server
        .get("/v1/inbox")
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Asks until the answer is `want` or 10 s pass (a JWK Set reload waits at
/// least `jwks::MIN_RELOAD` after the previous one); the last answer.
async fn status_within(server: &TestServer, token: &str, want: u16) -> u16 {
    let start = Instant::now();
    loop {
        let got = status(server, token).await;
        if got == want || start.elapsed() > Duration::from_secs(10) {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Keys from a JWK Set file: a token is verified by the key its `kid`
/// names, only with the algorithm that key was made for; replacing the file
/// rotates the keys without a restart.
#[tokio::test]
async fn jwks_file_keys_verify_tokens_and_rotate() {
    let _limit = crate::helpers::time_limit();
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    let iss = "https://sso.example.gov.vn";
    let (k1, k1_pem) = ed_key(1, "k1");
    let (k2, k2_pem) = ed_key(2, "k2");
    std::fs::write(&jwks, json!({"keys": [k1]}).to_string()).unwrap();
    let server = TestServer::spawn_with(
        &dir.path().join("data"),
        &[
            ("VANTHU_AUTH_JWKS", jwks.to_str().unwrap()),
            ("VANTHU_AUTH_ISSUER", iss),
        ],
    );
    let official = "svhtt-giam-doc";
    let good = sign_ed(&k1_pem, Some("k1"), &claims(iss, official));
    assert_eq!(status(&server, &good).await, 200);
    // Without a kid, every key made for the algorithm is tried.
    assert_eq!(
        status(&server, &sign_ed(&k1_pem, None, &claims(iss, official))).await,
        200
    );
    // Refused: another issuer; a key the set does not hold; the header
    // naming HS256 with the public key as the HMAC secret; an official the
    // organisation does not know.
    let k1_x = B64URL.decode(k1["x"].as_str().unwrap()).unwrap();
    for (what, token) in [
        (
            "issuer",
            sign_ed(&k1_pem, Some("k1"), &claims("https://other", official)),
        ),
        (
            "unknown key",
            sign_ed(&k2_pem, Some("k2"), &claims(iss, official)),
        ),
        (
            "alg confusion",
            sign_hs256(&k1_x, "k1", &claims(iss, official)),
        ),
        (
            "stranger",
            sign_ed(&k1_pem, Some("k1"), &claims(iss, "nobody")),
        ),
    ] {
        assert_eq!(status(&server, &token).await, 401, "{what}");
    }
    // Rotation: the provider publishes k2 and retires k1.
    std::fs::write(&jwks, json!({"keys": [k2]}).to_string()).unwrap();
    let rotated = sign_ed(&k2_pem, Some("k2"), &claims(iss, official));
    assert_eq!(status_within(&server, &rotated, 200).await, 200);
    assert_eq!(status(&server, &good).await, 401, "a retired key");
    // A set that no longer loads keeps the keys already held.
    std::fs::write(&jwks, "{not json").unwrap();
    tokio::time::sleep(vanthu::jwks::MIN_RELOAD).await;
    assert_eq!(
        status(
            &server,
            &sign_ed(&k1_pem, Some("k9"), &claims(iss, official))
        )
        .await,
        401
    );
    assert_eq!(status(&server, &rotated).await, 200);
}

/// `target/test-venv/bin/oidc-provider-mock`, installed by `make test-deps`.
pub(crate) fn provider_binary() -> std::path::PathBuf {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/test-venv/bin/oidc-provider-mock");
    assert!(
        path.exists(),
        "{} is missing: run `make test-deps` (make test does)",
        path.display()
    );
    path
}

/// An `oidc-provider-mock` process on `port`; killed on drop.
pub(crate) struct Provider(Child);

impl Provider {
    pub(crate) async fn start(port: u16) -> Provider {
        let child = Command::new(provider_binary())
            .args(["--port", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start oidc-provider-mock");
        let provider = Provider(child);
        let url = format!("http://localhost:{port}/.well-known/openid-configuration");
        let start = Instant::now();
        while crate::helpers::http().get(&url).send().await.is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the provider did not answer"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        provider
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Signs in `sub` at the provider (authorization code flow, RFC 6749 §4.1,
/// as a browser would) and returns the ID token the provider issues.
pub(crate) async fn sign_in(base: &str, client_id: &str, sub: &str) -> String {
    vanthu::outbound::install_tls_provider();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let redirect = "http://localhost/callback";
    let r = http
        .post(format!("{base}/oauth2/authorize"))
        .query(&[
            ("client_id", client_id),
            ("redirect_uri", redirect),
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "s"),
            ("nonce", "n"),
        ])
        .form(&[("sub", sub)])
        .send()
        .await
        .unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let code = reqwest::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no code in {location}"));
    let tokens: Value = http
        .post(format!("{base}/oauth2/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect),
            ("client_id", client_id),
            ("client_secret", "unused"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    tokens["id_token"].as_str().unwrap().to_owned()
}

/// A real OpenID Connect provider signs the officials' tokens (RS256, from
/// its discovery document's `jwks_uri`); when it restarts with a new key,
/// vanthu picks the key up at the first token that needs it and stops
/// accepting tokens of the old one.
#[tokio::test]
async fn tokens_from_a_real_oidc_provider() {
    let _limit = crate::helpers::time_limit();
    let port = crate::helpers::free_port();
    let base = format!("http://localhost:{port}");
    let provider = Provider::start(port).await;
    let dir = tempfile::tempdir().unwrap();
    let discovery = format!("{base}/.well-known/openid-configuration");
    let server = TestServer::spawn_with(
        &dir.path().join("data"),
        &[
            ("VANTHU_AUTH_JWKS", &discovery),
            ("VANTHU_AUTH_ISSUER", &base),
            ("VANTHU_AUTH_AUDIENCE", "vanthu-iof"),
        ],
    );
    let official = "svhtt-giam-doc";
    let first = sign_in(&base, "vanthu-iof", official).await;
    assert_eq!(status(&server, &first).await, 200);
    // The provider vouches for anyone it signs in; the organisation decides.
    assert_eq!(
        status(&server, &sign_in(&base, "vanthu-iof", "stranger").await).await,
        401
    );
    // A token for another client (audience) of the same provider.
    assert_eq!(
        status(&server, &sign_in(&base, "other-app", official).await).await,
        401
    );
    // The development token key still verifies, but its issuer is not the SSO.
    assert_eq!(status(&server, &crate::helpers::token(official)).await, 401);

    // Key rotation: the provider restarts with a new key.
    drop(provider);
    let _provider = Provider::start(port).await;
    let second = sign_in(&base, "vanthu-iof", official).await;
    assert_eq!(status_within(&server, &second, 200).await, 200);
    assert_eq!(status(&server, &first).await, 401, "the old key is gone");
}

/// A private CA and a certificate for `localhost` it issued: (CA PEM,
/// server certificate PEM, server key PEM).
fn private_ca_and_server() -> (String, String, String) {
    use rcgen::{CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (ca_cert.pem(), server.pem(), key.serialize_pem())
}

/// `python3`'s HTTPS file server on `port`, serving `dir`; killed on drop.
struct HttpsFiles(Child);

impl HttpsFiles {
    async fn start(dir: &std::path::Path, cert: &str, key: &str, port: u16) -> HttpsFiles {
        let script = "import http.server, ssl, sys, os\n\
            os.chdir(sys.argv[1])\n\
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
            ctx.load_cert_chain(sys.argv[2], sys.argv[3])\n\
            s = http.server.HTTPServer(('127.0.0.1', int(sys.argv[4])), http.server.SimpleHTTPRequestHandler)\n\
            s.socket = ctx.wrap_socket(s.socket, server_side=True)\n\
            s.serve_forever()\n";
        let child = Command::new("python3")
            .args(["-c", script])
            .arg(dir)
            .args([cert, key, &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3");
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(20), "no HTTPS server");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        HttpsFiles(child)
    }
}

impl Drop for HttpsFiles {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The JWK Set over HTTPS from a server whose certificate a private CA
/// issued: trusted with `auth.jwks_ca`, and without it not loaded at all
/// (tokens refused), never fetched without verifying the certificate.
#[tokio::test]
async fn a_jwks_over_https_from_a_private_ca() {
    let _limit = crate::helpers::time_limit();
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("www");
    std::fs::create_dir(&files).unwrap();
    let (k1, k1_pem) = ed_key(3, "k1");
    std::fs::write(files.join("jwks.json"), json!({"keys": [k1]}).to_string()).unwrap();
    let (ca, cert, key) = private_ca_and_server();
    let paths = ["ca.pem", "cert.pem", "key.pem"].map(|n| dir.path().join(n));
    for (path, pem) in paths.iter().zip([&ca, &cert, &key]) {
        std::fs::write(path, pem).unwrap();
    }
    let port = crate::helpers::free_port();
    let _https = HttpsFiles::start(
        &files,
        paths[1].to_str().unwrap(),
        paths[2].to_str().unwrap(),
        port,
    )
    .await;
    let iss = "https://sso.example.gov.vn";
    let url = format!("https://localhost:{port}/jwks.json");
    let token = sign_ed(&k1_pem, Some("k1"), &claims(iss, "svhtt-giam-doc"));
    let trusting = TestServer::spawn_with(
        &dir.path().join("a"),
        &[
            ("VANTHU_AUTH_JWKS", &url),
            ("VANTHU_AUTH_JWKS_CA", paths[0].to_str().unwrap()),
            ("VANTHU_AUTH_ISSUER", iss),
        ],
    );
    assert_eq!(status(&trusting, &token).await, 200);
    let not_trusting = TestServer::spawn_with(
        &dir.path().join("b"),
        &[("VANTHU_AUTH_JWKS", &url), ("VANTHU_AUTH_ISSUER", iss)],
    );
    assert_eq!(status(&not_trusting, &token).await, 401);
}
