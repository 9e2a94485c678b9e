//! Targets: from a scrape config's static groups through target relabeling
//! to the final label set and URL, as Prometheus's `PopulateLabels`; and the
//! status the API shows for each.

use std::fmt::Write as _;
use std::time::Duration;

use vigil_model::time::{format_duration, parse_duration};
use vigil_model::{Labels, LabelsBuilder};
use xxhash_rust::xxh3::xxh3_64;

use crate::config::{GlobalDefaults, ScrapeConfig};
use crate::discovery::TargetGroup;
use crate::relabel;

pub(crate) const ADDRESS_LABEL: &str = "__address__";
pub(crate) const SCHEME_LABEL: &str = "__scheme__";
pub(crate) const METRICS_PATH_LABEL: &str = "__metrics_path__";
pub(crate) const SCRAPE_INTERVAL_LABEL: &str = "__scrape_interval__";
pub(crate) const SCRAPE_TIMEOUT_LABEL: &str = "__scrape_timeout__";
pub(crate) const PARAM_PREFIX: &str = "__param_";
pub(crate) const META_PREFIX: &str = "__meta_";
pub(crate) const RESERVED_PREFIX: &str = "__";

/// The health of a target after its last scrape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TargetHealth {
    /// Not scraped yet.
    #[default]
    Unknown,
    /// The last scrape succeeded.
    Up,
    /// The last scrape failed.
    Down,
}

impl TargetHealth {
    /// `"up"`, `"down"` or `"unknown"`, as the Prometheus API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetHealth::Unknown => "unknown",
            TargetHealth::Up => "up",
            TargetHealth::Down => "down",
        }
    }
}

/// What `/api/v1/targets` shows for one active target.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetStatus {
    /// The job (scrape pool) name.
    pub job: String,
    /// The target's labels (without `__`-prefixed ones): what every scraped
    /// series gets.
    pub labels: Labels,
    /// The labels before relabeling.
    pub discovered_labels: Labels,
    /// The URL scraped.
    pub scrape_url: String,
    /// Health after the last scrape.
    pub health: TargetHealth,
    /// When the last scrape started (ms since the epoch), if any.
    pub last_scrape: Option<i64>,
    /// How long the last scrape took.
    pub last_scrape_duration: Duration,
    /// Why the last scrape failed; `None` when it succeeded.
    pub last_error: Option<String>,
    /// The scrape interval in ms.
    pub scrape_interval_ms: i64,
    /// The scrape timeout in ms.
    pub scrape_timeout_ms: i64,
}

/// A target that target relabeling dropped, for `/api/v1/targets`.
#[derive(Debug, Clone, PartialEq)]
pub struct DroppedTarget {
    /// The job.
    pub job: String,
    /// The labels before relabeling.
    pub discovered_labels: Labels,
}

/// A target ready to scrape.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Target {
    /// Every label after relabeling, reserved ones included.
    pub all_labels: Labels,
    /// The public labels (no `__` prefix).
    pub labels: Labels,
    pub discovered: Labels,
    pub url: String,
    pub interval_ms: i64,
    pub timeout_ms: i64,
    /// Identity within a job: hash of the labels and the URL.
    pub hash: u64,
}

impl Target {
    /// The delay until this target's first scrape so that scrapes of many
    /// targets spread over the interval, at an offset that depends only on
    /// the target (and the seed), as Prometheus's `Target.offset`.
    pub(crate) fn offset(&self, now_ns: u128, seed: u64) -> Duration {
        let interval = u128::try_from(self.interval_ms.max(1)).unwrap_or(1) * 1_000_000;
        let base = interval - now_ns % interval;
        let offset = u128::from(self.hash ^ seed) % interval;
        let mut next = base + offset;
        if next > interval {
            next -= interval;
        }
        Duration::from_nanos(u64::try_from(next).unwrap_or(u64::MAX))
    }
}

/// Why one target could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    /// Relabeling left no `__address__`.
    #[error("no address")]
    NoAddress,
    /// The address holds a `/`.
    #[error("{0:?} is not a valid hostname")]
    InvalidAddress(String),
    /// `__scrape_interval__` or `__scrape_timeout__` is not a duration.
    #[error("error parsing {what}: {value:?}")]
    BadDuration {
        /// Which label.
        what: &'static str,
        /// Its value.
        value: String,
    },
    /// The interval or timeout is 0.
    #[error("{0} cannot be 0")]
    Zero(&'static str),
    /// The timeout is longer than the interval.
    #[error("scrape timeout cannot be greater than scrape interval ({timeout:?} > {interval:?})")]
    TimeoutExceedsInterval {
        /// The timeout label.
        timeout: String,
        /// The interval label.
        interval: String,
    },
}

/// The targets of a config: active ones, dropped ones and failures.
#[derive(Debug, Default)]
pub(crate) struct Targets {
    pub active: Vec<Target>,
    pub dropped: Vec<DroppedTarget>,
    pub failures: Vec<(String, TargetError)>,
}

/// The target groups of `cfg`'s `static_configs`, sourced by index.
pub(crate) fn static_groups(cfg: &ScrapeConfig) -> Vec<TargetGroup> {
    cfg.static_configs
        .iter()
        .enumerate()
        .map(|(i, g)| TargetGroup {
            targets: g.targets.clone(),
            labels: g.labels.clone(),
            source: i.to_string(),
        })
        .collect()
}

/// Builds the targets of `groups` (static and discovered) for `cfg`.
pub(crate) fn targets_from_groups<'a>(
    cfg: &ScrapeConfig,
    global: &GlobalDefaults,
    groups: impl IntoIterator<Item = &'a TargetGroup>,
) -> Targets {
    let mut out = Targets::default();
    for group in groups {
        for addr in &group.targets {
            let mut lb = LabelsBuilder::new();
            lb.set(ADDRESS_LABEL, addr);
            for (n, v) in &group.labels {
                if lb.get(n).is_none() {
                    lb.set(n, v);
                }
            }
            match populate_labels(&mut lb, cfg, global) {
                Ok(Some(t)) => out.active.push(t),
                Ok(None) => out.dropped.push(DroppedTarget {
                    job: cfg.job_name.clone(),
                    discovered_labels: lb.build(),
                }),
                Err(e) => out.failures.push((addr.clone(), e)),
            }
        }
    }
    // Duplicates (same labels and URL) are scraped once.
    let mut seen = std::collections::HashSet::new();
    out.active.retain(|t| seen.insert(t.hash));
    out
}

/// Builds the targets of `cfg`'s static groups.
#[cfg(test)]
pub(crate) fn targets_from_config(cfg: &ScrapeConfig, global: &GlobalDefaults) -> Targets {
    targets_from_groups(cfg, global, &static_groups(cfg))
}

/// Adds the scrape config's labels to `lb` (which holds the discovered
/// labels), relabels, checks, and builds the target; `Ok(None)` when
/// relabeling drops it. On `Ok(None)` `lb` holds the discovered labels.
fn populate_labels(
    lb: &mut LabelsBuilder,
    cfg: &ScrapeConfig,
    global: &GlobalDefaults,
) -> Result<Option<Target>, TargetError> {
    let interval = format_duration(cfg.interval_ms(global));
    let timeout = format_duration(cfg.timeout_ms(global));
    let defaults = [
        ("job", cfg.job_name.as_str()),
        (SCRAPE_INTERVAL_LABEL, interval.as_str()),
        (SCRAPE_TIMEOUT_LABEL, timeout.as_str()),
        (METRICS_PATH_LABEL, cfg.metrics_path.as_str()),
        (SCHEME_LABEL, cfg.scheme.as_str()),
    ];
    for (n, v) in defaults {
        if lb.get(n).is_none() {
            lb.set(n, v);
        }
    }
    for (k, v) in &cfg.params {
        let name = format!("{PARAM_PREFIX}{k}");
        if let Some(first) = v.first() {
            if lb.get(&name).is_none() {
                lb.set(&name, first);
            }
        }
    }
    let discovered = lb.build();
    let mut rb = lb.clone();
    if !relabel::process(&mut rb, &cfg.relabel_configs) {
        return Ok(None);
    }
    let addr = rb.get(ADDRESS_LABEL).unwrap_or("").to_string();
    if addr.is_empty() {
        return Err(TargetError::NoAddress);
    }
    if addr.contains('/') {
        return Err(TargetError::InvalidAddress(addr));
    }
    let interval_s = rb.get(SCRAPE_INTERVAL_LABEL).unwrap_or("").to_string();
    let timeout_s = rb.get(SCRAPE_TIMEOUT_LABEL).unwrap_or("").to_string();
    let interval_ms = parse_duration(&interval_s).map_err(|_| TargetError::BadDuration {
        what: "scrape interval",
        value: interval_s.clone(),
    })?;
    if interval_ms == 0 {
        return Err(TargetError::Zero("scrape interval"));
    }
    let timeout_ms = parse_duration(&timeout_s).map_err(|_| TargetError::BadDuration {
        what: "scrape timeout",
        value: timeout_s.clone(),
    })?;
    if timeout_ms == 0 {
        return Err(TargetError::Zero("scrape timeout"));
    }
    if timeout_ms > interval_ms {
        return Err(TargetError::TimeoutExceedsInterval {
            timeout: timeout_s,
            interval: interval_s,
        });
    }
    rb.retain(|n, _| !n.starts_with(META_PREFIX));
    if rb.get("instance").is_none() {
        rb.set("instance", &addr);
    }
    let all_labels = rb.build();
    let labels = Labels::from_pairs(
        all_labels
            .iter()
            .filter(|l| !l.name.starts_with(RESERVED_PREFIX))
            .map(|l| (l.name, l.value)),
    );
    let url = target_url(&all_labels, cfg);
    // The identity leaves out interval and timeout, so that changing them
    // on reload hands the loop's series cache on instead of marking every
    // series stale.
    let ident = all_labels.drop_names(&[SCRAPE_INTERVAL_LABEL, SCRAPE_TIMEOUT_LABEL]);
    let mut key = format!("{:016}", ident.stable_hash());
    key.push_str(&url);
    Ok(Some(Target {
        hash: xxh3_64(key.as_bytes()),
        labels,
        discovered,
        url,
        interval_ms,
        timeout_ms,
        all_labels,
    }))
}

/// `scheme://address/path?params`, the config's params overridden by
/// `__param_<name>` labels, encoded as Go's `url.Values.Encode` (sorted by
/// key).
fn target_url(labels: &Labels, cfg: &ScrapeConfig) -> String {
    let mut params: std::collections::BTreeMap<String, Vec<String>> = cfg.params.clone();
    for l in labels.iter() {
        if let Some(k) = l.name.strip_prefix(PARAM_PREFIX) {
            let e = params.entry(k.to_string()).or_default();
            if e.is_empty() {
                e.push(l.value.to_string());
            } else {
                e[0] = l.value.to_string();
            }
        }
    }
    let mut url = format!(
        "{}://{}{}",
        labels.get(SCHEME_LABEL).unwrap_or("http"),
        labels.get(ADDRESS_LABEL).unwrap_or(""),
        labels.get(METRICS_PATH_LABEL).unwrap_or("")
    );
    let mut first = true;
    for (k, vs) in &params {
        for v in vs {
            url.push(if first { '?' } else { '&' });
            first = false;
            query_escape(k, &mut url);
            url.push('=');
            query_escape(v, &mut url);
        }
    }
    url
}

/// Go's `url.QueryEscape`.
fn query_escape(s: &str, out: &mut String) {
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_model::labels;

    fn cfg(yaml: &str) -> ScrapeConfig {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn static_targets_get_job_instance_and_url() {
        let c = cfg("job_name: node\nparams: {a: [x y, z]}\nstatic_configs:\n  - targets: ['h1:9100', 'h2:9100']\n    labels: {env: prod}\n");
        let t = targets_from_config(&c, &GlobalDefaults::default());
        assert!(t.failures.is_empty() && t.dropped.is_empty());
        assert_eq!(t.active.len(), 2);
        let a = &t.active[0];
        assert_eq!(
            a.labels,
            labels!("env" => "prod", "instance" => "h1:9100", "job" => "node")
        );
        assert_eq!(a.url, "http://h1:9100/metrics?a=x+y&a=z");
        assert_eq!(a.interval_ms, 60_000);
        assert_eq!(a.timeout_ms, 10_000);
        assert_eq!(a.discovered.get("__scrape_interval__"), Some("1m"));
        assert_eq!(a.discovered.get("__param_a"), Some("x y"));
        assert_ne!(a.hash, t.active[1].hash);
    }

    #[test]
    fn relabeling_can_drop_rewrite_and_fail_targets() {
        let c = cfg(r#"
job_name: j
static_configs:
  - targets: ['keep:1', 'drop:1', 'bad:1']
relabel_configs:
  - {source_labels: [__address__], regex: 'drop:.*', action: drop}
  - {source_labels: [__address__], regex: 'bad:.*', target_label: __scrape_timeout__, replacement: 2m}
  - {source_labels: [__address__], regex: '(.*):1', target_label: __param_target, replacement: '$1'}
  - {target_label: __metrics_path__, replacement: /probe}
  - {target_label: __meta_x, replacement: gone}
"#);
        let t = targets_from_config(&c, &GlobalDefaults::default());
        assert_eq!(t.active.len(), 1);
        assert_eq!(t.dropped.len(), 1);
        assert_eq!(
            t.dropped[0].discovered_labels.get("__address__"),
            Some("drop:1")
        );
        assert_eq!(t.failures.len(), 1);
        assert!(matches!(
            t.failures[0].1,
            TargetError::TimeoutExceedsInterval { .. }
        ));
        let a = &t.active[0];
        assert_eq!(a.url, "http://keep:1/probe?target=keep");
        assert_eq!(a.all_labels.get("__meta_x"), None);
    }

    #[test]
    fn offsets_are_deterministic_and_within_the_interval() {
        let c = cfg("job_name: j\nscrape_interval: 10s\nstatic_configs: [{targets: ['a:1']}]\n");
        let t = &targets_from_config(&c, &GlobalDefaults::default()).active[0];
        let now = 1_700_000_000_123_456_789u128;
        let o1 = t.offset(now, 0);
        assert_eq!(o1, t.offset(now, 0));
        assert!(o1 <= Duration::from_secs(10));
        // The phase is pinned to absolute time: a later call lands on the
        // same point of the interval.
        let o2 = t.offset(now + 3_000_000_000, 0);
        let phase = |now: u128, o: Duration| (now + o.as_nanos()) % 10_000_000_000;
        assert_eq!(phase(now, o1), phase(now + 3_000_000_000, o2));
    }
}
