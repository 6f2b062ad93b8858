//! Configuration: one `Config` struct built from defaults, then an optional
//! TOML file, then `VANTHU_*` environment variables (highest precedence), then
//! command-line flags applied by `main`. The struct is the one list of
//! settings: the variables are derived from it (`env`: setting `a.b_c` is
//! `VANTHU_A_B_C`), `vanthu config --print` serialises it, and a test holds
//! `ops/vanthu.example.toml` to it.
//!
//! Must never: read files or variables other than the ones named here, or
//! hold secrets in plain fields that get logged (key material lives in files
//! the config only points at).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub mod env;

/// The service's settings. `Default` is data in `./data`, listening on
/// `127.0.0.1:8080`, keys in `./keys-dev`, production mode: the service then
/// refuses to start on the development keys until `dev = true` (`--dev`,
/// what `make run`, `make demo` and the tests pass) or real keys are configured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where RocksDB keeps the log.
    pub data_dir: PathBuf,
    /// Address to listen on; port 0 picks a free port.
    pub listen: String,
    /// Log filter in `tracing` syntax, e.g. `info,vanthu=debug`.
    pub log: String,
    /// Log lines as JSON objects (`json`), for people (`pretty`), or `auto`:
    /// pretty on a terminal, JSON otherwise.
    pub log_format: LogFormat,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
    /// Key material: `jwt/jwt.pub.pem` (token verification), `seals/`, and for
    /// the demo `org.toml` + `manifest.json`.
    pub keys_dir: PathBuf,
    /// Development mode (`vanthu serve --dev`): allows the
    /// public development keys of `keys-dev/`, the demo organisation and the
    /// adjustable clock. Outside it the service refuses to start with any of them.
    pub dev: bool,
    /// Load the demo organisation from `keys_dir/org.toml` when the log has
    /// no organisation yet; unset means "in development mode".
    pub demo: Option<bool>,
    /// Event-log settings.
    pub store: StoreConfig,
    /// Which API tokens are accepted.
    pub auth: AuthConfig,
    /// The clerks' and leaders' pages under `/ui/`.
    pub ui: UiConfig,
    /// Webhook deliveries to integrations: timeouts and retries.
    pub webhooks: WebhooksConfig,
    /// Document interchange with other systems (edXML over the axis).
    pub interchange: InterchangeConfig,
    /// Where revocation lists come from besides `keys_dir/ca/crl.pem`.
    pub crl: CrlConfig,
    /// How far back an organisation change may take effect (with a reason),
    /// in days.
    pub org_backdate_days: u32,
    /// Largest blob (document file) accepted, in bytes.
    pub blob_limit: usize,
    /// Upload quota and collection of blobs no document cites.
    pub blobs: BlobsConfig,
    /// Let an admin move the service clock forward (`POST /v1/dev/clock`),
    /// for demos and tests of deadlines. Never in production.
    pub dev_clock: bool,
    /// A deadline is "due soon" within this many working days.
    pub due_soon_days: u32,
    /// Which document types have their own number series, per agency.
    pub numbering: crate::domain::numbering::Policy,
    /// The transparency log: its identity and how often it signs.
    pub tlog: TlogConfig,
    /// Where `POST /v1/admin/backups` puts backups, one directory each.
    pub backup_dir: PathBuf,
    /// HTTPS: the certificate chain and key (PEM), reloaded on SIGHUP.
    pub tls: TlsConfig,
    /// Listen beyond loopback without TLS (behind a TLS-terminating proxy);
    /// refused otherwise.
    pub allow_plain_http: bool,
}

/// HTTPS is served when both are set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain, server certificate first.
    pub cert: Option<PathBuf>,
    /// Its private key, PKCS#8 PEM.
    pub key: Option<PathBuf>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Pretty on a terminal, JSON otherwise.
    #[default]
    Auto,
    Json,
    Pretty,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "json" => Ok(Self::Json),
            "pretty" => Ok(Self::Pretty),
            _ => Err("expected auto, json or pretty".into()),
        }
    }
}

/// The log as a transparency log (C2SP tlog-checkpoint): the key
/// `keys_dir/log/log.key` signs checkpoints named by `origin`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlogConfig {
    /// The log's permanent identity, the first line of every checkpoint and
    /// the log key's name: the schema-less URL of its `/log` prefix, e.g.
    /// `vanthu.nghean.gov.vn/log`. Never change
    /// it once a checkpoint was published.
    pub origin: String,
    /// A new checkpoint is signed at most this often, when the log grew.
    pub checkpoint_interval_ms: u64,
}

/// The origin of development logs (refused outside development mode).
pub const DEV_TLOG_ORIGIN: &str = "dev.vanthu.invalid/log";

impl Default for TlogConfig {
    fn default() -> Self {
        Self {
            origin: DEV_TLOG_ORIGIN.into(),
            checkpoint_interval_ms: 1000,
        }
    }
}

/// Which API tokens are accepted: signed by the token key of `keys_dir`,
/// with this issuer and audience, living at most `max_token_hours`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Required `iss`; `vanthu token` uses `vanthu-dev`.
    pub issuer: String,
    /// Required in `aud`.
    pub audience: String,
    /// Longest token lifetime (`exp - iat`) accepted, hours.
    pub max_token_hours: u32,
    /// A JWK Set of the province's SSO: a file, a URL, or an OIDC discovery
    /// URL. Its keys verify tokens besides the token
    /// key of `keys_dir`, which becomes optional.
    pub jwks: Option<String>,
    /// Extra trusted roots (PEM) for an `https` JWK Set URL, e.g. the
    /// province's own CA; the system's roots are
    /// always trusted.
    pub jwks_ca: Option<std::path::PathBuf>,
    /// How often the JWK Set is reloaded, seconds;
    /// a token with a key the set lacks reloads it at once.
    pub jwks_refresh_seconds: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            issuer: crate::http::auth::DEV_ISSUER.into(),
            audience: crate::http::auth::DEFAULT_AUDIENCE.into(),
            max_token_hours: 12,
            jwks: None,
            jwks_ca: None,
            jwks_refresh_seconds: 300,
        }
    }
}

impl AuthConfig {
    /// The token policy these settings describe.
    pub fn policy(&self) -> crate::http::auth::TokenPolicy {
        crate::http::auth::TokenPolicy {
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            max_lifetime: chrono::Duration::hours(i64::from(self.max_token_hours)),
        }
    }
}

/// The pages under `/ui/` (src/ui): how officials sign in to them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UiConfig {
    /// Sign in through the province's SSO at `auth.issuer` (OpenID Connect
    /// authorization code flow with PKCE), as its client `oidc_client_id`:
    /// the ID token is verified with the SSO's keys (`auth.jwks`).
    pub oidc: bool,
    /// The pages' own client id at the SSO, required with `oidc`; ID tokens
    /// must name it in `aud` (and `azp`). It must not be `auth.audience`,
    /// or every ID token would also be an API bearer token.
    pub oidc_client_id: Option<String>,
    /// A file holding the client's secret at the SSO, when it is a
    /// confidential client (sent with HTTP Basic); none for a public client
    /// (PKCE alone).
    pub oidc_client_secret_file: Option<PathBuf>,
    /// Where browsers reach the service, e.g. `https://vanban.nghean.gov.vn`:
    /// the SSO sends them back to `{public_url}/ui/oidc/callback`. Needed
    /// with `oidc` outside development mode (there it defaults to the
    /// request's own address).
    pub public_url: Option<String>,
    /// Hours a page session lasts after sign-in.
    pub session_hours: u32,
}

impl Default for UiConfig {
    fn default() -> Self {
        Self {
            oidc: false,
            oidc_client_id: None,
            oidc_client_secret_file: None,
            public_url: None,
            session_hours: 10,
        }
    }
}

/// The `[interchange]` section is the interchange's own settings type.
pub use crate::interchange::{PeerSettings as PeerConfig, Settings as InterchangeConfig};

/// How webhook deliveries are sent and retried (src/outbox). Secrets are
/// derived from `keys_dir/webhooks/webhooks.key`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Seconds one attempt may take before it counts as failed.
    pub timeout_seconds: u64,
    /// The first retry's delay in milliseconds; each next one doubles
    /// (less up to half, at random), up to `retry_cap_seconds`.
    pub retry_base_ms: u64,
    pub retry_cap_seconds: u64,
    /// A delivery still failing this many seconds after its event (or its
    /// last re-drive) becomes a dead letter.
    pub max_age_seconds: u64,
    /// Attempts in flight per webhook (order per document is kept whatever it is).
    pub concurrency: usize,
    /// How often open reply deadlines are checked for `deadline.due_soon`
    /// (within `due_soon_days` working days) and `deadline.overdue`.
    pub deadline_check_seconds: u64,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            timeout_seconds: 10,
            retry_base_ms: 5_000,
            retry_cap_seconds: 3_600,
            max_age_seconds: 3 * 24 * 3_600,
            concurrency: 4,
            deadline_check_seconds: 60,
        }
    }
}

impl WebhooksConfig {
    /// The sender's retry policy.
    pub fn policy(&self) -> crate::outbox::dispatch::Policy {
        use std::time::Duration;
        crate::outbox::dispatch::Policy {
            base: Duration::from_millis(self.retry_base_ms.max(1)),
            cap: Duration::from_secs(self.retry_cap_seconds.max(1)),
            // Beyond what chrono holds, a century is as good as for ever.
            max_age: i64::try_from(self.max_age_seconds)
                .ok()
                .and_then(chrono::Duration::try_seconds)
                .unwrap_or(chrono::Duration::days(36_500)),
            timeout: Duration::from_secs(self.timeout_seconds.max(1)),
            concurrency: self.concurrency.max(1),
            deadline_check: Duration::from_secs(self.deadline_check_seconds.max(1)),
        }
    }
}

/// Revocation lists: the file of `keys_dir` is reloaded when it changes,
/// these URLs (the CAs' CRL distribution points, DER or PEM) are fetched,
/// every `refresh_seconds`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CrlConfig {
    /// CRL distribution points to fetch (in the environment, comma-separated).
    pub urls: Vec<String>,
    /// Seconds between fetches.
    pub refresh_seconds: u64,
}

impl Default for CrlConfig {
    fn default() -> Self {
        Self {
            urls: Vec::new(),
            refresh_seconds: 300,
        }
    }
}

/// Document files: what an official may keep uploaded without a document
/// citing it, and how long before such uploads are collected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BlobsConfig {
    /// Bytes one official may have uploaded that no document cites yet;
    /// files documents cite do not count.
    pub quota_bytes: u64,
    /// Uploads no document cites are collected this many hours after their
    /// upload or their last citation attempt.
    pub grace_hours: u64,
    /// How often collection runs, seconds.
    pub collect_seconds: u64,
}

impl Default for BlobsConfig {
    fn default() -> Self {
        Self {
            quota_bytes: 1 << 30,
            grace_hours: 72,
            collect_seconds: 3600,
        }
    }
}

/// Event-log settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Records whose leaf hash is re-checked at start.
    pub verify_tail: u64,
    /// Most events one group commit takes.
    pub max_batch_events: usize,
    /// Appends and uploads are refused (507) while the data directory's file
    /// system has less available.
    pub min_free_bytes: u64,
    /// Space held in a reserve file and given back when a start finds the
    /// disk nearly full.
    pub reserve_bytes: u64,
    /// MiB RocksDB may use for its block cache and memtables together (one
    /// cache shared by every family).
    pub memory_mb: usize,
    /// Where the log lives: `rocksdb` (embedded, in `data_dir`) or
    /// `jetstream` (a NATS JetStream stream; `data_dir` holds its replica).
    pub backend: Backend,
    /// The JetStream log (`backend = "jetstream"`, docs/JETSTREAM.md).
    pub jetstream: JetStreamConfig,
}

/// Which log backend runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    #[default]
    Rocksdb,
    Jetstream,
}

/// The JetStream log's cluster and stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JetStreamConfig {
    /// NATS servers (`nats://host:4222`), any of the cluster's.
    pub urls: Vec<String>,
    /// A NATS credentials (`.creds`) file, if the cluster requires one.
    pub credentials: Option<PathBuf>,
    /// The stream's name; its subjects are `<name in lower case>.ev.>`.
    pub stream: String,
    /// Copies of the stream the cluster keeps (RAFT): 3 survives one node.
    pub replicas: usize,
    /// Milliseconds one request to the cluster may take, and the bound on
    /// waiting for this node's replica after an append.
    pub timeout_ms: u64,
}

impl Default for JetStreamConfig {
    fn default() -> Self {
        Self {
            urls: vec!["nats://127.0.0.1:4222".into()],
            credentials: None,
            stream: "VANTHU".into(),
            replicas: 3,
            timeout_ms: 5000,
        }
    }
}

impl JetStreamConfig {
    /// The options `store::jetstream::JetStreamLog::open` takes.
    pub fn options(&self) -> crate::store::jetstream::JetStreamOptions {
        crate::store::jetstream::JetStreamOptions {
            urls: self.urls.clone(),
            credentials: self.credentials.clone(),
            stream: self.stream.clone(),
            replicas: self.replicas.max(1),
            timeout: std::time::Duration::from_millis(self.timeout_ms.max(1)),
            // A test hook, outside the settings on purpose.
            fault: std::env::var("VANTHU_TEST_JETSTREAM_FAULT")
                .ok()
                .and_then(|f| crate::store::jetstream::Fault::parse(&f)),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            listen: "127.0.0.1:8080".into(),
            log: "info".into(),
            log_format: LogFormat::Auto,
            workers: 0,
            keys_dir: PathBuf::from("./keys-dev"),
            dev: false,
            demo: None,
            store: StoreConfig::default(),
            auth: AuthConfig::default(),
            ui: UiConfig::default(),
            webhooks: WebhooksConfig::default(),
            interchange: InterchangeConfig::default(),
            crl: CrlConfig::default(),
            blobs: BlobsConfig::default(),
            org_backdate_days: 7,
            blob_limit: 50 << 20,
            dev_clock: false,
            due_soon_days: 2,
            numbering: Default::default(),
            tlog: TlogConfig::default(),
            backup_dir: PathBuf::from("./backups"),
            tls: TlsConfig::default(),
            allow_plain_http: false,
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        let d = crate::store::LogOptions::default();
        Self {
            verify_tail: d.verify_tail,
            max_batch_events: d.max_batch_events,
            min_free_bytes: crate::store::space::SpacePolicy::SERVICE.min_free,
            reserve_bytes: crate::store::space::SpacePolicy::SERVICE.reserve,
            memory_mb: d.memory_mb,
            backend: Backend::default(),
            jetstream: JetStreamConfig::default(),
        }
    }
}

/// Why the configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {0}: {1}")]
    Read(PathBuf, #[source] std::io::Error),
    #[error("config file {0}: {1}")]
    Parse(PathBuf, #[source] toml::de::Error),
    #[error("environment variable {0}={1:?}: {2}")]
    Env(String, String, String),
}

impl Config {
    /// Defaults, then `file` (if given), then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut config = match file {
            None => Config::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError::Read(path.to_owned(), e))?;
                toml::from_str(&text).map_err(|e| ConfigError::Parse(path.to_owned(), e))?
            }
        };
        config.apply_env(|k| std::env::var(k).ok())?;
        Ok(config)
    }

    /// Applies the `VANTHU_*` settings `var` knows (`config::env`).
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        env::apply(self, var)
    }

    /// What the pages under `/ui/` are set up with (`ui::Pages::new`).
    pub fn ui_settings(&self) -> crate::ui::Settings {
        crate::ui::Settings {
            dev: self.dev,
            tls: self.tls.cert.is_some(),
            public_url: self.ui.public_url.clone(),
            session_hours: self.ui.session_hours,
            sso: crate::ui::SsoSettings {
                enabled: self.ui.oidc,
                issuer: self.auth.issuer.clone(),
                client_id: self.ui.oidc_client_id.clone(),
                client_secret_file: self.ui.oidc_client_secret_file.clone(),
                api_audience: self.auth.audience.clone(),
                max_token_lifetime: chrono::Duration::hours(i64::from(self.auth.max_token_hours)),
            },
        }
    }

    /// Whether the demo organisation is loaded into an empty log.
    pub fn demo(&self) -> bool {
        self.demo.unwrap_or(self.dev)
    }

    /// The settings only development mode allows, as found in this config.
    pub fn development_settings(&self) -> Vec<String> {
        let mut found = Vec::new();
        if self.demo() {
            found.push("demo = true loads the demo organisation (set demo = false and record yours with `vanthu admin init`)".to_owned());
        }
        if self.ui.oidc
            && !self
                .ui
                .public_url
                .as_deref()
                .is_some_and(|u| u.starts_with("https://"))
        {
            found.push(
                "ui.oidc without an https ui.public_url: the SSO would send browsers back to whatever address a request named, or over plain HTTP (set ui.public_url = \"https://…\")".to_owned(),
            );
        }
        if self.dev_clock {
            found
                .push("dev_clock = true makes the service clock adjustable (remove it)".to_owned());
        }
        if self.tlog.origin == DEV_TLOG_ORIGIN {
            found.push(format!(
                "tlog.origin is the development origin {DEV_TLOG_ORIGIN} (set the log's own, e.g. vanthu.example.gov.vn/log)"
            ));
        }
        found
    }

    /// The event-log options this config asks for.
    pub fn log_options(&self) -> crate::store::LogOptions {
        crate::store::LogOptions {
            verify_tail: self.store.verify_tail,
            max_batch_events: self.store.max_batch_events.max(1),
            space: crate::store::space::SpacePolicy {
                min_free: self.store.min_free_bytes,
                reserve: self.store.reserve_bytes,
                // The largest single write: a file, a package (both one
                // blob append), or a command of up to the JSON limit with
                // its events, indexes and request record.
                headroom: (self.blob_limit.max(self.interchange.max_package_bytes) as u64)
                    .max(4 * crate::http::JSON_LIMIT as u64),
            },
            memory_mb: self.store.memory_mb,
            replica: self.store.backend == Backend::Jetstream,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn file_then_env_override_defaults() {
        let file: Config = toml::from_str(
            r#"
            listen = "0.0.0.0:9000"
            [store]
            verify_tail = 10
            "#,
        )
        .unwrap();
        assert_eq!(
            file.data_dir,
            PathBuf::from("./data"),
            "unset keys keep defaults"
        );
        assert_eq!(file.store.verify_tail, 10);

        let mut c = file;
        let env: HashMap<&str, &str> = [
            ("VANTHU_LISTEN", "127.0.0.1:0"),
            ("VANTHU_STORE_MAX_BATCH_EVENTS", "64"),
        ]
        .into();
        c.apply_env(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(c.listen, "127.0.0.1:0");
        assert_eq!(c.store.max_batch_events, 64);
        assert_eq!(c.store.verify_tail, 10);
    }

    #[test]
    fn the_example_config_is_valid_and_production() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("ops/vanthu.example.toml");
        let c: Config = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert!(!c.dev && !c.demo() && !c.dev_clock);
        assert!(c.development_settings().is_empty());
        assert_eq!(c.crl.urls.len(), 1);
    }

    /// Every setting `vanthu config --print` shows (the defaults, as TOML)
    /// is named in the example file, which parses.
    #[test]
    fn the_example_config_names_every_setting() {
        fn keys(table: &toml::Table, prefix: &str, out: &mut Vec<String>) {
            for (k, v) in table {
                match v {
                    toml::Value::Table(t) if k != "numbering" => {
                        keys(t, &format!("{prefix}{k}."), out)
                    }
                    _ => out.push(format!("{prefix}{k}")),
                }
            }
        }
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("ops/vanthu.example.toml");
        let text = std::fs::read_to_string(path).unwrap();
        let example: toml::Table = toml::from_str(&text).unwrap();
        let defaults: toml::Table =
            toml::from_str(&toml::to_string(&Config::default()).unwrap()).unwrap();
        let (mut named, mut all) = (Vec::new(), Vec::new());
        keys(&example, "", &mut named);
        keys(&defaults, "", &mut all);
        let missing: Vec<_> = all.iter().filter(|k| !named.contains(k)).collect();
        assert!(
            missing.is_empty(),
            "not in ops/vanthu.example.toml: {missing:?}"
        );
        // A value that is not the default says what the default is.
        let mut section = String::new();
        for line in text.lines() {
            let line = line.trim();
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.split(']').next()) {
                section = format!("{name}.");
                continue;
            }
            let Some((key, rest)) = line.split_once(" = ") else {
                continue;
            };
            if line.starts_with('#') {
                continue;
            }
            let path = format!("{section}{}", key.trim());
            let value = rest.split(" #").next().unwrap().trim();
            let get = |t: &toml::Table| -> Option<toml::Value> {
                let mut here = toml::Value::Table(t.clone());
                for part in path.split('.') {
                    here = here.as_table()?.get(part)?.clone();
                }
                Some(here)
            };
            let stated: toml::Value = toml::from_str::<toml::Table>(&format!("v = {value}"))
                .unwrap()
                .remove("v")
                .unwrap();
            if get(&defaults) != Some(stated) {
                assert!(
                    rest.contains("default"),
                    "{path} = {value} is not the default and its comment does not say the default"
                );
            }
        }
        // And the printed form reads back as the same configuration.
        let printed: Config =
            toml::from_str(&toml::to_string_pretty(&Config::default()).unwrap()).unwrap();
        assert_eq!(printed, Config::default());
    }

    #[test]
    fn bad_values_are_named() {
        let mut c = Config::default();
        let err = c
            .apply_env(|k| (k == "VANTHU_WORKERS").then(|| "many".to_string()))
            .unwrap_err();
        assert!(err.to_string().contains("VANTHU_WORKERS"), "{err}");
        assert!(
            toml::from_str::<Config>("colour = 1").is_err(),
            "unknown keys are refused"
        );
    }
}
