//! The `vanthu` command line: parses arguments and calls the library.
//!
//! Must never: contain logic beyond argument handling and printing.

// The command line stands at the operator's present: a token's `iat`, a
// signature's, new development keys' anchor, the first admin's appointment.
#![allow(clippy::disallowed_methods)]

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use vanthu::config::Config;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Prints a line to stdout; a closed pipe (`vanthu verify … | head`) ends
/// the process quietly as SIGPIPE would, instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(141);
            }
            eprintln!("error: writing to stdout: {e}");
            std::process::exit(1);
        }
    }};
}

/// vanthu — document management and e-signature for provincial agencies.
///
/// Every document is an event stream in an append-only, tamper-evident log
/// kept in RocksDB. Start with `vanthu serve`: it keeps its data in ./data and
/// listens on http://127.0.0.1:8080 unless told otherwise.
#[derive(Parser)]
#[command(name = "vanthu", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service (data in ./data, http://127.0.0.1:8080 by default).
    Serve(ServeArgs),
    /// Verify every record of a stopped service's log: positions gapless,
    /// records decodable, leaf hashes intact; the Merkle tree recomputed
    /// and compared with every stored hash and the newest checkpoint. Exit
    /// code 0 only when all pass.
    Check {
        /// The data directory to check.
        #[arg(long, default_value = "./data")]
        data_dir: PathBuf,
    },
    /// Sign a payload as an official's client would: prints a compact JWS
    /// (EdDSA, x5c chain) over the payload's canonical JSON.
    Sign {
        /// The signer's private key (PKCS#8 PEM).
        #[arg(long)]
        key: PathBuf,
        /// The signer's certificate (PEM).
        #[arg(long)]
        cert: PathBuf,
        /// Further chain certificates (PEM), issuing CA first.
        #[arg(long)]
        chain: Vec<PathBuf>,
        /// The signing payload (JSON, e.g. from GET /v1/documents/{id}/signing-payload).
        #[arg(long)]
        payload: PathBuf,
    },
    /// Verify an issued document's bundle offline: both signatures, the
    /// chain to your trust anchors, revocation, and the signer's authority at
    /// the signing instant. Prints the report; exit code 0 only when all pass.
    Verify {
        /// The bundle (JSON, from GET /v1/documents/{id}/bundle).
        bundle: PathBuf,
        /// Trust anchors (PEM, one or more root certificates).
        #[arg(long)]
        trust: PathBuf,
        /// The log's note verifier key (`name+keyid+base64`, from
        /// GET /v1/log/key), or a file holding it: checks the checkpoint's
        /// signature. Without it the inclusion proofs are checked against an
        /// unauthenticated checkpoint, and the report says so.
        #[arg(long)]
        log_key: Option<String>,
    },
    /// Mint a development API token (EdDSA JWT, issuer vanthu-dev, audience
    /// vanthu) for an official, or for an integration client (registered in
    /// the organisation) with --client and --scope.
    Token {
        /// Official id (e.g. svhtt-pgd-1; see keys-dev/org.toml).
        #[arg(long, conflicts_with = "client")]
        official: Option<String>,
        /// Integration client name.
        #[arg(long)]
        client: Option<String>,
        /// Scopes, e.g. feed:read (repeatable).
        #[arg(long)]
        scope: Vec<String>,
        /// Hours until the token expires (the service accepts at most
        /// auth.max_token_hours, 12 by default).
        #[arg(long, default_value_t = 8)]
        hours: i64,
        /// The token signing key (PKCS#8 PEM).
        #[arg(long, default_value = "keys-dev/jwt/jwt.key")]
        key: PathBuf,
    },
    /// Operator commands on a stopped service's store.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// The transparency log, from outside.
    #[command(subcommand)]
    Log(LogCommand),
    /// Print the configuration `vanthu serve` would run with (defaults, then
    /// the file, then VANTHU_* variables, then these flags) as TOML. It
    /// holds no secret: keys live in the files it names. `--env` lists the
    /// variables instead: setting `a.b_c` is `VANTHU_A_B_C`.
    Config {
        /// Print the effective configuration.
        #[arg(long, required_unless_present = "env", conflicts_with = "env")]
        print: bool,
        /// List every VANTHU_* variable with the setting it sets.
        #[arg(long)]
        env: bool,
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// Take a consistent backup of the store (log, Merkle tree, checkpoints,
    /// views and document files) into OUT, a new or empty directory, with a
    /// manifest (head, last leaf hash, Merkle root, time, version). Online:
    /// a running service on DIR takes it through its socket in DIR; a
    /// stopped store is opened directly.
    Backup {
        /// The service's data directory.
        #[arg(long, default_value = "./data")]
        data_dir: PathBuf,
        /// Where the backup goes (must be new or empty).
        out: PathBuf,
    },
    /// Restore a backup beside the data directory, verify every record, the
    /// Merkle tree and that the heads match the manifest, and only then put
    /// it in place. Refused while a service runs on the target.
    Restore {
        /// The backup directory (from `vanthu backup` or POST /v1/admin/backups).
        backup: PathBuf,
        /// The data directory to create.
        #[arg(long)]
        data_dir: PathBuf,
        /// Replace a non-empty target (a stopped store: it is kept as
        /// `<data-dir>.before-restore`).
        #[arg(long)]
        force: bool,
    },
    /// Drop the projections (the views: `--projection` lists them) and
    /// replay the whole log into them, with a progress bar. The service must
    /// be stopped.
    Rebuild {
        /// The data directory.
        #[arg(long, default_value = "./data")]
        data_dir: PathBuf,
        /// Only this projection.
        #[arg(long, value_parser = projection_names())]
        projection: Option<String>,
    },
    /// Ask the service running on the data directory whether it is ready
    /// (what GET /readyz answers), through its local socket: no HTTP, no TLS,
    /// so a container's or a supervisor's health check needs nothing else.
    /// Exit code 0 only when ready.
    Probe {
        /// The service's data directory (default: the configured data_dir).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// TOML config file naming the data directory.
        #[arg(long, env = "VANTHU_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Generate development keys (CAs, officials', seal, token, log and TLS
    /// keys) into keys-dev/: runs `vanthu-dev dev-keys` (installed beside
    /// this binary) with these arguments. Never for production.
    #[command(disable_help_flag = true)]
    DevKeys {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
    /// Write the API contract generated from the code: `openapi.json` and
    /// `events/*.json` (JSON Schemas of every event payload).
    Schemas {
        #[arg(long, default_value = "./schemas")]
        out: PathBuf,
    },
}

#[derive(Args)]
struct ServeArgs {
    /// TOML config file; VANTHU_* variables and the flags below override it.
    #[arg(long, env = "VANTHU_CONFIG")]
    config: Option<PathBuf>,
    /// Where the event log lives (default ./data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:8080; port 0 picks a free port.
    #[arg(long)]
    listen: Option<String>,
    /// Development mode: allow the public development keys of keys-dev/,
    /// the demo organisation and the adjustable clock (same as dev = true).
    #[arg(long)]
    dev: bool,
}

#[derive(Subcommand)]
enum LogCommand {
    /// Check a running log as an auditor would, from cron: the newest
    /// checkpoint is signed by the log key, consistent with the last one
    /// this monitor accepted (kept in --state), and the tiles hash to its
    /// root. Exit code 0 only when all pass; non-zero with FORK, ROLLBACK,
    /// TILES or the failed check named.
    Monitor {
        /// The service's base URL (the one serving /log/checkpoint).
        #[arg(long)]
        url: String,
        /// The log's note verifier key (from GET /v1/log/key, obtained over
        /// a trusted channel), or a file holding it.
        #[arg(long)]
        log_key: String,
        /// Where the last accepted checkpoint is kept between runs (keep it
        /// where the log's operator cannot write).
        #[arg(long)]
        state: PathBuf,
        /// Download every tile and check every hash, not only those the
        /// root needs.
        #[arg(long)]
        full: bool,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Record the first admin of a new installation (the service stopped,
    /// the data directory empty or without an admin): the admin then records
    /// the organisation over HTTP (POST /v1/org/events). Optionally appoints
    /// the admin in an agency, created when missing.
    Init {
        /// The data directory (created when missing).
        #[arg(long, default_value = "./data")]
        data_dir: PathBuf,
        /// The admin's official id (the `sub` of their tokens).
        #[arg(long)]
        official: String,
        /// The admin's name (with --agency).
        #[arg(long)]
        name: Option<String>,
        /// Appoint the admin in this agency (code, e.g. UBND).
        #[arg(long)]
        agency: Option<String>,
        /// The agency's name, when it does not exist yet.
        #[arg(long)]
        agency_name: Option<String>,
        /// The admin's position in the agency.
        #[arg(long, default_value = "specialist", value_parser = parse_position)]
        position: vanthu::domain::org::Position,
        /// Why: who installs, on whose decision (kept with the events).
        #[arg(long)]
        note: String,
    },
}

fn parse_position(s: &str) -> Result<vanthu::domain::org::Position, String> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).map_err(|_| {
        "one of head, deputy_head, acting_head, office_chief, clerk, specialist".into()
    })
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The configuration `serve` runs with: defaults, the file, the
/// environment, then the flags.
fn effective(args: ServeArgs) -> anyhow::Result<Config> {
    let mut config = Config::load(args.config.as_deref())?;
    if let Some(d) = args.data_dir {
        config.data_dir = d;
    }
    if let Some(l) = args.listen {
        config.listen = l;
    }
    config.dev |= args.dev;
    Ok(config)
}

/// A note verifier key given inline (`name+keyid+base64`) or as a file.
fn verifier_key_arg(arg: &str) -> anyhow::Result<String> {
    let text = if std::path::Path::new(arg).is_file() {
        std::fs::read_to_string(arg).map_err(|e| anyhow::anyhow!("{arg}: {e}"))?
    } else {
        arg.to_owned()
    };
    let key = text.trim().to_owned();
    signed_note::StandardVerifier::new(&key).map_err(|e| {
        anyhow::anyhow!("{key:?} is not a note verifier key (name+keyid+base64): {e}")
    })?;
    Ok(key)
}

/// Log lines to stderr: pretty on a terminal, JSON objects otherwise
/// (`format` forces either), each with the fields of its spans (a
/// request's `request_id`).
fn init_tracing_as(filter: &str, format: vanthu::config::LogFormat) {
    use vanthu::config::LogFormat;
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let terminal = std::io::stderr().is_terminal();
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !terminal,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .try_init()
    } else {
        builder.with_ansi(terminal).try_init()
    };
}

/// Log lines of the short-lived commands, in the format the configuration
/// (`VANTHU_LOG_FORMAT`) asks for.
fn init_tracing(filter: &str) {
    let format = Config::load(None).map(|c| c.log_format).unwrap_or_default();
    init_tracing_as(filter, format);
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => {
            let config = effective(args)?;
            init_tracing_as(&config.log, config.log_format);
            // Variables clap reads for flags (VANTHU_CONFIG) are known too.
            let flags: Vec<String> = <Cli as clap::CommandFactory>::command()
                .get_subcommands()
                .flat_map(|c| c.get_arguments())
                .filter_map(|a| a.get_env()?.to_str().map(str::to_owned))
                .collect();
            let vars: Vec<String> = std::env::vars_os()
                .filter_map(|(k, _)| k.into_string().ok())
                .filter(|k| !flags.contains(k))
                .collect();
            for var in vanthu::config::env::unknown(vars.iter().map(String::as_str)) {
                tracing::warn!(
                    var,
                    "not a setting, ignored (`vanthu config --env` lists them)"
                );
            }
            serve(config)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { data_dir } => {
            init_tracing("warn");
            let report = vanthu::store::check(&data_dir)?;
            out!(
                "ok: {} records, positions 1..={} gapless, every leaf hash intact",
                report.tail.verified,
                report.tail.head
            );
            match report.tree {
                Some(t) => out!(
                    "ok: the Merkle tree recomputed from the leaves matches all {} stored hashes; root {}",
                    t.hashes,
                    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, t.root)
                ),
                None => out!("note: no Merkle tree yet (the service builds it at its next start)"),
            }
            match report.checkpoint {
                Some(size) => {
                    out!("ok: the newest checkpoint (tree size {size}) states the tree's root")
                }
                None => out!("note: no checkpoint signed yet"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Sign {
            key,
            cert,
            chain,
            payload,
        } => {
            let mut certs = vec![cert.as_path()];
            certs.extend(chain.iter().map(PathBuf::as_path));
            let signer = vanthu::crypto::keystore::FileKey::load(&key, &certs)?;
            let text = std::fs::read_to_string(&payload)
                .map_err(|e| anyhow::anyhow!("{}: {e}", payload.display()))?;
            let value: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("{} is not JSON: {e}", payload.display()))?;
            // Accept the server's `{payload, version}` envelope as well as the bare payload.
            let value = match value.get("payload") {
                Some(inner) if value.get("version").is_some() => inner.clone(),
                _ => value,
            };
            let bytes = vanthu::crypto::jws::canonical_json(&value)?;
            let iat = chrono::Utc::now().timestamp();
            out!(
                "{}",
                vanthu::crypto::keystore::seal_compact(&signer, &bytes, iat)?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify {
            bundle,
            trust,
            log_key,
        } => {
            let read = |p: &PathBuf| {
                std::fs::read_to_string(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))
            };
            let bundle: vanthu::bundle::Bundle = serde_json::from_str(&read(&bundle)?)
                .map_err(|e| anyhow::anyhow!("{}: not a bundle: {e}", bundle.display()))?;
            let anchors = vanthu::crypto::pki::pem_blocks(&read(&trust)?, "CERTIFICATE")?;
            let log_key = log_key.map(|k| verifier_key_arg(&k)).transpose()?;
            let report = vanthu::bundle::verify_bundle(&bundle, anchors, log_key.as_deref())?;
            out!("{}", serde_json::to_string_pretty(&report)?);
            for p in &report.log.problems {
                eprintln!("log evidence: {p}");
            }
            if log_key.is_none() {
                eprintln!(
                    "log evidence: the checkpoint's signature was not checked (give --log-key)"
                );
            }
            let verdict = if report.passed { "PASSED" } else { "FAILED" };
            eprintln!("bundle verification: {verdict}");
            Ok(if report.passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Token {
            official,
            client,
            scope,
            hours,
            key,
        } => {
            let pem = std::fs::read(&key).map_err(|e| anyhow::anyhow!("{}: {e}", key.display()))?;
            let ttl = chrono::Duration::hours(hours);
            let token = match (official, client) {
                (Some(official), _) => vanthu::http::auth::mint_official(&pem, &official, ttl)?,
                (None, Some(client)) => {
                    vanthu::http::auth::mint_client(&pem, &client, &scope, ttl)?
                }
                (None, None) => anyhow::bail!("give --official ID or --client NAME"),
            };
            out!("{token}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Rebuild {
            data_dir,
            projection,
        } => {
            init_tracing("warn");
            if !data_dir.join("CURRENT").exists() {
                anyhow::bail!("no event log in {}", data_dir.display());
            }
            // The store's settings (memory) as the service would open it.
            let options = Config::load(None)?.log_options();
            let log = vanthu::store::RocksLog::open(&data_dir, options)?;
            let done = vanthu::projections::rebuild::rebuild(
                &log,
                projection.as_deref(),
                std::io::stderr().is_terminal(),
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            for r in done {
                out!(
                    "{:>10}: {} events in {:.2} s, {:.0} events/s",
                    r.name,
                    r.events,
                    r.seconds,
                    r.events_per_second
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Log(LogCommand::Monitor {
            url,
            log_key,
            state,
            full,
        }) => {
            init_tracing("warn");
            let vkey = verifier_key_arg(&log_key)?;
            let runtime = tokio::runtime::Runtime::new()?;
            match runtime.block_on(vanthu::monitor::run(&url, &vkey, &state, full)) {
                Ok(o) => {
                    let root = base64::Engine::encode(
                        &base64::engine::general_purpose::STANDARD,
                        o.checkpoint.root,
                    );
                    match o.previous {
                        Some(p) => out!(
                            "ok: {} at {} records (root {root}), consistent with {p} seen before; {} tiles hash to the root",
                            o.checkpoint.origin, o.checkpoint.size, o.tiles
                        ),
                        None => out!(
                            "ok: {} at {} records (root {root}), first seen; {} tiles hash to the root",
                            o.checkpoint.origin, o.checkpoint.size, o.tiles
                        ),
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    Ok(ExitCode::from(2))
                }
            }
        }
        Command::Config { print, env, serve } => {
            if env {
                for s in vanthu::config::env::settings() {
                    out!("{:<40} {}", s.var, s.key());
                }
            } else if print {
                out!("{}", toml::to_string_pretty(&effective(serve)?)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Backup { data_dir, out } => {
            init_tracing("warn");
            let m = vanthu::control::backup(&data_dir, &out)?;
            out!(
                "ok: backup of {} records in {} (root {}, newest checkpoint {})",
                m.head,
                out.display(),
                m.merkle_root,
                m.checkpoint_size.map_or("none".into(), |s| s.to_string())
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Restore {
            backup,
            data_dir,
            force,
        } => {
            init_tracing("warn");
            // A service answering on the target's socket has it open; the
            // restore itself also refuses while anyone holds its lock.
            if vanthu::control::answers(&data_dir) {
                return Err(vanthu::store::backup::BackupError::InUse(
                    data_dir,
                    format!("a service answers on {}", vanthu::control::SOCKET),
                )
                .into());
            }
            let m = vanthu::store::backup::restore(&backup, &data_dir, force)?;
            out!(
                "ok: restored {} records into {}; every record, the Merkle tree and the heads match the manifest (root {})",
                m.head,
                data_dir.display(),
                m.merkle_root
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Probe { data_dir, config } => {
            let data_dir = match data_dir {
                Some(d) => d,
                None => Config::load(config.as_deref())?.data_dir,
            };
            let ready =
                vanthu::control::probe(&data_dir).map_err(|e| anyhow::anyhow!("not ready: {e}"))?;
            out!("ready: log head {}", ready["log"]["head"]);
            Ok(ExitCode::SUCCESS)
        }
        Command::DevKeys { args } => {
            // The generator stays out of the service binary (it derives
            // private keys from a public seed); this only finds it.
            let exe = std::env::current_exe()?;
            let dev = exe.with_file_name("vanthu-dev");
            if !dev.is_file() {
                anyhow::bail!(
                    "{} not found: dev-keys is in the development tools, built by \
                     `cargo build --workspace` (or `make run`)",
                    dev.display()
                );
            }
            let status = std::process::Command::new(&dev)
                .arg("dev-keys")
                .args(args)
                .status()
                .map_err(|e| anyhow::anyhow!("{}: {e}", dev.display()))?;
            Ok(if status.success() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Schemas { out } => {
            let n = vanthu::api::openapi::write(&out)?;
            out!("wrote {n} files to {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Admin(AdminCommand::Init {
            data_dir,
            official,
            name,
            agency,
            agency_name,
            position,
            note,
        }) => {
            init_tracing("warn");
            let admin = vanthu::admin::FirstAdmin {
                official,
                name,
                agency,
                agency_name,
                position,
                note,
            };
            let done = admin_init(&data_dir, &admin)?;
            out!(
                "recorded {} as the first admin ({} events, position {}); start the service and record the organisation with POST /v1/org/events",
                admin.official,
                done.events,
                done.position
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The projections' names, from the list the service runs.
fn projection_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(
        vanthu::projections::all()
            .iter()
            .map(|p| p.name())
            .collect::<Vec<_>>(),
    )
}

#[tokio::main]
async fn admin_init(
    data_dir: &std::path::Path,
    admin: &vanthu::admin::FirstAdmin,
) -> anyhow::Result<vanthu::admin::Initialised> {
    // The log this installation runs on (`store.backend`, from VANTHU_*).
    let config = Config::load(None)?;
    let jetstream = (config.store.backend == vanthu::config::Backend::Jetstream)
        .then(|| config.store.jetstream.options());
    Ok(vanthu::admin::init(data_dir, admin, chrono::Utc::now(), jetstream.as_ref()).await?)
}

#[tokio::main]
async fn serve(config: Config) -> anyhow::Result<()> {
    let service = vanthu::app::start(&config).await?;
    // Tests and scripts read this line to learn the port.
    out!("vanthu listening on {}://{}", service.scheme, service.addr);
    tracing::info!(addr = %service.addr, data_dir = %config.data_dir.display(), "serving");
    service.run().await?;
    Ok(())
}
