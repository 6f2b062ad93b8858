//! The `vanthu` command line: parses arguments and calls the library.
//!
//! Must never: contain logic beyond argument handling and printing.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use vanthu::bench::{self, StoreBenchArgs};
use vanthu::config::Config;

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
    /// records decodable, leaf hashes intact. Exit code 0 only when all pass.
    Check {
        /// The data directory to check.
        #[arg(long, default_value = "./data")]
        data_dir: PathBuf,
    },
    /// Generate the development PKI (CAs, officials' and seal certificates,
    /// CRL, JWT key) from the demo organisation, reproducibly. For
    /// development and tests only: the keys are derived from a public seed.
    DevKeys {
        /// The demo organisation.
        #[arg(long, default_value = "keys-dev/org.toml")]
        org: PathBuf,
        /// Where to write the keys and certificates.
        #[arg(long, default_value = "keys-dev")]
        out: PathBuf,
    },
    /// Measure performance against a baseline run in the same command.
    #[command(subcommand)]
    Bench(BenchCommand),
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
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Event-log appends vs. raw RocksDB sync writes of the same size.
    Store(StoreBenchArgs),
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

fn init_tracing(filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => {
            let mut config = Config::load(args.config.as_deref())?;
            if let Some(d) = args.data_dir {
                config.data_dir = d;
            }
            if let Some(l) = args.listen {
                config.listen = l;
            }
            init_tracing(&config.log);
            serve(config)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { data_dir } => {
            init_tracing("warn");
            let report = vanthu::store::check(&data_dir)?;
            println!(
                "ok: {} records, positions 1..={} gapless, every leaf hash intact",
                report.verified, report.head
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::DevKeys { org, out } => {
            let demo = vanthu::devkeys::DemoOrg::load(&org)?;
            let (files, manifest) = vanthu::devkeys::generate(&demo)?;
            vanthu::devkeys::write(&out, &files)?;
            println!(
                "wrote {} files to {} ({} officials, {} seals); development use only",
                files.len(),
                out.display(),
                manifest.officials.len(),
                manifest.seals.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(BenchCommand::Store(args)) => {
            init_tracing("warn");
            let report = bench::store(&args)?;
            if args.json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print!("{}", report.table());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[tokio::main]
async fn serve(config: Config) -> anyhow::Result<()> {
    let service = vanthu::app::start(&config)?;
    // Tests and scripts read this line to learn the port.
    println!("vanthu listening on http://{}", service.addr);
    tracing::info!(addr = %service.addr, data_dir = %config.data_dir.display(), "serving");
    service.run().await?;
    Ok(())
}
