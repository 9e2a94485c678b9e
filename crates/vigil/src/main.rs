//! The `vigil` binary: a thin command-line layer over the vigil crates.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// vigil: metrics collection, storage, PromQL, rules and alerting in one binary.
#[derive(Debug, Parser)]
#[command(name = "vigil", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default when no command is given).
    Serve {
        /// The configuration file (prometheus.yml-compatible).
        #[arg(long = "config", visible_alias = "config.file")]
        config: Option<PathBuf>,
    },
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve { config: None }) {
        Command::Serve { .. } => not_available("serve", 5),
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
