//! `vigil tsdb import`: backfill, as promtool's `tsdb create-blocks-from`
//! (which is accepted as an alias).
//!
//! - `openmetrics FILE|-`: OpenMetrics text with timestamps, in any order
//!   and of any age, written as aligned blocks ([`openmetrics`]).
//! - `rules --start ... FILES`: recording rules evaluated over a past range
//!   by range queries to a Prometheus-compatible server ([`rules`]).
//!
//! Both write through [`BlockImporter`]: into a staging directory inside
//! the data directory, moved into place only when everything succeeded, so
//! a bad line or a failed query leaves nothing behind.

mod openmetrics;
mod rules;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use vigil_tsdb::block::BlockMeta;
use vigil_tsdb::import::{compatible_block_duration, BlockImporter, ImportOptions, ImportSummary};

/// Three hours in ms: the span Prometheus's head covers, and promtool's
/// default end of a rules backfill (that long ago).
const THREE_HOURS: i64 = 3 * 3_600_000;

/// Prometheus's (and vigil's) default time retention, for the warning.
const DEFAULT_RETENTION: i64 = 15 * 24 * 3_600_000;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum ImportCommand {
    /// Write blocks from OpenMetrics text (a file, or `-` for stdin).
    /// Every sample needs a timestamp; order and age do not matter.
    Openmetrics(OpenMetricsArgs),
    /// Write blocks of recording rules evaluated over a past range, by
    /// range queries to a Prometheus-compatible API (vigil or Prometheus).
    Rules(RulesArgs),
}

/// Flags both imports take.
#[derive(Debug, clap::Args)]
pub(crate) struct CommonArgs {
    /// The data directory the blocks go to.
    #[arg(long = "storage.tsdb.path", default_value = "data")]
    storage_path: PathBuf,
    /// The longest range a block may span (2h, 6h, 18h, 54h, ... as
    /// promtool: the largest of those at most this long).
    #[arg(long = "max-block-duration", value_parser = crate::duration_flag, default_value = "2h")]
    max_block_duration: i64,
    /// Samples held in memory before a batch of blocks is written (16 bytes
    /// each); batches of the same range are merged at the end.
    #[arg(long = "max-samples-in-memory", default_value_t = 10_000_000)]
    max_samples_in_memory: usize,
    /// No progress bar, no list of blocks.
    #[arg(short, long)]
    quiet: bool,
    /// Times as dates and sizes with units in the list of blocks.
    #[arg(short = 'r', long = "human-readable")]
    human_readable: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct OpenMetricsArgs {
    /// The OpenMetrics file, or `-` for standard input.
    input: PathBuf,
    /// The data directory (promtool's positional output directory; the
    /// same as --storage.tsdb.path).
    output_dir: Option<PathBuf>,
    /// A label added to every series (`--label name=value`, repeatable).
    #[arg(long = "label", value_parser = label_flag)]
    labels: Vec<(String, String)>,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, clap::Args)]
pub(crate) struct RulesArgs {
    /// The rule files; their recording rules are backfilled (alerting
    /// rules are skipped).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The Prometheus-compatible API the rules are evaluated against.
    #[arg(long, default_value = "http://localhost:9090")]
    url: String,
    /// The first evaluation time: RFC 3339 or a Unix timestamp.
    #[arg(long, value_parser = time_flag)]
    start: i64,
    /// The last evaluation time: RFC 3339 or a Unix timestamp (default:
    /// three hours ago, as promtool).
    #[arg(long, value_parser = time_flag)]
    end: Option<i64>,
    /// The data directory (promtool's flag; the same as
    /// --storage.tsdb.path).
    #[arg(long = "output-dir")]
    output_dir: Option<PathBuf>,
    /// The interval of groups that set none.
    #[arg(long = "eval-interval", value_parser = crate::duration_flag, default_value = "60s")]
    eval_interval: i64,
    /// How long one range query may take.
    #[arg(long = "query-timeout", value_parser = crate::duration_flag, default_value = "2m")]
    query_timeout: i64,
    /// A file holding a bearer token to send with each query (for a vigil
    /// or a proxy that asks for one; vigil's flag). Basic auth goes in the
    /// URL (`http://user:password@host:9090`).
    #[arg(long = "http.bearer-token-file")]
    bearer_token_file: Option<PathBuf>,
    #[command(flatten)]
    common: CommonArgs,
}

/// `name=value`.
fn label_flag(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not name=value"))?;
    if !vigil_model::labels::is_valid_label_name(k, vigil_model::ValidationScheme::Utf8)
        || k.is_empty()
    {
        return Err(format!("{k:?} is not a valid label name"));
    }
    Ok((k.to_string(), v.to_string()))
}

/// RFC 3339 or Unix seconds (fractions allowed), as promtool's times.
fn time_flag(s: &str) -> Result<i64, String> {
    if let Ok(secs) = s.parse::<f64>() {
        if secs.is_finite() && secs.abs() < 1e15 {
            return Ok((secs * 1000.0).round() as i64);
        }
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|d| d.timestamp_millis())
        .map_err(|e| format!("{s:?} is neither RFC 3339 nor a Unix timestamp: {e}"))
}

fn now_ms() -> i64 {
    vigil_model::time::now_ms()
}

/// Runs an import command.
pub(crate) fn run(cmd: ImportCommand) -> ExitCode {
    let result = match cmd {
        ImportCommand::Openmetrics(a) => import_openmetrics(a),
        ImportCommand::Rules(a) => import_rules(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigil: tsdb import: {e:#}");
            eprintln!("vigil: nothing was written");
            ExitCode::FAILURE
        }
    }
}

fn importer(dir: &Path, c: &CommonArgs) -> anyhow::Result<BlockImporter> {
    let opts = ImportOptions::default()
        .with_block_duration(compatible_block_duration(c.max_block_duration))
        .with_max_samples_in_memory(c.max_samples_in_memory);
    Ok(BlockImporter::new(dir, opts)?)
}

fn bar(quiet: bool, len: Option<u64>, template: &str) -> ProgressBar {
    let pb = match len {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    if quiet {
        pb.set_draw_target(ProgressDrawTarget::hidden());
    } else {
        pb.set_draw_target(ProgressDrawTarget::stderr_with_hz(4));
    }
    if let Ok(style) = ProgressStyle::with_template(template) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb
}

fn import_openmetrics(a: OpenMetricsArgs) -> anyhow::Result<()> {
    let dir = a
        .output_dir
        .clone()
        .unwrap_or_else(|| a.common.storage_path.clone());
    let stdin = a.input.as_os_str() == "-";
    let mut input: Box<dyn Read> = if stdin {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(
            std::fs::File::open(&a.input)
                .map_err(|e| anyhow::anyhow!("opening {}: {e}", a.input.display()))?,
        )
    };
    let size = if stdin {
        None
    } else {
        std::fs::metadata(&a.input).ok().map(|m| m.len())
    };
    let template = if size.is_some() {
        "{spinner} [{elapsed_precise}] [{wide_bar}] {bytes}/{total_bytes} ({eta}) {msg}"
    } else {
        "{spinner} [{elapsed_precise}] {bytes} read {msg}"
    };
    let pb = bar(a.common.quiet, size, template);
    let started = Instant::now();
    let mut imp = importer(&dir, &a.common)?;
    let result = openmetrics::import(&mut input, &mut imp, &a.labels, &mut |bytes, samples| {
        pb.set_position(bytes);
        pb.set_message(format!("{samples} samples"));
    });
    if let Err(e) = result {
        pb.abandon();
        anyhow::bail!("{}: {e}", a.input.display());
    }
    pb.set_message("writing blocks");
    let in_use = imp.target_in_use();
    let summary = imp.commit()?;
    pb.finish_and_clear();
    report(&dir, &summary, in_use, started.elapsed(), &a.common);
    Ok(())
}

fn import_rules(a: RulesArgs) -> anyhow::Result<()> {
    let dir = a
        .output_dir
        .clone()
        .unwrap_or_else(|| a.common.storage_path.clone());
    let end = a.end.unwrap_or_else(|| now_ms() - THREE_HOURS);
    if a.start > end {
        anyhow::bail!(
            "--start ({}) is after --end ({})",
            fmt_time(a.start, true),
            fmt_time(end, true)
        );
    }
    let cfg = rules::RulesBackfill {
        url: a.url.clone(),
        start: a.start,
        end,
        files: a.files.clone(),
        eval_interval: a.eval_interval.max(1),
        block_duration: compatible_block_duration(a.common.max_block_duration),
        timeout: Duration::from_millis(a.query_timeout.max(1) as u64),
        bearer_token: match &a.bearer_token_file {
            Some(p) => Some(
                std::fs::read_to_string(p)
                    .map_err(|e| {
                        anyhow::anyhow!("reading --http.bearer-token-file {}: {e}", p.display())
                    })?
                    .trim_end_matches(['\n', '\r'])
                    .to_string(),
            ),
            None => None,
        },
    };
    let pb = bar(
        a.common.quiet,
        Some(0),
        "{spinner} [{elapsed_precise}] [{wide_bar}] {pos}/{len} queries {msg}",
    );
    let started = Instant::now();
    let mut imp = importer(&dir, &a.common)?;
    let report_ = rules::backfill(&cfg, &mut imp, &mut |done, total, samples| {
        pb.set_length(total as u64);
        pb.set_position(done as u64);
        pb.set_message(format!("{samples} samples"));
    });
    let report_ = match report_ {
        Ok(r) => r,
        Err(e) => {
            pb.abandon();
            return Err(e);
        }
    };
    pb.set_message("writing blocks");
    let in_use = imp.target_in_use();
    let summary = imp.commit()?;
    pb.finish_and_clear();
    for w in &report_.warnings {
        eprintln!("vigil: warning from the server: {w}");
    }
    if report_.skipped_alerts > 0 {
        eprintln!(
            "vigil: {} alerting rule(s) skipped: only recording rules are backfilled",
            report_.skipped_alerts
        );
    }
    println!(
        "{} recording rule(s) evaluated from {} to {} with {} range queries to {}",
        report_.rules,
        fmt_time(a.start, true),
        fmt_time(end, true),
        report_.queries,
        a.url
    );
    report(&dir, &summary, in_use, started.elapsed(), &a.common);
    Ok(())
}

fn fmt_time(ms: i64, human: bool) -> String {
    if !human {
        return ms.to_string();
    }
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}

fn dir_bytes(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.filter_map(|e| e.ok())
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n}B")
    } else {
        format!("{v:.1}{}", UNITS[u])
    }
}

/// The list of blocks (promtool's columns), the totals, and warnings about
/// what the running server will do with the data.
fn report(dir: &Path, s: &ImportSummary, in_use: bool, took: Duration, c: &CommonArgs) {
    let h = c.human_readable;
    if !c.quiet && !s.blocks.is_empty() {
        println!(
            "{:<26}  {:>24}  {:>24}  {:>8}  {:>11}  {:>10}  {:>10}  {:>10}",
            "BLOCK ULID",
            "MIN TIME",
            "MAX TIME",
            "DURATION",
            "NUM SAMPLES",
            "NUM CHUNKS",
            "NUM SERIES",
            "SIZE"
        );
        for m in &s.blocks {
            print_block(dir, m, h);
        }
    }
    let secs = took.as_secs_f64().max(1e-9);
    println!(
        "imported {} samples of {} series into {} block(s) in {} in {:.2}s ({:.0} samples/s)",
        s.samples,
        s.series,
        s.blocks.len(),
        dir.display(),
        secs,
        s.samples as f64 / secs
    );
    if s.replaced > 0 {
        eprintln!(
            "vigil: warning: {} sample(s) repeated a timestamp of their series with another value; the later value was kept",
            s.replaced
        );
    }
    if in_use {
        eprintln!(
            "vigil: {} is in use by a running vigil: it opens the new blocks at its next maintenance round (within a minute)",
            dir.display()
        );
    }
    if let Some((min, max)) = s.time_range {
        let now = now_ms();
        if max > now - THREE_HOURS {
            eprintln!(
                "vigil: warning: samples less than 3h old were imported; a vigil that starts on {} accepts new samples only after the end of the newest block ({})",
                dir.display(),
                fmt_time(s.blocks.iter().map(|b| b.max_time).max().unwrap_or(max), true)
            );
        }
        if min < now - DEFAULT_RETENTION {
            eprintln!(
                "vigil: note: samples older than 15 days were imported; vigil deletes blocks past its retention (--storage.tsdb.retention.time, 15d by default) at its next maintenance round"
            );
        }
    }
}

fn print_block(dir: &Path, m: &BlockMeta, h: bool) {
    let size = dir_bytes(&dir.join(m.ulid.to_string()));
    println!(
        "{:<26}  {:>24}  {:>24}  {:>8}  {:>11}  {:>10}  {:>10}  {:>10}",
        m.ulid.to_string(),
        fmt_time(m.min_time, h),
        fmt_time(m.max_time, h),
        vigil_model::format_duration(m.max_time - m.min_time),
        m.stats.num_samples,
        m.stats.num_chunks,
        m.stats.num_series,
        if h {
            human_bytes(size)
        } else {
            size.to_string()
        }
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_promtool() {
        assert_eq!(time_flag("1700000000"), Ok(1_700_000_000_000));
        assert_eq!(time_flag("1700000000.5"), Ok(1_700_000_000_500));
        assert_eq!(time_flag("2023-11-14T22:13:20Z"), Ok(1_700_000_000_000));
        assert!(time_flag("yesterday").is_err());
        assert!(time_flag("1e300").is_err());
    }

    #[test]
    fn labels_parse() {
        assert_eq!(
            label_flag("env=prod"),
            Ok(("env".to_string(), "prod".to_string()))
        );
        assert!(label_flag("nope").is_err());
        assert!(label_flag("=x").is_err());
    }
}
