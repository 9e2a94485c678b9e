//! `scrape_configs`, with Prometheus's YAML key names and defaults.
//!
//! The types only need serde; the server's configuration embeds
//! `Vec<ScrapeConfig>` in its `prometheus.yml` schema and then calls
//! [`validate_scrape_configs`] with the global defaults. Every key vigil does
//! not implement is refused by `deny_unknown_fields`, so the YAML error names
//! the key and its line: nothing is accepted and silently ignored.
//! Durations use Prometheus's syntax (`30s`, `1m30s`) through
//! [`vigil_model::time::parse_duration`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use vigil_model::time::{format_duration, parse_duration};

use crate::discovery::{FileSdConfig, FileSdConfigError};
use crate::parse::Format;
use crate::relabel::RelabelConfig;

/// A duration in milliseconds, written in YAML as Prometheus writes
/// durations (`15s`, `1m`, `1h30m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PromDuration(pub i64);

impl PromDuration {
    /// The duration in milliseconds.
    pub fn as_millis(self) -> i64 {
        self.0
    }

    /// As a [`std::time::Duration`] (zero for negative values).
    pub fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_millis(u64::try_from(self.0).unwrap_or(0))
    }
}

impl fmt::Display for PromDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for PromDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s)
            .map(PromDuration)
            .map_err(serde::de::Error::custom)
    }
}

impl Serialize for PromDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(self.0))
    }
}

/// A byte size as Prometheus's `body_size_limit` takes it: `0`, or numbers
/// with units `B`, `KB`, `MB`, `GB`, `TB`, `PB`, `EB` (powers of 1024, the
/// `KiB` spellings too), such as `10MB` or `1GB512MB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Parses a size; see the type's docs.
    pub fn parse(s: &str) -> Option<ByteSize> {
        let s = s.trim();
        if s == "0" {
            return Some(ByteSize(0));
        }
        let mut rest = s;
        let mut total: u64 = 0;
        if rest.is_empty() {
            return None;
        }
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return None;
            }
            let n: u64 = rest[..digits].parse().ok()?;
            rest = &rest[digits..];
            let ulen = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            let mult: u64 = match &rest[..ulen] {
                "B" => 1,
                "KB" | "KiB" => 1 << 10,
                "MB" | "MiB" => 1 << 20,
                "GB" | "GiB" => 1 << 30,
                "TB" | "TiB" => 1 << 40,
                "PB" | "PiB" => 1 << 50,
                "EB" | "EiB" => 1 << 60,
                _ => return None,
            };
            rest = &rest[ulen..];
            total = total.checked_add(n.checked_mul(mult)?)?;
        }
        Some(ByteSize(total))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(0) => Ok(ByteSize(0)),
            Raw::N(n) => Err(serde::de::Error::custom(format!(
                "byte size {n} needs a unit (B, KB, MB, GB, ...)"
            ))),
            Raw::S(s) => ByteSize::parse(&s)
                .ok_or_else(|| serde::de::Error::custom(format!("invalid byte size {s:?}"))),
        }
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 == 0 {
            return s.serialize_str("0");
        }
        let units = [
            (1u64 << 60, "EB"),
            (1 << 50, "PB"),
            (1 << 40, "TB"),
            (1 << 30, "GB"),
            (1 << 20, "MB"),
            (1 << 10, "KB"),
            (1, "B"),
        ];
        let mut out = String::new();
        let mut rest = self.0;
        for (m, u) in units {
            if rest >= m {
                out.push_str(&format!("{}{u}", rest / m));
                rest %= m;
            }
        }
        s.serialize_str(&out)
    }
}

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// Plain HTTP (the default).
    #[default]
    Http,
    /// HTTP over TLS.
    Https,
}

impl Scheme {
    /// `"http"` or `"https"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// A `fallback_scrape_protocol`: the format used when a target sends no
/// or an unknown `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
pub enum ScrapeProtocol {
    /// `PrometheusText0.0.4`.
    #[serde(rename = "PrometheusText0.0.4")]
    PrometheusText004,
    /// `PrometheusText1.0.0`.
    #[serde(rename = "PrometheusText1.0.0")]
    PrometheusText100,
    /// `OpenMetricsText0.0.1`.
    #[serde(rename = "OpenMetricsText0.0.1")]
    OpenMetricsText001,
    /// `OpenMetricsText1.0.0`.
    #[serde(rename = "OpenMetricsText1.0.0")]
    OpenMetricsText100,
}

impl ScrapeProtocol {
    /// The parser this protocol selects.
    pub fn format(self) -> Format {
        match self {
            ScrapeProtocol::PrometheusText004 | ScrapeProtocol::PrometheusText100 => {
                Format::PrometheusText
            }
            ScrapeProtocol::OpenMetricsText001 | ScrapeProtocol::OpenMetricsText100 => {
                Format::OpenMetrics
            }
        }
    }
}

/// A group of static targets sharing labels.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StaticConfig {
    /// `host:port` addresses.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Labels given to every target of the group.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// `basic_auth`.
#[derive(Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// The user name.
    pub username: String,
    /// The password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// A file holding the password (read at every scrape).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
}

impl fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicAuth")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<secret>"))
            .field("password_file", &self.password_file)
            .finish()
    }
}

/// `authorization`: an `Authorization: <type> <credentials>` header.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    /// The scheme; `Bearer` by default.
    #[serde(rename = "type", default = "default_auth_type")]
    pub kind: String,
    /// The credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<String>,
    /// A file holding the credentials (read at every scrape).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_file: Option<PathBuf>,
}

fn default_auth_type() -> String {
    "Bearer".to_string()
}

impl fmt::Debug for Authorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authorization")
            .field("type", &self.kind)
            .field(
                "credentials",
                &self.credentials.as_ref().map(|_| "<secret>"),
            )
            .field("credentials_file", &self.credentials_file)
            .finish()
    }
}

/// `tls_config`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// A PEM file of CA certificates; when set, only these are trusted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// A PEM file of the client certificate (and its chain) to present to
    /// targets that ask for one; needs `key_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    /// The PEM file of the client certificate's private key; needs
    /// `cert_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// Skip verification of the server certificate.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

impl TlsConfig {
    /// The client certificate's PEM file and its key's, if both are set;
    /// one without the other is an error (Prometheus's messages). Checked
    /// by [`ScrapeConfig::validate`] and again where the client is built
    /// (probes have no validation of their own).
    pub fn client_cert_files(&self) -> Result<Option<(&Path, &Path)>, &'static str> {
        match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => Ok(Some((cert, key))),
            (None, None) => Ok(None),
            (Some(_), None) => Err("exactly one of key or key_file must be configured when a client certificate is configured"),
            (None, Some(_)) => Err("exactly one of cert or cert_file must be configured when a client key is configured"),
        }
    }

    /// Makes the relative `ca_file`, `cert_file` and `key_file` relative to
    /// `dir` (the configuration file's directory).
    pub fn resolve_paths(&mut self, dir: &Path) {
        for f in [&mut self.ca_file, &mut self.cert_file, &mut self.key_file]
            .into_iter()
            .flatten()
        {
            if f.is_relative() {
                *f = dir.join(&*f);
            }
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_metrics_path() -> String {
    "/metrics".to_string()
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One `scrape_configs` entry.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfig {
    /// The job name: the `job` label of every target. Required and unique.
    pub job_name: String,
    /// How often to scrape; the global `scrape_interval` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_interval: Option<PromDuration>,
    /// Per-scrape timeout; the global `scrape_timeout` when absent (capped
    /// at the interval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_timeout: Option<PromDuration>,
    /// The HTTP path; `/metrics` by default.
    #[serde(default = "default_metrics_path")]
    pub metrics_path: String,
    /// `http` (default) or `https`.
    #[serde(default)]
    pub scheme: Scheme,
    /// URL query parameters.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, Vec<String>>,
    /// Keep the target's own labels when they conflict with target labels
    /// (instead of renaming them `exported_<name>`).
    #[serde(default)]
    pub honor_labels: bool,
    /// Use the timestamps the target exposes (default true).
    #[serde(default = "default_true")]
    pub honor_timestamps: bool,
    /// Write stale markers for series with explicit timestamps too.
    #[serde(default, skip_serializing_if = "is_false")]
    pub track_timestamps_staleness: bool,
    /// Ask for and accept gzip-compressed responses (default true).
    #[serde(default = "default_true")]
    pub enable_compression: bool,
    /// Follow HTTP redirects (default true).
    #[serde(default = "default_true")]
    pub follow_redirects: bool,
    /// The format for responses without a usable `Content-Type`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_scrape_protocol: Option<ScrapeProtocol>,
    /// Fail a scrape with more samples than this after metric relabeling
    /// (0: no limit).
    #[serde(default)]
    pub sample_limit: u64,
    /// Fail a scrape with a series with more labels (0: no limit).
    #[serde(default)]
    pub label_limit: u64,
    /// Fail a scrape with a longer label name (0: no limit).
    #[serde(default)]
    pub label_name_length_limit: u64,
    /// Fail a scrape with a longer label value (0: no limit).
    #[serde(default)]
    pub label_value_length_limit: u64,
    /// Fail a scrape whose uncompressed body is larger (0: no limit).
    #[serde(default)]
    pub body_size_limit: ByteSize,
    /// HTTP basic authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    /// An `Authorization` header (bearer token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    /// TLS settings for `https`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
    /// Static target groups.
    #[serde(default)]
    pub static_configs: Vec<StaticConfig>,
    /// Target groups read from files (see [`crate::discovery`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub file_sd_configs: Vec<FileSdConfig>,
    /// Relabeling of targets before scraping.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relabel_configs: Vec<RelabelConfig>,
    /// Relabeling of scraped samples before storage.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metric_relabel_configs: Vec<RelabelConfig>,
}

impl ScrapeConfig {
    /// A config with Prometheus's defaults for `job_name` and the given
    /// static targets, for programs that build configs in code.
    pub fn new(job_name: impl Into<String>, targets: Vec<String>) -> ScrapeConfig {
        ScrapeConfig {
            job_name: job_name.into(),
            scrape_interval: None,
            scrape_timeout: None,
            metrics_path: default_metrics_path(),
            scheme: Scheme::Http,
            params: BTreeMap::new(),
            honor_labels: false,
            honor_timestamps: true,
            track_timestamps_staleness: false,
            enable_compression: true,
            follow_redirects: true,
            fallback_scrape_protocol: None,
            sample_limit: 0,
            label_limit: 0,
            label_name_length_limit: 0,
            label_value_length_limit: 0,
            body_size_limit: ByteSize(0),
            basic_auth: None,
            authorization: None,
            tls_config: None,
            static_configs: vec![StaticConfig {
                targets,
                labels: BTreeMap::new(),
            }],
            file_sd_configs: Vec::new(),
            relabel_configs: Vec::new(),
            metric_relabel_configs: Vec::new(),
        }
    }

    /// The scrape interval in milliseconds, after global defaults.
    pub fn interval_ms(&self, global: &GlobalDefaults) -> i64 {
        self.scrape_interval
            .map_or(global.scrape_interval.0, |d| d.0)
    }

    /// The scrape timeout in milliseconds, after global defaults: the global
    /// timeout, capped at this job's interval, when the job sets none.
    pub fn timeout_ms(&self, global: &GlobalDefaults) -> i64 {
        match self.scrape_timeout {
            Some(t) => t.0,
            None => global.scrape_timeout.0.min(self.interval_ms(global)),
        }
    }

    /// Makes every relative path of the config (file discovery patterns, CA,
    /// password and credentials files) relative to `dir`, the directory of
    /// the configuration file, as Prometheus does.
    pub fn resolve_paths(&mut self, dir: &Path) {
        let join = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        };
        for sd in &mut self.file_sd_configs {
            sd.resolve_paths(dir);
        }
        if let Some(t) = &mut self.tls_config {
            t.resolve_paths(dir);
        }
        if let Some(b) = &mut self.basic_auth {
            if let Some(f) = &mut b.password_file {
                join(f);
            }
        }
        if let Some(a) = &mut self.authorization {
            if let Some(f) = &mut a.credentials_file {
                join(f);
            }
        }
    }

    /// Checks one config against the global defaults, as Prometheus does when
    /// it loads `prometheus.yml`.
    pub fn validate(&self, global: &GlobalDefaults) -> Result<(), ConfigError> {
        let job = || self.job_name.clone();
        if self.job_name.is_empty() {
            return Err(ConfigError::EmptyJobName);
        }
        let interval = self.interval_ms(global);
        let timeout = self.timeout_ms(global);
        if interval <= 0 {
            return Err(ConfigError::ZeroInterval { job: job() });
        }
        if timeout <= 0 {
            return Err(ConfigError::ZeroTimeout { job: job() });
        }
        if timeout > interval {
            return Err(ConfigError::TimeoutExceedsInterval {
                job: job(),
                timeout: PromDuration(timeout),
                interval: PromDuration(interval),
            });
        }
        for sc in &self.static_configs {
            for t in &sc.targets {
                if t.is_empty() || t.contains('/') {
                    return Err(ConfigError::InvalidTarget {
                        job: job(),
                        target: t.clone(),
                    });
                }
            }
            if let Some(name) = sc.labels.keys().find(|k| k.is_empty()) {
                return Err(ConfigError::InvalidLabelName {
                    job: job(),
                    name: name.clone(),
                });
            }
        }
        for sd in &self.file_sd_configs {
            let err = |source| ConfigError::FileSd { job: job(), source };
            if sd.files.is_empty() {
                return Err(err(FileSdConfigError::NoFiles));
            }
            if sd.refresh_interval.0 <= 0 {
                return Err(err(FileSdConfigError::ZeroRefresh));
            }
            if let Some(f) = sd
                .files
                .iter()
                .find(|f| !crate::discovery::valid_pattern(f))
            {
                return Err(err(FileSdConfigError::InvalidPath(f.clone())));
            }
        }
        if let Some(b) = &self.basic_auth {
            if b.password.is_some() && b.password_file.is_some() {
                return Err(ConfigError::Auth {
                    job: job(),
                    what: "at most one of basic_auth password & password_file must be configured",
                });
            }
        }
        if let Some(t) = &self.tls_config {
            t.client_cert_files()
                .map_err(|what| ConfigError::Auth { job: job(), what })?;
        }
        if let Some(a) = &self.authorization {
            if self.basic_auth.is_some() {
                return Err(ConfigError::Auth {
                    job: job(),
                    what: "at most one of basic_auth and authorization must be configured",
                });
            }
            if a.credentials.is_some() && a.credentials_file.is_some() {
                return Err(ConfigError::Auth {
                    job: job(),
                    what: "at most one of authorization credentials & credentials_file must be configured",
                });
            }
            if a.kind.eq_ignore_ascii_case("basic") {
                return Err(ConfigError::Auth {
                    job: job(),
                    what:
                        "authorization type cannot be set to \"basic\", use \"basic_auth\" instead",
                });
            }
            if a.kind.is_empty() || a.kind.contains(char::is_whitespace) {
                return Err(ConfigError::Auth {
                    job: job(),
                    what: "authorization type must be a single word",
                });
            }
        }
        Ok(())
    }
}

/// The global settings a scrape config falls back on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GlobalDefaults {
    /// `global.scrape_interval`; 1m by default.
    pub scrape_interval: PromDuration,
    /// `global.scrape_timeout`; 10s by default.
    pub scrape_timeout: PromDuration,
}

impl Default for GlobalDefaults {
    fn default() -> Self {
        GlobalDefaults {
            scrape_interval: PromDuration(60_000),
            scrape_timeout: PromDuration(10_000),
        }
    }
}

/// Why a scrape configuration is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `job_name` is empty.
    #[error("job_name is empty")]
    EmptyJobName,
    /// Two configs share a job name.
    #[error("found multiple scrape configs with job name {0:?}")]
    DuplicateJobName(String),
    /// The interval is zero.
    #[error("scrape interval of job {job:?} cannot be 0")]
    ZeroInterval {
        /// The job.
        job: String,
    },
    /// The timeout is zero.
    #[error("scrape timeout of job {job:?} cannot be 0")]
    ZeroTimeout {
        /// The job.
        job: String,
    },
    /// The timeout is longer than the interval.
    #[error("scrape timeout {timeout} greater than scrape interval {interval} for scrape config with job name {job:?}")]
    TimeoutExceedsInterval {
        /// The job.
        job: String,
        /// The timeout.
        timeout: PromDuration,
        /// The interval.
        interval: PromDuration,
    },
    /// A static target is not a valid address.
    #[error("job {job:?}: {target:?} is not a valid hostname")]
    InvalidTarget {
        /// The job.
        job: String,
        /// The target.
        target: String,
    },
    /// A static label name is empty.
    #[error("job {job:?}: invalid label name {name:?}")]
    InvalidLabelName {
        /// The job.
        job: String,
        /// The name.
        name: String,
    },
    /// A `file_sd_configs` entry is invalid.
    #[error("job {job:?}: {source}")]
    FileSd {
        /// The job.
        job: String,
        /// What is wrong.
        #[source]
        source: FileSdConfigError,
    },
    /// Conflicting or invalid authentication settings (TLS client
    /// certificates included).
    #[error("job {job:?}: {what}")]
    Auth {
        /// The job.
        job: String,
        /// What is wrong.
        what: &'static str,
    },
}

/// Checks that no two configs share a job name.
pub fn check_unique_job_names(configs: &[ScrapeConfig]) -> Result<(), ConfigError> {
    let mut seen = std::collections::HashSet::new();
    for c in configs {
        if !seen.insert(c.job_name.as_str()) {
            return Err(ConfigError::DuplicateJobName(c.job_name.clone()));
        }
    }
    Ok(())
}

/// Validates every config ([`ScrapeConfig::validate`]) and the uniqueness of
/// job names: what the server's configuration loader calls.
pub fn validate_scrape_configs(
    configs: &[ScrapeConfig],
    global: &GlobalDefaults,
) -> Result<(), ConfigError> {
    for c in configs {
        c.validate(global)?;
    }
    check_unique_job_names(configs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Result<Vec<ScrapeConfig>, serde_yaml_ng::Error> {
        serde_yaml_ng::from_str(s)
    }

    #[test]
    fn defaults_follow_prometheus() {
        let c = &yaml("- job_name: a\n  static_configs:\n    - targets: ['localhost:9090']\n")
            .unwrap()[0];
        assert_eq!(c, &ScrapeConfig::new("a", vec!["localhost:9090".into()]));
        let g = GlobalDefaults::default();
        assert_eq!(c.interval_ms(&g), 60_000);
        assert_eq!(c.timeout_ms(&g), 10_000);
        assert_eq!(c.metrics_path, "/metrics");
        assert!(c.honor_timestamps && !c.honor_labels && c.enable_compression);
        c.validate(&g).unwrap();
    }

    #[test]
    fn every_implemented_key_parses() {
        let c = &yaml(
            r#"
- job_name: node
  scrape_interval: 15s
  scrape_timeout: 5s
  metrics_path: /m
  scheme: https
  params:
    module: [http_2xx]
  honor_labels: true
  honor_timestamps: false
  track_timestamps_staleness: true
  enable_compression: false
  follow_redirects: false
  fallback_scrape_protocol: PrometheusText0.0.4
  sample_limit: 100
  label_limit: 10
  label_name_length_limit: 20
  label_value_length_limit: 30
  body_size_limit: 10MB
  authorization:
    credentials: secret
  tls_config:
    ca_file: /etc/ca.pem
    insecure_skip_verify: true
  static_configs:
    - targets: ['a:1', 'b:2']
      labels: {env: prod}
  relabel_configs:
    - source_labels: [__address__]
      regex: '(.*):.*'
      target_label: host
  metric_relabel_configs:
    - action: drop
      source_labels: [__name__]
      regex: go_.*
"#,
        )
        .unwrap()[0];
        let g = GlobalDefaults::default();
        assert_eq!(c.interval_ms(&g), 15_000);
        assert_eq!(c.timeout_ms(&g), 5_000);
        assert_eq!(c.scheme, Scheme::Https);
        assert_eq!(c.params["module"], vec!["http_2xx".to_string()]);
        assert_eq!(c.body_size_limit, ByteSize(10 << 20));
        assert_eq!(
            c.fallback_scrape_protocol.unwrap().format(),
            Format::PrometheusText
        );
        assert_eq!(c.authorization.as_ref().unwrap().kind, "Bearer");
        assert_eq!(c.static_configs[0].labels["env"], "prod");
        assert_eq!(c.relabel_configs.len(), 1);
        c.validate(&g).unwrap();
        // And it serializes back to something that parses to the same.
        let text = serde_yaml_ng::to_string(&vec![c.clone()]).unwrap();
        assert_eq!(&yaml(&text).unwrap()[0], c);
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name_and_line() {
        let e = yaml("- job_name: a\n  static_configs: []\n  oauth2: {}\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("oauth2"), "{e}");
        assert!(e.contains("line 3"), "{e}");
        let e = yaml("- job_name: a\n  static_configs:\n    - targets: []\n      labelz: {}\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("labelz"), "{e}");
        let e = yaml("- job_name: a\n  tls_config: {server_name: x}\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("server_name"), "{e}");
        // Client certificates are known keys, relative to the config's
        // directory.
        let mut c = yaml("- job_name: a\n  tls_config: {cert_file: c.pem, key_file: /k.pem}\n")
            .unwrap()
            .remove(0);
        c.resolve_paths(Path::new("/etc/vigil"));
        let t = c.tls_config.unwrap();
        assert_eq!(t.cert_file.unwrap(), Path::new("/etc/vigil/c.pem"));
        assert_eq!(t.key_file.unwrap(), Path::new("/k.pem"));
    }

    #[test]
    fn bad_values_are_refused() {
        for bad in [
            "- scrape_interval: 1s\n",
            "- job_name: a\n  scrape_interval: 1.5s\n",
            "- job_name: a\n  scheme: ftp\n",
            "- job_name: a\n  body_size_limit: 10 apples\n",
            "- job_name: a\n  body_size_limit: 1000\n",
            "- job_name: a\n  fallback_scrape_protocol: json\n",
            "- job_name: a\n  sample_limit: -1\n",
        ] {
            assert!(yaml(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn validation_as_prometheus() {
        let g = GlobalDefaults::default();
        let mut c = ScrapeConfig::new("a", vec!["h:1".into()]);
        c.scrape_interval = Some(PromDuration(5_000));
        // The global 10s timeout is capped at the job's 5s interval.
        assert_eq!(c.timeout_ms(&g), 5_000);
        c.validate(&g).unwrap();
        c.scrape_timeout = Some(PromDuration(6_000));
        assert!(matches!(
            c.validate(&g),
            Err(ConfigError::TimeoutExceedsInterval { .. })
        ));
        let mut c = ScrapeConfig::new("a", vec!["h:1/x".into()]);
        assert!(matches!(
            c.validate(&g),
            Err(ConfigError::InvalidTarget { .. })
        ));
        c.static_configs.clear();
        c.scrape_interval = Some(PromDuration(0));
        assert!(matches!(
            c.validate(&g),
            Err(ConfigError::ZeroInterval { .. })
        ));
        let list = vec![
            ScrapeConfig::new("a", vec![]),
            ScrapeConfig::new("a", vec![]),
        ];
        assert_eq!(
            validate_scrape_configs(&list, &g),
            Err(ConfigError::DuplicateJobName("a".into()))
        );
        let mut c = ScrapeConfig::new("a", vec![]);
        c.basic_auth = Some(BasicAuth {
            username: "u".into(),
            ..Default::default()
        });
        c.authorization = Some(Authorization {
            kind: "Bearer".into(),
            credentials: Some("x".into()),
            credentials_file: None,
        });
        assert!(matches!(c.validate(&g), Err(ConfigError::Auth { .. })));
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(ByteSize::parse("0"), Some(ByteSize(0)));
        assert_eq!(ByteSize::parse("1KB"), Some(ByteSize(1024)));
        assert_eq!(ByteSize::parse("1KiB"), Some(ByteSize(1024)));
        assert_eq!(
            ByteSize::parse("1GB512MB"),
            Some(ByteSize((1 << 30) + (512 << 20)))
        );
        assert_eq!(ByteSize::parse("100B"), Some(ByteSize(100)));
        for bad in ["", "10", "1kb", "1.5MB", "MB", "99999999999EB"] {
            assert_eq!(ByteSize::parse(bad), None, "{bad}");
        }
    }
}
