//! The `vigil` binary: a thin command-line layer over the vigil crates.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// vigil: metrics collection, storage, PromQL, rules and alerting in one binary.
#[derive(Debug, Parser)]
#[command(name = "vigil", version, about, long_about = None, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Without a command, vigil serves; it takes the server's flags directly,
    /// as `prometheus` does, so existing service units work unchanged.
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default when no command is given).
    Serve(ServeArgs),
    /// Validate configuration and rule files without starting.
    Check {
        #[command(subcommand)]
        what: CheckCommand,
    },
    /// Inspect and manage the on-disk TSDB.
    Tsdb {
        #[command(subcommand)]
        what: TsdbCommand,
    },
}

/// Flags of `vigil serve`, named as Prometheus names them.
#[derive(Debug, Clone, clap::Args)]
struct ServeArgs {
    /// The configuration file (prometheus.yml-compatible; not read yet).
    #[arg(long = "config.file", visible_alias = "config")]
    config: Option<PathBuf>,
    /// Where the data lives.
    #[arg(long = "storage.tsdb.path", default_value = "data")]
    storage_path: PathBuf,
    /// The address to serve the API on.
    #[arg(long = "web.listen-address", default_value = "127.0.0.1:9090")]
    listen: std::net::SocketAddr,
}

impl Default for ServeArgs {
    fn default() -> Self {
        ServeArgs {
            config: None,
            storage_path: PathBuf::from("data"),
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 9090)),
        }
    }
}

#[derive(Debug, Subcommand)]
enum CheckCommand {
    /// Validate a configuration file.
    Config {
        /// The file to check.
        file: PathBuf,
    },
    /// Validate rule files.
    Rules {
        /// The files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum TsdbCommand {
    /// Print blocks, series, samples, bytes per sample and cardinality.
    Analyze {
        /// The data directory (stop vigil first, or analyze a snapshot).
        dir: PathBuf,
        /// How many items to list in each cardinality table.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
}

/// A command whose capability has not been built yet. It says so plainly and
/// exits with status 2 rather than pretending to work.
fn not_available(what: &str, issue: u32) -> ExitCode {
    eprintln!("vigil: `{what}` is not available yet (it arrives with issue #{issue}).");
    ExitCode::from(2)
}

/// Runs the server until SIGINT or SIGTERM.
fn serve(args: ServeArgs) -> ExitCode {
    if let Some(c) = &args.config {
        eprintln!(
            "vigil: --config.file {} is not available yet: configuration files arrive with issue #5; \
             vigil serve runs with its built-in defaults and the flags for now.",
            c.display()
        );
        return ExitCode::from(2);
    }
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .try_init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vigil: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let opts = vigil_server::ServerOptions {
        listen: args.listen,
        data_dir: args.storage_path,
        ..vigil_server::ServerOptions::default()
    };
    rt.block_on(async move {
        let server = match vigil_server::start(opts).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("vigil: {e}");
                return ExitCode::FAILURE;
            }
        };
        eprintln!(
            "vigil: serving the Prometheus API on http://{}",
            server.addr()
        );
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("vigil: installing signal handler: {e}");
                    return ExitCode::FAILURE;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        match server.shutdown().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("vigil: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve(cli.serve)) {
        Command::Serve(args) => serve(args),
        Command::Check {
            what: CheckCommand::Config { .. },
        } => not_available("check config", 5),
        Command::Check {
            what: CheckCommand::Rules { .. },
        } => not_available("check rules", 7),
        Command::Tsdb {
            what: TsdbCommand::Analyze { dir, limit },
        } => match vigil_tsdb::analyze::analyze(&dir, limit) {
            Ok(report) => {
                print!("{report}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("vigil: tsdb analyze {}: {e}", dir.display());
                ExitCode::FAILURE
            }
        },
    }
}
