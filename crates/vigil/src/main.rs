//! The `vigil` binary: a thin command-line layer over the vigil crates.

mod import;
mod logging;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use vigil_server::config::{self, Config};

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
    Serve(Box<ServeArgs>),
    /// Validate configuration and rule files without starting.
    Check {
        #[command(subcommand)]
        what: CheckCommand,
    },
    /// Run rule unit tests (promtool's `test rules` format).
    Test {
        #[command(subcommand)]
        what: TestCommand,
    },
    /// Inspect and manage the on-disk TSDB.
    Tsdb {
        #[command(subcommand)]
        what: TsdbCommand,
    },
    /// Helpers for the web config file.
    Web {
        #[command(subcommand)]
        what: WebCommand,
    },
}

#[derive(Debug, Subcommand)]
enum WebCommand {
    /// Print the bcrypt hash of a password read from standard input (one
    /// line), for `basic_auth_users`.
    HashPassword {
        /// The bcrypt cost (work factor), 4 to 31.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(4..=31))]
        cost: u32,
    },
}

/// `vigil web hash-password`: the password comes from stdin so that it
/// stays out of the shell history and the process list.
fn hash_password(cost: u32) -> ExitCode {
    let mut line = String::new();
    if let Err(e) = std::io::stdin().read_line(&mut line) {
        eprintln!("vigil: reading the password: {e}");
        return ExitCode::FAILURE;
    }
    let pw = line.trim_end_matches(['\n', '\r']);
    if pw.is_empty() {
        eprintln!("vigil: the password is empty");
        return ExitCode::FAILURE;
    }
    match bcrypt::hash(pw, cost) {
        Ok(h) => {
            println!("{h}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vigil: hashing: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A duration flag in Prometheus's syntax (`15d`, `2m`, `1h30m`), in ms.
fn duration_flag(s: &str) -> Result<i64, String> {
    vigil_model::parse_duration(s).map_err(|e| e.to_string())
}

/// A size flag in Prometheus's syntax (`512MB`), in bytes.
fn bytes_flag(s: &str) -> Result<u64, String> {
    config::parse_bytes(s)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Logfmt,
    Json,
}

/// Flags of `vigil serve`, named as Prometheus names them.
#[derive(Debug, Clone, clap::Args)]
struct ServeArgs {
    /// The configuration file (prometheus.yml-compatible). Without it vigil
    /// runs its built-in configuration, which scrapes vigil itself.
    #[arg(long = "config.file", visible_alias = "config")]
    config: Option<PathBuf>,
    /// Where the data lives.
    #[arg(long = "storage.tsdb.path", default_value = "data")]
    storage_path: PathBuf,
    /// How long to keep samples (e.g. 15d). Defaults to 15d when neither
    /// this nor the size retention is set. 0 disables time retention.
    #[arg(long = "storage.tsdb.retention.time", alias = "storage.tsdb.retention", value_parser = duration_flag)]
    retention_time: Option<i64>,
    /// The most bytes blocks may use (e.g. 50GB). 0 disables it.
    #[arg(long = "storage.tsdb.retention.size", value_parser = bytes_flag)]
    retention_size: Option<u64>,
    /// The web config file: TLS, basic-auth users (bcrypt), bearer tokens
    /// and roles (Prometheus's format plus vigil's additions).
    #[arg(long = "web.config.file")]
    web_config_file: Option<PathBuf>,
    /// Where admin actions are recorded, one JSON line each (default
    /// <storage.tsdb.path>/audit.log; "" for the log only).
    // A String, not a PathBuf: clap's path parser refuses the empty value.
    #[arg(long = "web.audit-log-file")]
    audit_log_file: Option<String>,
    /// The most series the storage holds in memory (0: no limit). New series
    /// beyond it are refused with an error; existing ones keep taking samples.
    #[arg(long = "storage.tsdb.max-series", default_value_t = 0)]
    max_series: usize,
    /// The most series one metric name may have (0: no limit).
    #[arg(long = "storage.tsdb.max-series-per-metric", default_value_t = 0)]
    max_series_per_metric: usize,
    /// The most labels a new series may have, its name included.
    #[arg(long = "storage.tsdb.max-labels-per-series", default_value_t = 0)]
    max_labels_per_series: usize,
    /// The longest label name of a new series, in bytes (0: no limit).
    #[arg(long = "storage.tsdb.max-label-name-length", default_value_t = 0)]
    max_label_name_length: usize,
    /// The longest label value of a new series, in bytes (0: no limit).
    #[arg(long = "storage.tsdb.max-label-value-length", default_value_t = 0)]
    max_label_value_length: usize,
    /// The address to serve the API on.
    #[arg(long = "web.listen-address", default_value = "127.0.0.1:9090")]
    listen: std::net::SocketAddr,
    /// Serve the admin API (/api/v1/admin/tsdb/...).
    #[arg(long = "web.enable-admin-api")]
    enable_admin_api: bool,
    /// Allow reload and shutdown over HTTP (POST /-/reload, /-/quit).
    #[arg(long = "web.enable-lifecycle")]
    enable_lifecycle: bool,
    /// The URL vigil is reached at, for links in alerts (default
    /// http://<listen address>).
    #[arg(long = "web.external-url")]
    external_url: Option<String>,
    /// The path prefix of every HTTP route, the web UI's included (default:
    /// the path of --web.external-url).
    #[arg(long = "web.route-prefix")]
    route_prefix: Option<String>,
    /// The largest remote-write request accepted, compressed (vigil's own
    /// flag).
    #[arg(long = "web.remote-write-max-bytes", value_parser = bytes_flag, default_value = "32MB")]
    max_write_bytes: u64,
    /// The most samples one remote-read request may return (0: no limit).
    #[arg(
        long = "storage.remote.read-sample-limit",
        default_value_t = 50_000_000
    )]
    remote_read_sample_limit: usize,
    /// The longest a query may run.
    #[arg(long = "query.timeout", value_parser = duration_flag, default_value = "2m")]
    query_timeout: i64,
    /// The most samples a query may hold in memory at once.
    #[arg(long = "query.max-samples", default_value_t = 50_000_000)]
    query_max_samples: usize,
    /// How far back a query looks for the latest sample of a series.
    #[arg(long = "query.lookback-delta", value_parser = duration_flag, default_value = "5m")]
    lookback_delta: i64,
    /// The most queries that run at once; more wait in a queue.
    #[arg(long = "query.max-concurrency", default_value_t = 20)]
    query_max_concurrency: usize,
    /// Store recording-rule results, ALERTS and ALERTS_FOR_STATE with the
    /// external labels (vigil's own flag; `=false` stores them without, as
    /// Prometheus does).
    #[arg(long = "rules.store-external-labels", default_value_t = true, action = clap::ArgAction::Set)]
    rules_store_external_labels: bool,
    /// The least severe log level written.
    #[arg(long = "log.level", value_enum, default_value = "info")]
    log_level: LogLevel,
    /// The log line format.
    #[arg(long = "log.format", value_enum, default_value = "logfmt")]
    log_format: LogFormat,
    /// Accepted for compatibility and does nothing: vigil's remote-write
    /// receiver is always on.
    #[arg(long = "web.enable-remote-write-receiver")]
    enable_remote_write_receiver: bool,
    /// Accepted for compatibility and does nothing: vigil's WAL format is
    /// its own.
    #[arg(long = "storage.tsdb.wal-compression", num_args = 0..=1, default_missing_value = "true")]
    wal_compression: Option<String>,
    /// Accepted for compatibility and does nothing: vigil has no consoles.
    #[arg(long = "web.console.templates")]
    console_templates: Option<String>,
    /// Accepted for compatibility and does nothing: vigil has no consoles.
    #[arg(long = "web.console.libraries")]
    console_libraries: Option<String>,
}

impl ServeArgs {
    /// The flags and their values as `/api/v1/status/flags` shows them.
    fn as_map(&self) -> BTreeMap<String, String> {
        let d = vigil_model::format_duration;
        let mut m = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            m.insert(k.to_string(), v);
        };
        put(
            "config.file",
            self.config
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        );
        put("storage.tsdb.path", self.storage_path.display().to_string());
        put(
            "storage.tsdb.retention.time",
            self.retention_time.map(d).unwrap_or_else(|| "0s".into()),
        );
        put(
            "storage.tsdb.retention.size",
            self.retention_size
                .map(config::format_bytes)
                .unwrap_or_else(|| "0B".into()),
        );
        put("storage.tsdb.max-series", self.max_series.to_string());
        put(
            "storage.tsdb.max-series-per-metric",
            self.max_series_per_metric.to_string(),
        );
        put(
            "storage.tsdb.max-labels-per-series",
            self.max_labels_per_series.to_string(),
        );
        put(
            "storage.tsdb.max-label-name-length",
            self.max_label_name_length.to_string(),
        );
        put(
            "storage.tsdb.max-label-value-length",
            self.max_label_value_length.to_string(),
        );
        put("web.listen-address", self.listen.to_string());
        put(
            "web.config.file",
            self.web_config_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        );
        put(
            "web.audit-log-file",
            self.audit_log_file.clone().unwrap_or_default(),
        );
        put("web.enable-admin-api", self.enable_admin_api.to_string());
        put("web.enable-lifecycle", self.enable_lifecycle.to_string());
        put(
            "web.external-url",
            self.external_url.clone().unwrap_or_default(),
        );
        put(
            "web.route-prefix",
            self.route_prefix.clone().unwrap_or_default(),
        );
        put(
            "web.enable-remote-write-receiver",
            self.enable_remote_write_receiver.to_string(),
        );
        put(
            "web.remote-write-max-bytes",
            config::format_bytes(self.max_write_bytes),
        );
        put(
            "storage.remote.read-sample-limit",
            self.remote_read_sample_limit.to_string(),
        );
        put("query.timeout", d(self.query_timeout));
        put("query.max-samples", self.query_max_samples.to_string());
        put("query.lookback-delta", d(self.lookback_delta));
        put(
            "query.max-concurrency",
            self.query_max_concurrency.to_string(),
        );
        put(
            "rules.store-external-labels",
            self.rules_store_external_labels.to_string(),
        );
        put(
            "log.level",
            format!("{:?}", self.log_level).to_ascii_lowercase(),
        );
        put(
            "log.format",
            format!("{:?}", self.log_format).to_ascii_lowercase(),
        );
        m
    }
}

#[derive(Debug, Subcommand)]
enum CheckCommand {
    /// Validate a configuration file.
    Config {
        /// The files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Validate rule files.
    Rules {
        /// The files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Validate web config files (--web.config.file): TLS, users, tokens, roles.
    WebConfig {
        /// The files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum TestCommand {
    /// Run rule unit test files.
    Rules {
        /// The test files.
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
    /// Backfill: write blocks from OpenMetrics text or from recording rules
    /// evaluated over a past range (promtool's `tsdb create-blocks-from`).
    #[command(subcommand, visible_alias = "create-blocks-from")]
    Import(import::ImportCommand),
}

/// Checks rule files as promtool does; true when all are valid.
fn check_rule_files(files: &[PathBuf]) -> bool {
    let mut ok = true;
    for f in files {
        println!("Checking {}", f.display());
        match vigil_rules::load_rule_file(f) {
            Ok(rf) => {
                let n: usize = rf.groups.iter().map(|g| g.rules.len()).sum();
                println!("  SUCCESS: {n} rules found");
            }
            Err(errors) => {
                ok = false;
                println!("  FAILED:");
                for e in errors {
                    println!("{e}");
                }
            }
        }
        println!();
    }
    ok
}

/// `vigil test rules`: promtool's output shape, status 1 on any failure.
fn test_rules(files: &[PathBuf]) -> ExitCode {
    let mut failed = false;
    for f in files {
        println!("Unit Testing:  {}", f.display());
        match vigil_rules::unittest::run_test_file(f) {
            Ok(failures) if failures.is_empty() => println!("  SUCCESS\n"),
            Ok(failures) => {
                failed = true;
                println!("  FAILED:");
                for x in failures {
                    println!("    {x}");
                }
                println!();
            }
            Err(e) => {
                failed = true;
                println!("  FAILED:\n    {e}\n");
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `vigil check rules`: promtool's output shape, status 1 on any failure.
fn check_rules(files: &[PathBuf]) -> ExitCode {
    if check_rule_files(files) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `vigil check web-config`: promtool's output shape; the TLS files are
/// read too.
fn check_web_config(files: &[PathBuf]) -> ExitCode {
    let mut failed = false;
    for f in files {
        let checked = vigil_server::auth::WebConfig::load(f).and_then(|c| match &c.tls {
            Some(t) => vigil_server::auth::tls::server_config(t).map(|_| ()),
            None => Ok(()),
        });
        match checked {
            Ok(()) => println!("{} SUCCESS", f.display()),
            Err(e) => {
                failed = true;
                println!("{} FAILED: {e}", f.display());
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `vigil check config`: promtool's output shape, status 1 on any failure.
/// The rule files the configuration names are checked too.
fn check_config(files: &[PathBuf]) -> ExitCode {
    let mut failed = false;
    for f in files {
        println!("Checking {}", f.display());
        match Config::load(f) {
            Ok(c) => {
                println!(
                    "  SUCCESS: {} is valid prometheus config file syntax",
                    f.display()
                );
                println!();
                if !check_rule_files(&c.rule_file_paths) {
                    failed = true;
                }
            }
            Err(e) => {
                failed = true;
                println!("  FAILED: {e}");
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Runs the server until SIGINT, SIGTERM or `/-/quit`; SIGHUP reloads.
fn serve(args: ServeArgs) -> ExitCode {
    logging::init(
        match args.log_level {
            LogLevel::Debug => tracing::Level::DEBUG,
            LogLevel::Info => tracing::Level::INFO,
            LogLevel::Warn => tracing::Level::WARN,
            LogLevel::Error => tracing::Level::ERROR,
        },
        args.log_format == LogFormat::Json,
    );
    let config = match &args.config {
        Some(path) => match Config::load(path) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "loading the configuration failed");
                eprintln!("vigil: {e}");
                return ExitCode::FAILURE;
            }
        },
        None => Config::embedded_default(&args.listen.to_string()),
    };
    for (used, flag) in [
        (
            args.enable_remote_write_receiver,
            "--web.enable-remote-write-receiver (the receiver is always on)",
        ),
        (
            args.wal_compression.is_some(),
            "--storage.tsdb.wal-compression",
        ),
        (
            args.console_templates.is_some() || args.console_libraries.is_some(),
            "--web.console.* (vigil has no consoles)",
        ),
    ] {
        if used {
            tracing::info!(flag, "flag accepted for compatibility; it has no effect");
        }
    }
    // Prometheus: 15d unless a time or a size retention is given; 0 disables.
    let storage = vigil_tsdb::Options {
        retention_time: match (args.retention_time, args.retention_size) {
            (Some(0), _) => None,
            (Some(t), _) => Some(t),
            (None, Some(_)) => None,
            (None, None) => Some(15 * 24 * 3_600_000),
        },
        retention_size: args.retention_size.filter(|s| *s > 0),
        head: vigil_tsdb::HeadOptions {
            limits: vigil_tsdb::Limits {
                max_series: args.max_series,
                max_series_per_metric: args.max_series_per_metric,
                max_labels: args.max_labels_per_series,
                max_label_name_len: args.max_label_name_length,
                max_label_value_len: args.max_label_value_length,
            },
            ..vigil_tsdb::HeadOptions::default()
        },
        ..vigil_tsdb::Options::default()
    };
    let engine = vigil_promql::EngineOptions {
        lookback_delta: args.lookback_delta,
        max_samples: args.query_max_samples,
        timeout: Duration::from_millis(args.query_timeout.max(0) as u64),
        max_concurrent: args.query_max_concurrency.max(1),
        ..vigil_promql::EngineOptions::default()
    };
    let opts = vigil_server::ServerOptions {
        listen: args.listen,
        data_dir: args.storage_path.clone(),
        storage,
        engine,
        max_write_bytes: usize::try_from(args.max_write_bytes).unwrap_or(usize::MAX),
        flags: args.as_map(),
        enable_admin_api: args.enable_admin_api,
        enable_lifecycle: args.enable_lifecycle,
        external_url: args.external_url.clone(),
        route_prefix: args.route_prefix.clone(),
        rules_store_external_labels: args.rules_store_external_labels,
        web_config_file: args.web_config_file.clone(),
        audit_log_file: args.audit_log_file.clone().map(PathBuf::from),
        remote_read_sample_limit: args.remote_read_sample_limit,
        config_file: args.config.clone(),
        config,
        ..vigil_server::ServerOptions::default()
    };
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
    rt.block_on(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (mut term, mut hup) = match (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) {
            (Ok(t), Ok(h)) => (t, h),
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("vigil: installing signal handlers: {e}");
                return ExitCode::FAILURE;
            }
        };
        let server = match vigil_server::start(opts).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "vigil could not start");
                eprintln!("vigil: {e}");
                return ExitCode::FAILURE;
            }
        };
        eprintln!(
            "vigil: serving the Prometheus API on http://{}",
            server.addr()
        );
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = term.recv() => break,
                _ = server.quit_requested() => break,
                _ = hup.recv() => {
                    // A failed reload is logged by the server and keeps the
                    // running configuration.
                    let _ = server.reload().await;
                }
            }
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
    match cli.command.unwrap_or(Command::Serve(Box::new(cli.serve))) {
        Command::Serve(args) => serve(*args),
        Command::Check {
            what: CheckCommand::Config { files },
        } => check_config(&files),
        Command::Check {
            what: CheckCommand::Rules { files },
        } => check_rules(&files),
        Command::Check {
            what: CheckCommand::WebConfig { files },
        } => check_web_config(&files),
        Command::Test {
            what: TestCommand::Rules { files },
        } => test_rules(&files),
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
        Command::Tsdb {
            what: TsdbCommand::Import(cmd),
        } => import::run(cmd),
        Command::Web {
            what: WebCommand::HashPassword { cost },
        } => hash_password(cost),
    }
}
