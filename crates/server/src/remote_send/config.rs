//! The `remote_write` section, with Prometheus's keys and defaults.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use vigil_scrape::config::{Authorization, BasicAuth, PromDuration};
use vigil_scrape::relabel::RelabelConfig;

/// Which message a queue sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum ProtobufMessage {
    /// Remote write 1.0: `prometheus.WriteRequest`.
    #[default]
    #[serde(rename = "prometheus.WriteRequest")]
    V1,
    /// Remote write 2.0: `io.prometheus.write.v2.Request`. A receiver that
    /// answers 415 gets 1.0 instead, as Prometheus falls back.
    #[serde(rename = "io.prometheus.write.v2.Request")]
    V2,
}

/// `queue_config`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Samples buffered per shard before reading the WAL pauses (10000).
    pub capacity: usize,
    /// Most shards (parallel senders) (50).
    pub max_shards: usize,
    /// Fewest shards, and the number a queue starts with (1).
    pub min_shards: usize,
    /// Most samples per request (2000).
    pub max_samples_per_send: usize,
    /// Longest a sample waits for its request to fill (5s).
    pub batch_send_deadline: PromDuration,
    /// First retry delay (30ms).
    pub min_backoff: PromDuration,
    /// Longest retry delay (5s).
    pub max_backoff: PromDuration,
    /// Retry on 429 Too Many Requests (true; otherwise a 429 drops the
    /// request like any other 4xx).
    pub retry_on_http_429: bool,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            capacity: 10_000,
            max_shards: 50,
            min_shards: 1,
            max_samples_per_send: 2000,
            batch_send_deadline: PromDuration(5_000),
            min_backoff: PromDuration(30),
            max_backoff: PromDuration(5_000),
            retry_on_http_429: true,
        }
    }
}

/// One `remote_write` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteWriteConfig {
    /// Where requests go.
    pub url: String,
    /// The queue's name in metrics and logs; also keys its saved WAL
    /// position (the URL does when it is empty).
    #[serde(default)]
    pub name: String,
    /// Timeout of one request (30s).
    #[serde(default = "default_timeout")]
    pub remote_timeout: PromDuration,
    /// Extra HTTP headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// HTTP basic authentication.
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    /// An `Authorization` header.
    #[serde(default)]
    pub authorization: Option<Authorization>,
    /// Relabeling applied to series before they are sent; a dropped series
    /// is not sent.
    #[serde(default)]
    pub write_relabel_configs: Vec<RelabelConfig>,
    /// Which protocol to speak.
    #[serde(default)]
    pub protobuf_message: ProtobufMessage,
    /// The queue's tuning.
    #[serde(default)]
    pub queue_config: QueueConfig,
}

fn default_timeout() -> PromDuration {
    PromDuration(30_000)
}

/// Headers a configuration may not set: the protocol owns them
/// (Prometheus's `reservedHeaders`).
const RESERVED_HEADERS: [&str; 7] = [
    "authorization",
    "host",
    "content-encoding",
    "content-length",
    "content-type",
    "user-agent",
    "x-prometheus-remote-write-version",
];

impl RemoteWriteConfig {
    /// The queue's name in metrics and logs: `name`, or the URL.
    pub fn display_name(&self) -> &str {
        if self.name.is_empty() {
            &self.url
        } else {
            &self.name
        }
    }

    /// The key its saved WAL position is stored under: stable across
    /// restarts and reloads that keep the name (or, unnamed, the URL).
    pub fn position_key(&self) -> String {
        let id = if self.name.is_empty() {
            format!("url:{}", self.url)
        } else {
            format!("name:{}", self.name)
        };
        format!("{:016x}", xxhash_rust::xxh3::xxh3_64(id.as_bytes()))
    }

    /// Makes `password_file` and `credentials_file` relative to `dir`.
    pub fn resolve_paths(&mut self, dir: &Path) {
        if let Some(b) = &mut self.basic_auth {
            if let Some(p) = &mut b.password_file {
                if p.is_relative() {
                    *p = dir.join(&*p);
                }
            }
        }
        if let Some(a) = &mut self.authorization {
            if let Some(p) = &mut a.credentials_file {
                if p.is_relative() {
                    *p = dir.join(&*p);
                }
            }
        }
    }

    /// Checks one entry on its own.
    pub fn validate(&self) -> Result<(), String> {
        let who = self.display_name();
        let url = reqwest::Url::parse(&self.url)
            .map_err(|e| format!("remote_write {who}: invalid url {:?}: {e}", self.url))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(format!(
                "remote_write {who}: url scheme must be http or https, got {:?}",
                url.scheme()
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!(
                "remote_write {who}: url {:?} has no host",
                self.url
            ));
        }
        if self.remote_timeout.0 <= 0 {
            return Err(format!(
                "remote_write {who}: remote_timeout must be greater than 0"
            ));
        }
        for (k, v) in &self.headers {
            if RESERVED_HEADERS.contains(&k.to_ascii_lowercase().as_str()) {
                return Err(format!(
                    "remote_write {who}: {k} is a reserved header. It must not be changed"
                ));
            }
            if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err()
                || reqwest::header::HeaderValue::from_str(v).is_err()
            {
                return Err(format!("remote_write {who}: invalid header {k:?}"));
            }
        }
        if self.basic_auth.is_some() && self.authorization.is_some() {
            return Err(format!(
                "remote_write {who}: at most one of basic_auth and authorization may be configured"
            ));
        }
        if let Some(b) = &self.basic_auth {
            if b.password.is_some() && b.password_file.is_some() {
                return Err(format!(
                    "remote_write {who}: at most one of basic_auth password and password_file may be configured"
                ));
            }
        }
        if let Some(a) = &self.authorization {
            if a.credentials.is_some() && a.credentials_file.is_some() {
                return Err(format!(
                    "remote_write {who}: at most one of authorization credentials and credentials_file may be configured"
                ));
            }
            if a.kind.eq_ignore_ascii_case("basic") {
                return Err(format!(
                    "remote_write {who}: authorization type cannot be set to \"basic\", use \"basic_auth\" instead"
                ));
            }
        }
        let q = &self.queue_config;
        let positive = [
            ("capacity", q.capacity),
            ("max_shards", q.max_shards),
            ("min_shards", q.min_shards),
            ("max_samples_per_send", q.max_samples_per_send),
        ];
        for (key, v) in positive {
            if v == 0 {
                return Err(format!(
                    "remote_write {who}: queue_config.{key} must be greater than 0"
                ));
            }
        }
        if q.min_shards > q.max_shards {
            return Err(format!(
                "remote_write {who}: queue_config.min_shards ({}) is greater than max_shards ({})",
                q.min_shards, q.max_shards
            ));
        }
        for (key, d) in [
            ("batch_send_deadline", q.batch_send_deadline),
            ("min_backoff", q.min_backoff),
            ("max_backoff", q.max_backoff),
        ] {
            if d.0 <= 0 {
                return Err(format!(
                    "remote_write {who}: queue_config.{key} must be greater than 0"
                ));
            }
        }
        if q.min_backoff.0 > q.max_backoff.0 {
            return Err(format!(
                "remote_write {who}: queue_config.min_backoff is greater than max_backoff"
            ));
        }
        Ok(())
    }
}

/// Checks the whole section: each entry, and that no two queues share a
/// name (or, unnamed, a URL), which would make them share a WAL position.
pub fn validate_remote_writes(configs: &[RemoteWriteConfig]) -> Result<(), String> {
    let mut seen = std::collections::BTreeSet::new();
    for c in configs {
        c.validate()?;
        if !seen.insert(c.position_key()) {
            return Err(if c.name.is_empty() {
                format!(
                    "remote_write: two queues send to {} without a name; give them distinct names",
                    c.url
                )
            } else {
                format!("remote_write: duplicate remote write configs {:?}", c.name)
            });
        }
    }
    Ok(())
}
