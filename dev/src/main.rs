//! The `vanthu-dev` command line: development tools kept out of the
//! service's binary (development keys, benchmarks, the demo story).
//!
//! Must never: contain logic beyond argument handling and printing, or be
//! installed where the service runs in production.

// Development keys are anchored at the developer's present.
#![allow(clippy::disallowed_methods)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use vanthu_dev::bench::{self, StoreBenchArgs};

/// vanthu-dev — development tools for vanthu: the development PKI, the
/// benchmarks, the demo story. Not for production.
#[derive(Parser)]
#[command(name = "vanthu-dev", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate the development PKI (CAs, officials' and seal certificates,
    /// CRL, JWT key) from the demo organisation, reproducibly. For
    /// development and tests only: the keys are derived from a public seed.
    DevKeys {
        /// The demo organisation.
        #[arg(long, default_value = "keys-dev/org.toml")]
        org: PathBuf,
        /// Where to write the keys and certificates (and a copy of the
        /// organisation file, so the directory is a complete keys_dir).
        #[arg(long, default_value = "keys-dev")]
        out: PathBuf,
        /// The instant validity periods are derived from (RFC 3339); default
        /// now. The committed keys-dev/ records its anchor in manifest.json.
        #[arg(long)]
        anchor: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// Measure performance against a baseline run in the same command.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Play the demo story against a running server (started with
    /// VANTHU_DEV_CLOCK=true): a report signed KT. and issued, a plan issued
    /// to three departments, received, assigned, replied (one late).
    Demo {
        /// The server's base URL.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Development keys (tokens and the officials' signing keys).
        #[arg(long, default_value = "./keys-dev", env = "VANTHU_KEYS_DIR")]
        keys_dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Event-log appends vs. raw RocksDB sync writes of the same size.
    Store(StoreBenchArgs),
    /// Fill an empty data directory with realistic documents (for load and
    /// projection measurements; development keys, never production).
    Seed(bench::SeedArgs),
    /// Inbox and deadline query latency over HTTP, against /healthz.
    Queries(bench::QueriesArgs),
    /// Raw Ed25519 verify_strict per second, on every core (prints JSON).
    Verify(bench::VerifyArgs),
    /// Signature submissions against a running development server:
    /// documents prepared, then every client-side signature submitted at
    /// once (prints JSON).
    Signatures(vanthu_dev::load::SignaturesArgs),
    /// The mixed workload against a running development server: whole
    /// document flows (draft, route, sign, issue, receive, assign, reply)
    /// on many connections (prints JSON).
    Flows(vanthu_dev::load::FlowsArgs),
}

fn main() -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("VANTHU_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let runtime = || tokio::runtime::Runtime::new();
    match cli.command {
        Command::DevKeys { org, out, anchor } => {
            let anchor = anchor.unwrap_or_else(chrono::Utc::now);
            let (files, manifest) = vanthu_dev::devkeys::generate_dir(&org, &out, anchor)?;
            println!(
                "wrote {} files to {} ({} officials, {} seals); development use only",
                files.len(),
                out.display(),
                manifest.officials.len(),
                manifest.seals.len()
            );
        }
        Command::Demo { url, keys_dir } => {
            let mut out = std::io::stdout();
            println!("vanthu demo against {url}");
            runtime()?.block_on(async {
                vanthu_dev::demo::Demo::new(&url, &keys_dir, &mut out)?
                    .run()
                    .await
            })?;
        }
        Command::Bench(BenchCommand::Seed(args)) => {
            std::fs::create_dir_all(&args.dir)?;
            let log = vanthu::store::RocksLog::open(&args.dir, Default::default())?;
            let seeded = runtime()?
                .block_on(async {
                    if args.add {
                        vanthu_dev::seed::add(&log, &args.keys_dir, args.events).await
                    } else {
                        vanthu_dev::seed::seed(&log, &args.keys_dir, args.events).await
                    }
                })
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "seeded {} documents, {} events in {:.1} s ({:.0} events/s)",
                seeded.documents,
                seeded.events,
                seeded.seconds,
                seeded.events as f64 / seeded.seconds.max(1e-9)
            );
        }
        Command::Bench(BenchCommand::Queries(args)) => {
            let report = runtime()?.block_on(bench::queries(&args))?;
            if args.json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!("{}", report.table());
            }
        }
        Command::Bench(BenchCommand::Signatures(args)) => {
            let report = runtime()?.block_on(vanthu_dev::load::signatures(&args))?;
            println!("{}", serde_json::to_string(&report)?);
        }
        Command::Bench(BenchCommand::Flows(args)) => {
            let report = runtime()?.block_on(vanthu_dev::load::flows(&args))?;
            println!("{}", serde_json::to_string(&report)?);
        }
        Command::Bench(BenchCommand::Verify(args)) => {
            println!("{}", serde_json::to_string(&bench::verify(&args))?);
        }
        Command::Bench(BenchCommand::Store(args)) => {
            let report = bench::store(&args)?;
            if args.json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print!("{}", report.table());
            }
        }
    }
    Ok(())
}
