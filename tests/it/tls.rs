//! HTTPS: served with a certificate `vanthu dev-keys` makes, verified
//! by a client that trusts only the development root; the certificate
//! reloaded on SIGHUP for new connections while open ones go on; a broken
//! reload keeps the current certificate; plain HTTP refused beyond loopback
//! unless allowed.

use std::path::Path;

use crate::helpers::{keys_anchored_at, keys_dir, serve_command, serve_command_on, TestServer};

/// A client trusting only `root` that reports the server's certificate.
fn client(root: &Path) -> reqwest::Client {
    vanthu::outbound::install_tls_provider();
    let pem = std::fs::read(root).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
        .tls_info(true)
        .build()
        .unwrap()
}

/// GET /healthz; the server certificate's DER.
async fn served_cert(client: &reqwest::Client, url: &str) -> Vec<u8> {
    let r = client.get(format!("{url}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|i| i.peer_certificate())
        .unwrap()
        .to_vec()
}

fn first_cert_der(pem: &Path) -> Vec<u8> {
    let text = std::fs::read_to_string(pem).unwrap();
    vanthu::crypto::pki::pem_blocks(&text, "CERTIFICATE")
        .unwrap()
        .remove(0)
}

#[tokio::test]
async fn https_with_the_development_certificate_reloaded_on_sighup() {
    let _limit = crate::helpers::time_limit();
    let keys = keys_dir();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::copy(keys.join("tls/server.pem"), &cert).unwrap();
    std::fs::copy(keys.join("tls/server.key"), &key).unwrap();
    let mut cmd = serve_command(&dir.path().join("data"));
    cmd.env("VANTHU_DEV", "true")
        .env("VANTHU_KEYS_DIR", &keys)
        .env("VANTHU_TLS_CERT", &cert)
        .env("VANTHU_TLS_KEY", &key);
    let mut server = TestServer::spawn_command(cmd).expect("the server starts with TLS");
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );
    let url = server.url.replace("127.0.0.1", "localhost");
    let root = keys.join("ca/root.pem");
    let open = client(&root);
    assert_eq!(served_cert(&open, &url).await, first_cert_der(&cert));
    assert_eq!(
        served_cert(&open, &server.url).await,
        first_cert_der(&cert),
        "IP SAN"
    );
    // A client that does not trust the development root refuses it.
    let stranger = client(&keys.join("special/untrusted-root.pem"));
    assert!(stranger.get(format!("{url}/healthz")).send().await.is_err());
    // Plain HTTP on the TLS port gets no answer.
    assert!(crate::helpers::http()
        .get(url.replace("https", "http") + "/healthz")
        .send()
        .await
        .is_err());

    // A renewed certificate (same key, the validity of the previous year's
    // set, still current) on SIGHUP: new connections get it, the open
    // connection goes on.
    let renewed = keys_anchored_at(chrono::Utc::now() - chrono::Duration::days(370));
    std::fs::copy(renewed.join("tls/server.pem"), &cert).unwrap();
    assert_ne!(
        first_cert_der(&cert),
        first_cert_der(&keys.join("tls/server.pem"))
    );
    server.signal("-HUP");
    let want = first_cert_der(&cert);
    crate::helpers::eventually(
        "the renewed certificate to be served",
        std::time::Duration::from_secs(5),
        || {
            let (want, root, url) = (want.clone(), root.clone(), url.clone());
            async move { (served_cert(&client(&root), &url).await == want).then_some(()) }
        },
    )
    .await;
    let r = open.get(format!("{url}/healthz")).send().await.unwrap();
    assert_eq!(
        r.status(),
        200,
        "the connection opened before the reload goes on"
    );

    // A broken reload (a key that does not fit) keeps the current one.
    std::fs::copy(keys.join("officials/svhtt-pgd-1.key"), &key).unwrap();
    server.signal("-HUP");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(server.running());
    assert_eq!(
        served_cert(&client(&root), &url).await,
        first_cert_der(&cert)
    );
}

/// As an operator trying HTTPS would: `vanthu dev-keys` makes a keys
/// directory with a server certificate, the service serves it, and a client
/// trusting only that directory's root gets an answer.
#[tokio::test]
async fn https_with_a_certificate_made_by_vanthu_dev_keys() {
    let _limit = crate::helpers::time_limit();
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let org = crate::helpers::committed_keys_dir().join("org.toml");
    let (ok, text) = crate::helpers::vanthu_text(&[
        "dev-keys",
        "--org",
        org.to_str().unwrap(),
        "--out",
        keys.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    let mut cmd = serve_command(&dir.path().join("data"));
    cmd.env("VANTHU_DEV", "true")
        .env("VANTHU_KEYS_DIR", &keys)
        .env("VANTHU_TLS_CERT", keys.join("tls/server.pem"))
        .env("VANTHU_TLS_KEY", keys.join("tls/server.key"));
    let server = TestServer::spawn_command(cmd).expect("the server starts with TLS");
    let url = server.url.replace("127.0.0.1", "localhost");
    assert!(url.starts_with("https://localhost:"), "{url}");
    let c = client(&keys.join("ca/root.pem"));
    assert_eq!(
        served_cert(&c, &url).await,
        first_cert_der(&keys.join("tls/server.pem"))
    );
}

#[test]
fn plain_http_beyond_loopback_is_refused_unless_allowed() {
    let _limit = crate::helpers::time_limit();
    let dir = tempfile::tempdir().unwrap();
    let start = |env: &[(&str, &str)]| {
        let mut cmd = serve_command_on(&dir.path().join("data"), "0.0.0.0:0");
        cmd.env("VANTHU_DEV", "true")
            .env("VANTHU_KEYS_DIR", keys_dir())
            .envs(env.iter().copied());
        cmd
    };
    let out = start(&[]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing to serve plain HTTP") && err.contains("allow_plain_http"),
        "{err}"
    );
    let server = TestServer::spawn_command(start(&[("VANTHU_ALLOW_PLAIN_HTTP", "true")]));
    assert!(server.is_some_and(|s| s.url.starts_with("http://0.0.0.0:")));
    // Only one of the two files: refused.
    let out = start(&[("VANTHU_TLS_CERT", "/nonexistent.pem")])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("set both or neither"),
        "{err}"
    );
}
