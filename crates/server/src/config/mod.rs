//! The configuration file: a `prometheus.yml`-compatible YAML document.
//!
//! Every key is either understood or rejected. An unknown key, or a section
//! vigil does not run (`remote_read`), is an error that names the key and
//! the line of the file, never something silently ignored.
//!
//! Loading is pure: [`Config::load`] and [`Config::parse`] only read and
//! validate. Applying a configuration to a running server is the server's job
//! (see `Server::reload`), which keeps the old configuration whenever a new
//! one fails to load.

mod units;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer};
use serde::Deserialize;
use vigil_model::{Labels, LabelsBuilder};

pub use units::{format_bytes, parse_bytes};

/// Why a configuration file was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error, as text.
        reason: String,
    },
    /// The file is not valid YAML or does not match the schema.
    #[error("{}", located(.path, *.line, *.column, .reason))]
    Invalid {
        /// The file, or `<config>` for text without one.
        path: PathBuf,
        /// 1-based line of the offending key or value, when known.
        line: Option<usize>,
        /// 1-based column, when known.
        column: Option<usize>,
        /// What is wrong, naming the key.
        reason: String,
    },
}

fn located(path: &Path, line: Option<usize>, column: Option<usize>, reason: &str) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!("{}:{l}:{c}: {reason}", path.display()),
        (Some(l), None) => format!("{}:{l}: {reason}", path.display()),
        _ => format!("{}: {reason}", path.display()),
    }
}

/// A parsed, validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The `global` section, with Prometheus's defaults filled in.
    pub global: GlobalConfig,
    /// The `scrape_configs` section, validated.
    pub scrape_configs: Vec<vigil_scrape::ScrapeConfig>,
    /// The `probes` section (vigil's own HTTP health probes), validated.
    pub probes: Vec<vigil_scrape::probe::ProbeConfig>,
    /// The `storage` section.
    pub storage: StorageConfig,
    /// `rule_files` as written (globs).
    pub rule_files: Vec<String>,
    /// The rule files the globs match now, relative to the configuration
    /// file's directory, sorted.
    pub rule_file_paths: Vec<PathBuf>,
    /// The `alerting` section.
    pub alerting: AlertingConfig,
    /// vigil's `notify:` section (Alertmanager's schema), if any.
    pub notify: Option<NotifySection>,
    /// The `remote_write` section, validated.
    pub remote_write: Vec<crate::remote_send::RemoteWriteConfig>,
    /// `dashboards` as written (globs of YAML dashboard files for the web UI).
    pub dashboards: Vec<String>,
    /// The dashboard files the globs match now, sorted.
    pub dashboard_paths: Vec<PathBuf>,
    /// The text the configuration was read from (served by
    /// `/api/v1/status/config`).
    pub source: String,
}

/// The `global` section.
#[derive(Debug, Clone, PartialEq)]
pub struct GlobalConfig {
    /// How often targets are scraped by default, in milliseconds (1m).
    pub scrape_interval: i64,
    /// How long a scrape may take by default, in milliseconds (10s).
    pub scrape_timeout: i64,
    /// How often rules are evaluated by default, in milliseconds (1m).
    pub evaluation_interval: i64,
    /// Labels added to series and alerts when they leave vigil
    /// (federation, remote write, notifications).
    pub external_labels: Labels,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        GlobalConfig {
            scrape_interval: 60_000,
            scrape_timeout: 10_000,
            evaluation_interval: 60_000,
            external_labels: Labels::empty(),
        }
    }
}

/// vigil's `notify:` section: inline, or `notify: {file: alertmanager.yml}`.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifySection {
    /// The notifier's configuration.
    pub config: vigil_notify::Config,
    /// Its text (for `/api/v2/status`).
    pub text: String,
}

/// The `alerting` section: where alerts go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertingConfig {
    /// `alerting.alertmanagers`.
    pub alertmanagers: Vec<AlertmanagerConfig>,
}

/// One `alerting.alertmanagers` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertmanagerConfig {
    /// `http` or `https`.
    pub scheme: String,
    /// Prefix of the API path (`/` by default).
    pub path_prefix: String,
    /// Timeout of one request, ms (10s).
    pub timeout: i64,
    /// The Alertmanagers (`host:port`), from `static_configs`.
    pub targets: Vec<String>,
}

impl AlertmanagerConfig {
    /// The v2 alerts endpoint of `target`.
    pub fn url(&self, target: &str) -> String {
        format!(
            "{}://{}{}/api/v2/alerts",
            self.scheme,
            target,
            self.path_prefix.trim_end_matches('/')
        )
    }
}

/// The `storage` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StorageConfig {
    /// `storage.tsdb.out_of_order_time_window`, in milliseconds.
    pub out_of_order_time_window: Option<i64>,
    /// `storage.tsdb.retention.time`, in milliseconds. Overrides the flag.
    pub retention_time: Option<i64>,
    /// `storage.tsdb.retention.size`, in bytes. Overrides the flag.
    pub retention_size: Option<u64>,
    /// `storage.tsdb.retention_rules` (vigil's): shorter retention for the
    /// series some selectors match, in order of precedence.
    pub retention_rules: vigil_tsdb::retention::RetentionRules,
}

impl Default for Config {
    /// The configuration of an empty file: Prometheus's defaults.
    fn default() -> Self {
        Config {
            global: GlobalConfig::default(),
            scrape_configs: Vec::new(),
            probes: Vec::new(),
            storage: StorageConfig::default(),
            rule_files: Vec::new(),
            rule_file_paths: Vec::new(),
            alerting: AlertingConfig::default(),
            remote_write: Vec::new(),
            dashboards: Vec::new(),
            dashboard_paths: Vec::new(),
            notify: None,
            source: String::new(),
        }
    }
}

impl Config {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Config::parse(&text, path)
    }

    /// Parses and validates `text`; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let invalid = |e: serde_yaml_ng::Error| {
            let loc = e.location();
            let reason = strip_location(&e.to_string());
            // A section refused by `NotYet` is reported at the end of its
            // value by the YAML reader; point at its key instead.
            if let Some(key) = reason
                .strip_prefix('`')
                .and_then(|r| r.split_once("` is not supported yet"))
                .map(|(k, _)| k)
            {
                if let Some(line) = find_key_line(text, key) {
                    return ConfigError::Invalid {
                        path: path.to_path_buf(),
                        line: Some(line),
                        column: None,
                        reason,
                    };
                }
            }
            ConfigError::Invalid {
                path: path.to_path_buf(),
                line: loc.as_ref().map(|l| l.line()),
                column: loc.as_ref().map(|l| l.column()),
                reason,
            }
        };
        // An empty file is a valid, empty configuration, as in Prometheus.
        let raw: RawConfig = if text.trim().is_empty() {
            RawConfig::default()
        } else {
            serde_yaml_ng::from_str(text).map_err(invalid)?
        };
        let at = |key: &str, reason: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            line: find_key_line(text, key),
            column: None,
            reason,
        };

        let g = raw.global.unwrap_or_default();
        let mut global = GlobalConfig::default();
        if let Some(d) = g.scrape_interval {
            global.scrape_interval = d.0;
        }
        if let Some(d) = g.scrape_timeout {
            global.scrape_timeout = d.0;
        } else if global.scrape_interval < global.scrape_timeout {
            // Prometheus shortens the default timeout to a shorter interval.
            global.scrape_timeout = global.scrape_interval;
        }
        if let Some(d) = g.evaluation_interval {
            global.evaluation_interval = d.0;
        }
        if global.scrape_interval <= 0 {
            return Err(at(
                "scrape_interval",
                "global.scrape_interval must be greater than 0".into(),
            ));
        }
        if global.scrape_timeout > global.scrape_interval {
            return Err(at(
                "scrape_timeout",
                format!(
                    "global.scrape_timeout {} is greater than global.scrape_interval {}",
                    vigil_model::format_duration(global.scrape_timeout),
                    vigil_model::format_duration(global.scrape_interval)
                ),
            ));
        }
        if global.evaluation_interval <= 0 {
            return Err(at(
                "evaluation_interval",
                "global.evaluation_interval must be greater than 0".into(),
            ));
        }
        if let Some(ext) = g.external_labels {
            let mut b = LabelsBuilder::new();
            for (k, v) in &ext {
                if !vigil_model::labels::is_valid_label_name(k, vigil_model::ValidationScheme::Utf8)
                    || k.starts_with("__")
                {
                    return Err(at(
                        k,
                        format!("global.external_labels: {k:?} is not a valid label name"),
                    ));
                }
                if v.is_empty() {
                    continue;
                }
                b.set(k, v);
            }
            global.external_labels = b.build();
        }

        let mut scrape_configs = raw.scrape_configs.unwrap_or_default();
        // Relative paths (file_sd files, CA and secret files) are relative to
        // the configuration file's directory, as in Prometheus.
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            for c in &mut scrape_configs {
                c.resolve_paths(dir);
            }
        }
        if let Err(e) = vigil_scrape::config::validate_scrape_configs(
            &scrape_configs,
            &global.scrape_defaults(),
        ) {
            let line = scrape_job_of(&e)
                .and_then(|job| find_job_line(text, job))
                .or_else(|| find_key_line(text, "scrape_configs"));
            return Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                line,
                column: None,
                reason: format!("scrape_configs: {e}"),
            });
        }

        let mut probes = raw.probes.unwrap_or_default();
        if let Err(e) = vigil_scrape::probe::validate_probes(&probes) {
            let line = e
                .probe()
                .and_then(|p| find_name_line(text, p))
                .or_else(|| find_key_line(text, "probes"));
            return Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                line,
                column: None,
                reason: format!("probes: {e}"),
            });
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            for p in &mut probes {
                p.resolve_paths(dir);
            }
        }

        let mut storage = StorageConfig::default();
        if let Some(s) = raw.storage.and_then(|s| s.tsdb) {
            storage.out_of_order_time_window = s.out_of_order_time_window.map(|d| d.0);
            if let Some(r) = s.retention {
                storage.retention_time = r.time.map(|d| d.0).filter(|t| *t > 0);
                storage.retention_size = r.size.map(|b| b.0).filter(|s| *s > 0);
            }
            storage.retention_rules =
                retention_rules(s.retention_rules.unwrap_or_default(), text, path)?;
        }

        let rule_files = raw.rule_files.unwrap_or_default();
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let rule_file_paths =
            vigil_rules::file::expand_globs(&rule_files, base).map_err(|e| at("rule_files", e))?;
        let dashboards = raw.dashboards.unwrap_or_default();
        let dashboard_paths = vigil_rules::file::expand_globs(&dashboards, base)
            .map_err(|e| at("dashboards", e.replacen("rule_files", "dashboards", 1)))?;

        let mut alerting = AlertingConfig::default();
        for am in raw.alerting.map(|a| a.alertmanagers).unwrap_or_default() {
            if let Some(v) = &am.api_version {
                if v != "v2" {
                    return Err(at(
                        "api_version",
                        format!(
                            "alerting.alertmanagers: api_version {v:?} is not supported; use v2"
                        ),
                    ));
                }
            }
            let scheme = am.scheme.unwrap_or_else(|| "http".into());
            if scheme != "http" && scheme != "https" {
                return Err(at(
                    "scheme",
                    format!("alerting.alertmanagers: unknown scheme {scheme:?}"),
                ));
            }
            alerting.alertmanagers.push(AlertmanagerConfig {
                scheme,
                path_prefix: am.path_prefix.unwrap_or_default(),
                timeout: am.timeout.map_or(10_000, |d| d.0),
                targets: am
                    .static_configs
                    .into_iter()
                    .flat_map(|s| s.targets)
                    .collect(),
            });
        }

        let mut remote_write = raw.remote_write.unwrap_or_default();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            for r in &mut remote_write {
                r.resolve_paths(dir);
            }
        }
        crate::remote_send::config::validate_remote_writes(&remote_write)
            .map_err(|e| at("remote_write", e))?;

        let notify = match raw.notify {
            None => None,
            Some(v) => Some(
                parse_notify(v, path.parent().filter(|d| !d.as_os_str().is_empty()))
                    .map_err(|e| at("notify", e))?,
            ),
        };

        Ok(Config {
            notify,
            global,
            scrape_configs,
            probes,
            storage,
            rule_files,
            rule_file_paths,
            alerting,
            remote_write,
            dashboards,
            dashboard_paths,
            source: text.to_string(),
        })
    }

    /// The built-in configuration vigil runs without `--config.file`: it
    /// scrapes its own `/metrics` at `listen` every 15 seconds.
    pub fn embedded_default(listen: &str) -> Config {
        let text = default_config_text(listen);
        // The text is ours and fixed; a failure here is a programming error
        // caught by the unit test below, so fall back to an empty config
        // rather than panic.
        Config::parse(&text, Path::new("<embedded default>")).unwrap_or_else(|e| {
            tracing::error!(error = %e, "the embedded default configuration is invalid");
            Config {
                source: text,
                ..Config::default()
            }
        })
    }
}

/// The text of the embedded default configuration for a listen address.
pub fn default_config_text(listen: &str) -> String {
    format!(
        "# vigil's built-in configuration, used when no --config.file is given.\n\
         global:\n  scrape_interval: 15s\n  evaluation_interval: 15s\n\
         scrape_configs:\n  - job_name: vigil\n    static_configs:\n      - targets: [\"{listen}\"]\n"
    )
}

impl GlobalConfig {
    /// The defaults scrape configs fall back on.
    pub fn scrape_defaults(&self) -> vigil_scrape::GlobalDefaults {
        vigil_scrape::GlobalDefaults {
            scrape_interval: vigil_scrape::config::PromDuration(self.scrape_interval),
            scrape_timeout: vigil_scrape::config::PromDuration(self.scrape_timeout),
        }
    }
}

/// The job a scrape config error is about, if it names one.
fn scrape_job_of(e: &vigil_scrape::config::ConfigError) -> Option<&str> {
    use vigil_scrape::config::ConfigError as E;
    match e {
        E::DuplicateJobName(job)
        | E::ZeroInterval { job }
        | E::ZeroTimeout { job }
        | E::TimeoutExceedsInterval { job, .. }
        | E::InvalidTarget { job, .. }
        | E::InvalidLabelName { job, .. }
        | E::Auth { job, .. } => Some(job),
        _ => None,
    }
}

/// The 1-based line of the last `job_name: <job>` (the last, so that a
/// duplicate is reported at its second occurrence).
fn find_job_line(text: &str, job: &str) -> Option<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            let t = l.trim_start().trim_start_matches("- ").trim_start();
            t.strip_prefix("job_name:")
                .map(|v| v.trim().trim_matches(|c| c == '"' || c == '\'') == job)
                .unwrap_or(false)
        })
        .map(|(i, _)| i + 1)
        .last()
}

/// The 1-based line of the last `name: <name>` (a probe's entry).
fn find_name_line(text: &str, name: &str) -> Option<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            let t = l.trim_start().trim_start_matches("- ").trim_start();
            t.strip_prefix("name:")
                .is_some_and(|v| v.trim().trim_matches(|c| c == '"' || c == '\'') == name)
        })
        .map(|(i, _)| i + 1)
        .last()
}

/// Reads the `notify:` section: Alertmanager's schema inline, or
/// `{file: path}` naming an `alertmanager.yml` (relative to `config_dir`,
/// the configuration file's directory; `None`: the working directory).
///
/// Relative paths in the section (`templates`, every `*_file`, CA files)
/// are made absolute here, once: against the notify file's directory, as
/// Alertmanager resolves them, or `config_dir` for an inline section.
fn parse_notify(
    v: serde_yaml_ng::Value,
    config_dir: Option<&Path>,
) -> Result<NotifySection, String> {
    let file = match &v {
        serde_yaml_ng::Value::Mapping(m) if m.len() == 1 => m.get("file").map(|f| {
            f.as_str()
                .map(str::to_string)
                .ok_or("notify.file must be a path")
        }),
        _ => None,
    };
    let (config, text) = match file {
        Some(f) => {
            let f = f?;
            let path = config_dir.unwrap_or(Path::new(".")).join(&f);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("notify.file {}: {e}", path.display()))?;
            let mut c: vigil_notify::Config = serde_yaml_ng::from_str(&text).map_err(|e| {
                let loc = e
                    .location()
                    .map(|l| format!(":{}", l.line()))
                    .unwrap_or_default();
                format!(
                    "{}{loc}: {}",
                    path.display(),
                    strip_location(&e.to_string())
                )
            })?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                c.resolve_paths(dir);
            }
            (c, text)
        }
        None => {
            let text = serde_yaml_ng::to_string(&v).map_err(|e| e.to_string())?;
            let mut c: vigil_notify::Config = serde_yaml_ng::from_value(v)
                .map_err(|e| format!("notify: {}", strip_location(&e.to_string())))?;
            if let Some(dir) = config_dir {
                c.resolve_paths(dir);
            }
            (c, text)
        }
    };
    config.validate().map_err(|e| format!("notify: {e}"))?;
    Ok(NotifySection { config, text })
}

/// serde_yaml_ng appends " at line L column C" to its messages; the error
/// carries the position separately, so the message is kept without it.
fn strip_location(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// The 1-based line where `key:` first appears as a YAML key (or, for
/// `"job_name: x"`, where that exact text appears).
fn find_key_line(text: &str, key: &str) -> Option<usize> {
    let wanted = if key.contains(':') {
        key.to_string()
    } else {
        format!("{key}:")
    };
    text.lines()
        .position(|l| {
            let t = l.trim_start().trim_start_matches("- ");
            t.starts_with(&wanted)
                || t.starts_with(&format!("\"{key}\":"))
                || t.starts_with(&format!("'{key}':"))
        })
        .map(|i| i + 1)
}

// ---------------------------------------------------------------------------
// The raw schema as serde reads it.

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
// The `NotYet` fields exist to reject content; nothing reads them.
#[allow(dead_code)]
struct RawConfig {
    global: Option<RawGlobal>,
    scrape_configs: Option<Vec<vigil_scrape::ScrapeConfig>>,
    probes: Option<Vec<vigil_scrape::probe::ProbeConfig>>,
    storage: Option<RawStorage>,
    rule_files: Option<Vec<String>>,
    alerting: Option<RawAlerting>,
    notify: Option<serde_yaml_ng::Value>,
    dashboards: Option<Vec<String>>,
    remote_write: Option<Vec<crate::remote_send::RemoteWriteConfig>>,
    #[serde(default)]
    remote_read: NotYet<RemoteRead>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGlobal {
    scrape_interval: Option<PromDuration>,
    scrape_timeout: Option<PromDuration>,
    evaluation_interval: Option<PromDuration>,
    external_labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlerting {
    #[serde(default)]
    alertmanagers: Vec<RawAlertmanager>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlertmanager {
    scheme: Option<String>,
    path_prefix: Option<String>,
    timeout: Option<PromDuration>,
    api_version: Option<String>,
    #[serde(default)]
    static_configs: Vec<RawStaticTargets>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStaticTargets {
    #[serde(default)]
    targets: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    tsdb: Option<RawTsdb>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTsdb {
    out_of_order_time_window: Option<PromDuration>,
    retention: Option<RawRetention>,
    retention_rules: Option<Vec<RawRetentionRule>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    time: Option<PromDuration>,
    size: Option<ByteSize>,
}

/// One entry of `storage.tsdb.retention_rules`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetentionRule {
    /// Series selectors; a series matching any of them is governed.
    matchers: Vec<String>,
    retention: PromDuration,
}

/// Checks and builds `storage.tsdb.retention_rules`. An error names the
/// rule (by position), the selector and its line.
fn retention_rules(
    raw: Vec<RawRetentionRule>,
    text: &str,
    path: &Path,
) -> Result<vigil_tsdb::retention::RetentionRules, ConfigError> {
    let section = find_key_line(text, "retention_rules");
    let invalid = |line: Option<usize>, reason: String| ConfigError::Invalid {
        path: path.to_path_buf(),
        line,
        column: None,
        reason,
    };
    let mut rules = Vec::with_capacity(raw.len());
    for (i, r) in raw.into_iter().enumerate() {
        let name = format!("storage.tsdb.retention_rules[{i}]");
        let mut selectors = Vec::with_capacity(r.matchers.len());
        for m in &r.matchers {
            let line = section.and_then(|from| {
                text.lines()
                    .enumerate()
                    .skip(from)
                    .find(|(_, l)| l.contains(m.as_str()))
                    .map(|(n, _)| n + 1)
            });
            let sel = vigil_promql::parse_series_selector(m)
                .map_err(|e| invalid(line.or(section), format!("{name}: matcher {m:?}: {e}")))?;
            selectors.push(sel);
        }
        let rule = vigil_tsdb::retention::RetentionRule::new(selectors, r.retention.0)
            .map_err(|e| invalid(section, format!("{name}: {e}")))?;
        rules.push(rule);
    }
    Ok(vigil_tsdb::retention::RetentionRules::new(rules))
}

/// A duration in Prometheus's syntax (`15s`, `1h30m`), in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromDuration(pub i64);

impl<'de> Deserialize<'de> for PromDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        vigil_model::parse_duration(&s)
            .map(PromDuration)
            .map_err(de::Error::custom)
    }
}

/// A size in Prometheus's syntax (`512MB`, `1GB`, base 2), in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_bytes(&s).map(ByteSize).map_err(de::Error::custom)
    }
}

/// What a section that vigil does not run yet says when it is used.
trait Pending {
    const KEY: &'static str;
    const WHY: &'static str;
}

struct RemoteRead;
impl Pending for RemoteRead {
    const KEY: &'static str = "remote_read";
    const WHY: &'static str = "reading from remote storage is not supported; \
                               vigil serves remote read at /api/v1/read";
}

/// A section vigil parses but does not run yet: accepted only when empty, an
/// error naming the section (with its line, from the YAML position)
/// otherwise.
struct NotYet<P>(std::marker::PhantomData<P>);

impl<P> Default for NotYet<P> {
    fn default() -> Self {
        NotYet(std::marker::PhantomData)
    }
}

impl<P> fmt::Debug for NotYet<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NotYet")
    }
}

impl<'de, P: Pending> Deserialize<'de> for NotYet<P> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_yaml_ng::Value::deserialize(d)?;
        let empty = match &v {
            serde_yaml_ng::Value::Null => true,
            serde_yaml_ng::Value::Sequence(s) => s.is_empty(),
            serde_yaml_ng::Value::Mapping(m) => m.is_empty(),
            _ => false,
        };
        if empty {
            Ok(NotYet::default())
        } else {
            Err(de::Error::custom(format!(
                "`{}` is not supported yet: {}",
                P::KEY,
                P::WHY
            )))
        }
    }
}

#[cfg(test)]
mod tests;
