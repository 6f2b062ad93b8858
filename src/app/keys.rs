//! What the service starts from on disk: the token verifier, trust anchors,
//! CRLs, agency seals, the log and webhook keys, the refusal of development
//! material outside `--dev`, and the demo organisation.
//!
//! Must never: start with a development key outside development mode, or
//! print a private key.

use crate::config::Config;
use crate::http::auth::TokenVerifier;
use crate::service::org::OrgState;
use crate::store::EventLog;

use super::StartError;

/// The token verifier: the token key of `keys_dir` (optional when a JWK
/// Set is configured) and the JWK Set, loaded once before serving (a file
/// must load; a URL that does not answer yet is retried on schedule and
/// whenever a token needs it). Also the token key, named, for the
/// development-key check.
pub(super) async fn token_verifier(
    config: &Config,
) -> Result<(TokenVerifier, Option<(String, [u8; 32])>), StartError> {
    let key_path = config.keys_dir.join("jwt/jwt.pub.pem");
    let key_err = |e: String| StartError::TokenKey(key_path.display().to_string(), e);
    let pem = match std::fs::read(&key_path) {
        Ok(pem) => Some(pem),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && config.auth.jwks.is_some() => None,
        Err(e) => return Err(key_err(e.to_string())),
    };
    let token_key = match &pem {
        Some(pem) => Some((
            format!("token key {}", key_path.display()),
            ed25519_public_key_pem(pem).map_err(key_err)?,
        )),
        None => None,
    };
    let jwks = match &config.auth.jwks {
        Some(source) => {
            let source = crate::jwks::Source::parse(source);
            let http = crate::outbound::client(
                std::time::Duration::from_secs(10),
                config.auth.jwks_ca.as_deref(),
            )
            .map_err(|e| StartError::TokenKey(source.to_string(), e.to_string()))?;
            let jwks = std::sync::Arc::new(crate::jwks::Jwks::new(source.clone(), http));
            let loaded = jwks.load().await;
            if let (crate::jwks::Source::File(_), Err(e)) = (&source, loaded) {
                return Err(StartError::TokenKey(source.to_string(), e));
            }
            Some(jwks)
        }
        None => None,
    };
    let tokens = TokenVerifier::new(pem.as_deref(), jwks, &config.auth.policy())
        .map_err(|e| key_err(e.to_string()))?;
    Ok((tokens, token_key))
}

/// Keys the service trusts or signs with, each named, with its public key.
pub(super) type Trusted = Vec<(String, [u8; 32])>;

/// The raw Ed25519 key of an SPKI PEM public key.
pub(super) fn ed25519_public_key_pem(pem: &[u8]) -> Result<[u8; 32], String> {
    use ed25519_dalek::pkcs8::DecodePublicKey;
    let text = std::str::from_utf8(pem).map_err(|e| e.to_string())?;
    ed25519_dalek::VerifyingKey::from_public_key_pem(text)
        .map(|k| k.to_bytes())
        .map_err(|e| format!("not an Ed25519 public key: {e}"))
}

/// Outside development mode, every key the service trusts or signs with must
/// be the operator's own: the development keys' private halves are public.
/// `trusted` names each configured key with its public key.
pub(super) fn refuse_development_material(
    config: &Config,
    trusted: &[(String, [u8; 32])],
) -> Result<(), StartError> {
    if config.dev {
        return Ok(());
    }
    // Each key once (every seal's chain repeats the issuing CA).
    let mut seen = std::collections::HashSet::new();
    let mut found: Vec<String> = trusted
        .iter()
        .filter(|(_, key)| crate::devkeys::is_development_key(key) && seen.insert(*key))
        .map(|(what, _)| format!("{what} is a development key (its private half is public)"))
        .collect();
    found.extend(config.development_settings());
    if found.is_empty() {
        Ok(())
    } else {
        Err(StartError::Development(found))
    }
}

/// Trust anchors and CRLs (`keys_dir/ca/root.pem`, `keys_dir/ca/crl.pem`),
/// agency seals (`keys_dir/seals/<AGENCY>.key|.pem` under `ca/issuing.pem`),
/// the working-day calendar and the clock; and every public key among them
/// that the service trusts or signs with, named.
pub(super) fn services(config: &Config) -> Result<(crate::service::Services, Trusted), StartError> {
    use crate::crypto::keystore::SealSigner;
    use crate::crypto::keystore::{FileKey, FileKeystore};
    use crate::crypto::pki::pem_blocks;
    let keys = &config.keys_dir;
    let err =
        |what: &std::path::Path, e: String| StartError::Keys(format!("{}: {e}", what.display()));
    let read = |p: &std::path::Path| std::fs::read_to_string(p).map_err(|e| err(p, e.to_string()));
    let root = keys.join("ca/root.pem");
    let anchors =
        pem_blocks(&read(&root)?, "CERTIFICATE").map_err(|e| err(&root, e.to_string()))?;
    let mut trusted = Vec::new();
    for der in &anchors {
        let info =
            crate::crypto::pki::parse_certificate(der).map_err(|e| err(&root, e.to_string()))?;
        trusted.push((
            format!("trust anchor {} in {}", info.subject, root.display()),
            info.public_key,
        ));
    }
    let crls = crate::crls::CrlStore::open(
        anchors.clone(),
        keys.join("ca/crl.pem"),
        config.crl.urls.clone(),
    )
    .map_err(|e| StartError::Keys(e.to_string()))?;
    let mut keystore = FileKeystore::default();
    let seals = keys.join("seals");
    let issuing = keys.join("ca/issuing.pem");
    if let Ok(dir) = std::fs::read_dir(&seals) {
        let mut names: Vec<_> = dir.filter_map(Result::ok).map(|e| e.path()).collect();
        names.sort();
        for key in names
            .iter()
            .filter(|p| p.extension().is_some_and(|x| x == "key"))
        {
            let cert = key.with_extension("pem");
            let agency = key.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            let seal =
                FileKey::load(key, &[&cert, &issuing]).map_err(|e| err(key, e.to_string()))?;
            for der in seal.chain() {
                let info = crate::crypto::pki::parse_certificate(der)
                    .map_err(|e| err(&cert, e.to_string()))?;
                trusted.push((
                    format!("seal of {agency}: certificate {}", info.subject),
                    info.public_key,
                ));
            }
            keystore.insert(agency, seal);
        }
    }
    let calendar = crate::domain::calendar::Calendar::try_vietnam()
        .map_err(|e| StartError::Keys(format!("the working-day calendar: {e}")))?;
    let services = crate::service::Services {
        crls: std::sync::Arc::new(crls),
        keystore: Box::new(keystore),
        calendar,
        due_soon_days: config.due_soon_days,
        numbering: config.numbering.clone(),
        clock: std::sync::Arc::new(crate::clock::Clock::new(config.dev_clock)),
        blobs: crate::service::blobs::BlobPolicy::new(
            config.blob_limit,
            config.blobs.quota_bytes,
            config.blobs.grace_hours,
        ),
        registers: Default::default(),
        documents: Default::default(),
    };
    Ok((services, trusted))
}

/// The configured TLS certificate's key, named, when it is an Ed25519 key
/// (so that the development TLS key is refused outside development mode).
pub(super) fn tls_public_key(config: &Config) -> Option<(String, [u8; 32])> {
    let path = config.tls.cert.as_ref()?;
    let text = std::fs::read_to_string(path).ok()?;
    let first = crate::crypto::pki::pem_blocks(&text, "CERTIFICATE")
        .ok()?
        .into_iter()
        .next()?;
    let info = crate::crypto::pki::parse_certificate(&first).ok()?;
    Some((
        format!("the TLS certificate {}", path.display()),
        info.public_key,
    ))
}

/// Where the log key lives in `keys_dir`.
pub(super) const LOG_KEY: &str = "log/log.key";
/// Webhook secrets are derived from this key (optional: without it no
/// webhook can be subscribed or sent).
pub(super) const WEBHOOK_KEY: &str = "webhooks/webhooks.key";

pub(super) fn webhook_key(
    config: &Config,
) -> Result<Option<crate::outbox::dispatch::SecretKey>, StartError> {
    let path = config.keys_dir.join(WEBHOOK_KEY);
    if !path.exists() {
        tracing::info!(path = %path.display(), "no webhook key: webhooks are off");
        return Ok(None);
    }
    crate::outbox::dispatch::SecretKey::load(&path)
        .map(Some)
        .map_err(|e| {
            StartError::Keys(format!(
                "{e} (32 random bytes, base64: `head -c 32 /dev/urandom | base64`)"
            ))
        })
}

/// The transparency log's key (`keys_dir/log/log.key`), named by `tlog.origin`.
pub(super) fn keys_dir_log_key(config: &Config) -> Result<crate::crypto::note::LogKey, StartError> {
    crate::crypto::note::LogKey::load(&config.keys_dir.join(LOG_KEY), &config.tlog.origin)
        .map_err(|e| StartError::Keys(format!("{e} (generate one as for a seal: an Ed25519 PKCS#8 PEM key; see docs/TRANSPARENCY.md)")))
}

/// Records the demo organisation of `keys_dir/org.toml` as the first org events.
pub(super) async fn load_demo(
    config: &Config,
    log: &dyn EventLog,
    org: &OrgState,
) -> Result<(), StartError> {
    let demo_err = |e: String| StartError::Demo(e);
    let demo = crate::devkeys::DemoOrg::load(&config.keys_dir.join("org.toml"))
        .map_err(|e| demo_err(e.to_string()))?;
    let manifest =
        crate::devkeys::Manifest::load(&config.keys_dir).map_err(|e| demo_err(e.to_string()))?;
    let events = demo
        .org_events(&manifest)
        .map_err(|e| demo_err(e.to_string()))?;
    let n = events.len();
    let metadata = crate::store::Metadata {
        actor: Some("vanthu-demo".into()),
        reason: Some("the demo organisation of keys-dev/org.toml (development mode)".into()),
        ..Default::default()
    };
    match org
        .record(log, events, &metadata, Some("demo-organisation-v1"))
        .await
    {
        Ok(_) => tracing::info!(events = n, "recorded the demo organisation"),
        // Another node of a shared log recorded it first (its events carry
        // its own instants, so its request differs from this one's).
        Err(_) if !org.read(|o| o.agencies.is_empty()) => {
            tracing::info!("another node recorded the demo organisation")
        }
        Err(e) => return Err(demo_err(e.to_string())),
    }
    Ok(())
}
