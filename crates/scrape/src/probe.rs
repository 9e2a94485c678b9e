//! HTTP probes: the `probes` section of vigil's configuration, in the style
//! of the blackbox exporter's `http` prober, run by vigil itself so that a
//! small deployment checks its services' health endpoints without another
//! process.
//!
//! Each probe requests one URL every `interval` (30s by default) and stores,
//! at the probe's start time, five series labelled
//! `{job="probe", probe="<name>", instance="<url>"}` plus the probe's
//! `labels` (which may set another `job`):
//!
//! | series | meaning |
//! | --- | --- |
//! | `probe_success` | 1 when the request completed within the timeout with an expected status (2xx by default) and, if set, a body matching `body_regex`; else 0 |
//! | `probe_duration_seconds` | time from sending the request to the end of the body (or the failure) |
//! | `probe_http_status_code` | the response's status code; 0 when no response came |
//! | `probe_failed_total` | counter of failed probes since the probe started (kept across reloads that leave its labels alone) |
//! | `probe_consecutive_failures` | failures in a row; 0 after a success — alert on `probe_consecutive_failures >= 3` |
//!
//! Probes start at a deterministic offset within their interval (a hash of
//! name and URL), as scrape targets do. A probe removed (or relabelled) by a
//! reload gets stale markers on its series; a shutdown writes none, as for
//! scrapes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use vigil_model::storage::{AppendError, Appendable, Appender};
use vigil_model::time::now_ms;
use vigil_model::{stale_nan, Labels, LabelsBuilder, SeriesRef, Value, METRIC_NAME};
use xxhash_rust::xxh3::xxh3_64;

use crate::client::{probe_client, ClientError};
use crate::config::{PromDuration, TlsConfig};

/// The `job` label of probe series unless the probe's `labels` set one.
pub const PROBE_JOB: &str = "probe";

/// The series every probe writes, in this order.
pub const PROBE_SERIES: [&str; 5] = [
    "probe_success",
    "probe_duration_seconds",
    "probe_http_status_code",
    "probe_failed_total",
    "probe_consecutive_failures",
];

const DEFAULT_INTERVAL_MS: i64 = 30_000;
const DEFAULT_TIMEOUT_MS: i64 = 10_000;
/// How much of a body `body_regex` looks at.
const MAX_MATCHED_BODY: usize = 10 << 20;

/// A regex searched for anywhere in a response body (not anchored), over
/// bytes so that a body need not be UTF-8.
#[derive(Clone)]
pub struct BodyRegex {
    source: String,
    re: regex::bytes::Regex,
}

impl BodyRegex {
    /// Compiles `source`.
    pub fn new(source: &str) -> Result<BodyRegex, regex::Error> {
        Ok(BodyRegex {
            source: source.to_string(),
            re: regex::bytes::Regex::new(source)?,
        })
    }

    /// The regex as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

impl PartialEq for BodyRegex {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for BodyRegex {}

impl fmt::Debug for BodyRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.source)
    }
}

impl<'de> Deserialize<'de> for BodyRegex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        BodyRegex::new(&s).map_err(serde::de::Error::custom)
    }
}

impl Serialize for BodyRegex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

fn default_method() -> String {
    "GET".to_string()
}

fn default_true() -> bool {
    true
}

/// One entry of the `probes` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    /// The probe's name: its `probe` label. Required and unique.
    pub name: String,
    /// The URL requested (`http` or `https`): its `instance` label.
    pub url: String,
    /// The HTTP method; `GET` by default.
    #[serde(default = "default_method")]
    pub method: String,
    /// Request headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// A request body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The status codes that count as success; any 2xx when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub valid_status_codes: Vec<u16>,
    /// When set, the response body must contain a match (searched in its
    /// first 10 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_regex: Option<BodyRegex>,
    /// How often to probe; 30s by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<PromDuration>,
    /// How long a probe may take; 10s by default, capped at the interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<PromDuration>,
    /// Labels added to the probe's series.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// TLS settings for `https` URLs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
    /// Follow redirects (default true); the final response is judged.
    #[serde(default = "default_true")]
    pub follow_redirects: bool,
}

impl ProbeConfig {
    /// A GET probe of `url` with every default.
    pub fn new(name: impl Into<String>, url: impl Into<String>) -> ProbeConfig {
        ProbeConfig {
            name: name.into(),
            url: url.into(),
            method: default_method(),
            headers: BTreeMap::new(),
            body: None,
            valid_status_codes: Vec::new(),
            body_regex: None,
            interval: None,
            timeout: None,
            labels: BTreeMap::new(),
            tls_config: None,
            follow_redirects: true,
        }
    }

    /// The interval in ms (30s by default).
    pub fn interval_ms(&self) -> i64 {
        self.interval.map_or(DEFAULT_INTERVAL_MS, |d| d.0)
    }

    /// The timeout in ms: as set, or 10s capped at the interval.
    pub fn timeout_ms(&self) -> i64 {
        match self.timeout {
            Some(t) => t.0,
            None => DEFAULT_TIMEOUT_MS.min(self.interval_ms()),
        }
    }

    /// Makes the relative files of `tls_config` relative to `dir` (the
    /// configuration file's directory).
    pub fn resolve_paths(&mut self, dir: &std::path::Path) {
        if let Some(t) = &mut self.tls_config {
            t.resolve_paths(dir);
        }
    }

    /// The labels of the series `name` of this probe.
    pub fn series_labels(&self, name: &str) -> Labels {
        let mut lb = LabelsBuilder::new();
        lb.set("job", PROBE_JOB);
        for (k, v) in &self.labels {
            lb.set(k, v);
        }
        lb.set("probe", &self.name);
        lb.set("instance", &self.url);
        lb.set(METRIC_NAME, name);
        lb.build()
    }

    /// Checks the probe as the configuration loader does.
    pub fn validate(&self) -> Result<(), ProbeConfigError> {
        let probe = || self.name.clone();
        if self.name.is_empty() {
            return Err(ProbeConfigError::EmptyName);
        }
        match reqwest::Url::parse(&self.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            Ok(_) => {
                return Err(ProbeConfigError::InvalidUrl {
                    probe: probe(),
                    reason: "the scheme must be http or https, with a host".into(),
                })
            }
            Err(e) => {
                return Err(ProbeConfigError::InvalidUrl {
                    probe: probe(),
                    reason: e.to_string(),
                })
            }
        }
        if reqwest::Method::from_bytes(self.method.as_bytes()).is_err() {
            return Err(ProbeConfigError::InvalidMethod {
                probe: probe(),
                method: self.method.clone(),
            });
        }
        for (k, v) in &self.headers {
            if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err()
                || reqwest::header::HeaderValue::from_str(v).is_err()
            {
                return Err(ProbeConfigError::InvalidHeader {
                    probe: probe(),
                    header: k.clone(),
                });
            }
        }
        if let Some(&code) = self
            .valid_status_codes
            .iter()
            .find(|c| !(100..=599).contains(*c))
        {
            return Err(ProbeConfigError::InvalidStatusCode {
                probe: probe(),
                code,
            });
        }
        let (interval, timeout) = (self.interval_ms(), self.timeout_ms());
        if interval <= 0 || timeout <= 0 {
            return Err(ProbeConfigError::ZeroDuration { probe: probe() });
        }
        if timeout > interval {
            return Err(ProbeConfigError::TimeoutExceedsInterval {
                probe: probe(),
                timeout: PromDuration(timeout),
                interval: PromDuration(interval),
            });
        }
        if let Some(name) = self
            .labels
            .keys()
            .find(|k| k.is_empty() || k.starts_with("__") || *k == "probe" || *k == "instance")
        {
            return Err(ProbeConfigError::InvalidLabel {
                probe: probe(),
                name: name.clone(),
            });
        }
        Ok(())
    }
}

/// Why a `probes` section is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeConfigError {
    /// `name` is empty.
    #[error("probe name is empty")]
    EmptyName,
    /// Two probes share a name.
    #[error("found multiple probes with name {0:?}")]
    DuplicateName(String),
    /// The URL does not parse or is not http(s).
    #[error("probe {probe:?}: invalid url: {reason}")]
    InvalidUrl {
        /// The probe.
        probe: String,
        /// Why.
        reason: String,
    },
    /// The method is not an HTTP method token.
    #[error("probe {probe:?}: invalid method {method:?}")]
    InvalidMethod {
        /// The probe.
        probe: String,
        /// The method.
        method: String,
    },
    /// A header name or value is not valid HTTP.
    #[error("probe {probe:?}: invalid header {header:?}")]
    InvalidHeader {
        /// The probe.
        probe: String,
        /// The header name.
        header: String,
    },
    /// A status code outside 100–599.
    #[error("probe {probe:?}: invalid status code {code}")]
    InvalidStatusCode {
        /// The probe.
        probe: String,
        /// The code.
        code: u16,
    },
    /// The interval or timeout is not positive.
    #[error("probe {probe:?}: interval and timeout must be greater than 0")]
    ZeroDuration {
        /// The probe.
        probe: String,
    },
    /// The timeout is longer than the interval.
    #[error("probe {probe:?}: timeout {timeout} greater than interval {interval}")]
    TimeoutExceedsInterval {
        /// The probe.
        probe: String,
        /// The timeout.
        timeout: PromDuration,
        /// The interval.
        interval: PromDuration,
    },
    /// A label name is empty, reserved (`__*`) or one the probe sets
    /// (`probe`, `instance`).
    #[error("probe {probe:?}: invalid label name {name:?}")]
    InvalidLabel {
        /// The probe.
        probe: String,
        /// The name.
        name: String,
    },
}

impl ProbeConfigError {
    /// The probe the error is about, if it names one.
    pub fn probe(&self) -> Option<&str> {
        match self {
            ProbeConfigError::EmptyName => None,
            ProbeConfigError::DuplicateName(p)
            | ProbeConfigError::InvalidUrl { probe: p, .. }
            | ProbeConfigError::InvalidMethod { probe: p, .. }
            | ProbeConfigError::InvalidHeader { probe: p, .. }
            | ProbeConfigError::InvalidStatusCode { probe: p, .. }
            | ProbeConfigError::ZeroDuration { probe: p }
            | ProbeConfigError::TimeoutExceedsInterval { probe: p, .. }
            | ProbeConfigError::InvalidLabel { probe: p, .. } => Some(p),
        }
    }
}

/// Validates every probe and the uniqueness of names.
pub fn validate_probes(probes: &[ProbeConfig]) -> Result<(), ProbeConfigError> {
    let mut seen = HashSet::new();
    for p in probes {
        p.validate()?;
        if !seen.insert(p.name.as_str()) {
            return Err(ProbeConfigError::DuplicateName(p.name.clone()));
        }
    }
    Ok(())
}

/// Why [`ProbeManager::apply`] refused a configuration; nothing changes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ProbeConfigError),
    /// A probe's HTTP client could not be built.
    #[error("probe {probe:?}: {source}")]
    Client {
        /// The probe.
        probe: String,
        /// What failed.
        #[source]
        source: ClientError,
    },
    /// `apply` was called outside a tokio runtime.
    #[error("the probe manager needs a tokio runtime")]
    NoRuntime,
}

impl From<ProbeError> for String {
    /// The error as a message prefixed with `probes: `, for callers that
    /// report start-up errors as text.
    fn from(e: ProbeError) -> String {
        format!("probes: {e}")
    }
}

/// What a probe's last run found, for status pages and logs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProbeStatus {
    /// The probe's name.
    pub name: String,
    /// Its URL.
    pub url: String,
    /// The last result; `None` before the first probe.
    pub success: Option<bool>,
    /// When the last probe started (ms since the epoch).
    pub last_probe: Option<i64>,
    /// How long it took.
    pub last_duration: Duration,
    /// Why it failed.
    pub last_error: Option<String>,
    /// Failures in a row.
    pub consecutive_failures: u64,
    /// Failures since the probe started.
    pub failed_total: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Run,
    /// A new loop with the same series takes over the counters.
    Replaced,
    /// The probe is gone: mark its series stale.
    Removed,
    /// vigil stops: no stale markers.
    Shutdown,
}

/// Counters and series refs, handed from a replaced loop to its successor.
#[derive(Debug, Clone, Default)]
struct Counters {
    refs: [Option<SeriesRef>; 5],
    failed_total: u64,
    consecutive: u64,
    wrote: bool,
}

#[derive(Debug)]
struct Spec {
    config: ProbeConfig,
    client: reqwest::Client,
    method: reqwest::Method,
    labels: [Labels; 5],
    interval: Duration,
    timeout: Duration,
}

impl Spec {
    fn new(config: ProbeConfig, client: reqwest::Client) -> Spec {
        let method =
            reqwest::Method::from_bytes(config.method.as_bytes()).unwrap_or(reqwest::Method::GET);
        let labels = PROBE_SERIES.map(|n| config.series_labels(n));
        let ms = |v: i64| Duration::from_millis(u64::try_from(v.max(1)).unwrap_or(1));
        Spec {
            interval: ms(config.interval_ms()),
            timeout: ms(config.timeout_ms()),
            method,
            labels,
            config,
            client,
        }
    }

    /// The delay to the first probe: a fixed phase of the interval per
    /// probe, pinned to absolute time (as `Target::offset`).
    fn offset(&self, now_ns: u128) -> Duration {
        let interval = self.interval.as_nanos().max(1);
        let key = format!("{}\u{0}{}", self.config.name, self.config.url);
        let offset = u128::from(xxh3_64(key.as_bytes())) % interval;
        let base = interval - now_ns % interval;
        let mut next = base + offset;
        if next > interval {
            next -= interval;
        }
        Duration::from_nanos(u64::try_from(next).unwrap_or(u64::MAX))
    }
}

/// The result of one probe.
#[derive(Debug)]
struct Outcome {
    success: bool,
    status: u16,
    error: Option<String>,
}

async fn probe_once(spec: &Spec) -> Outcome {
    let deadline = tokio::time::Instant::now() + spec.timeout;
    let cfg = &spec.config;
    let fail = |status: u16, e: String| Outcome {
        success: false,
        status,
        error: Some(e),
    };
    let timed_out = || format!("probe timed out after {:?}", spec.timeout);
    let mut req = spec.client.request(spec.method.clone(), &cfg.url);
    for (k, v) in &cfg.headers {
        req = req.header(k.as_str(), v.as_str());
    }
    if let Some(b) = &cfg.body {
        req = req.body(b.clone());
    }
    let mut resp = match tokio::time::timeout_at(deadline, req.send()).await {
        Err(_) => return fail(0, timed_out()),
        Ok(Err(e)) => return fail(0, format!("request failed: {e}")),
        Ok(Ok(r)) => r,
    };
    let status = resp.status().as_u16();
    let keep_body = cfg.body_regex.is_some();
    let mut body = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, resp.chunk()).await {
            Err(_) => return fail(status, timed_out()),
            Ok(Err(e)) => return fail(status, format!("reading the body: {e}")),
            Ok(Ok(None)) => break,
            Ok(Ok(Some(c))) => {
                if keep_body && body.len() < MAX_MATCHED_BODY {
                    let n = c.len().min(MAX_MATCHED_BODY - body.len());
                    body.extend_from_slice(&c[..n]);
                }
            }
        }
    }
    let expected = if cfg.valid_status_codes.is_empty() {
        (200..=299).contains(&status)
    } else {
        cfg.valid_status_codes.contains(&status)
    };
    if !expected {
        return fail(status, format!("unexpected status code {status}"));
    }
    if let Some(re) = &cfg.body_regex {
        if !re.re.is_match(&body) {
            return fail(
                status,
                format!("body does not match regex {:?}", re.as_str()),
            );
        }
    }
    Outcome {
        success: true,
        status,
        error: None,
    }
}

fn is_soft(e: &AppendError) -> bool {
    matches!(
        e,
        AppendError::OutOfOrder
            | AppendError::DuplicateSampleForTimestamp
            | AppendError::OutOfBounds
            | AppendError::TooOld
    )
}

/// Appends one value per series (or stale markers) at `t` and commits.
fn append_values<A: Appendable>(
    storage: &A,
    spec: &Spec,
    refs: &mut [Option<SeriesRef>; 5],
    t: i64,
    values: [f64; 5],
) {
    let mut app = storage.appender();
    for (i, v) in values.into_iter().enumerate() {
        match app.append(refs[i], &spec.labels[i], t, Value::Float(v)) {
            Ok(r) => refs[i] = Some(r),
            Err(e) if is_soft(&e) => {}
            Err(e) => {
                tracing::warn!(error = %e, series = %spec.labels[i], "probe append failed")
            }
        }
    }
    if let Err(e) = app.commit() {
        tracing::error!(error = %e, probe = %spec.config.name, "probe commit failed");
    }
}

async fn append_blocking<A: Appendable + 'static>(
    storage: &Arc<A>,
    spec: &Arc<Spec>,
    mut refs: [Option<SeriesRef>; 5],
    t: i64,
    values: [f64; 5],
) -> [Option<SeriesRef>; 5] {
    let (s, sp) = (Arc::clone(storage), Arc::clone(spec));
    let keep = refs;
    tokio::task::spawn_blocking(move || {
        append_values(&*s, &sp, &mut refs, t, values);
        refs
    })
    .await
    .unwrap_or(keep)
}

fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

async fn run<A: Appendable + 'static>(
    storage: Arc<A>,
    spec: Arc<Spec>,
    mut c: Counters,
    status: Arc<Mutex<ProbeStatus>>,
    mut stop: watch::Receiver<Stop>,
) -> Option<Counters> {
    let wait_stop = |m: &Stop| *m != Stop::Run;
    let mode = 'run: {
        tokio::select! {
            _ = tokio::time::sleep(spec.offset(unix_nanos())) => {}
            r = stop.wait_for(wait_stop) => break 'run r.map(|m| *m).ok(),
        }
        let mut ticker = tokio::time::interval(spec.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                biased;
                r = stop.wait_for(wait_stop) => break 'run r.map(|m| *m).ok(),
                _ = ticker.tick() => {}
            }
            let t = now_ms();
            let start = Instant::now();
            let outcome = tokio::select! {
                biased;
                r = stop.wait_for(wait_stop) => break 'run r.map(|m| *m).ok(),
                o = probe_once(&spec) => o,
            };
            let duration = start.elapsed();
            if outcome.success {
                c.consecutive = 0;
            } else {
                c.consecutive += 1;
                c.failed_total += 1;
                tracing::debug!(probe = %spec.config.name, error = ?outcome.error, "probe failed");
            }
            let values = [
                if outcome.success { 1.0 } else { 0.0 },
                duration.as_secs_f64(),
                f64::from(outcome.status),
                c.failed_total as f64,
                c.consecutive as f64,
            ];
            c.refs = append_blocking(&storage, &spec, c.refs, t, values).await;
            c.wrote = true;
            let mut st = status.lock();
            st.success = Some(outcome.success);
            st.last_probe = Some(t);
            st.last_duration = duration;
            st.last_error = outcome.error;
            st.consecutive_failures = c.consecutive;
            st.failed_total = c.failed_total;
        }
    };
    match mode {
        Some(Stop::Replaced) => Some(c),
        Some(Stop::Removed) if c.wrote => {
            append_blocking(&storage, &spec, c.refs, now_ms(), [stale_nan(); 5]).await;
            None
        }
        _ => None,
    }
}

struct Handle {
    config: ProbeConfig,
    stop: watch::Sender<Stop>,
    join: JoinHandle<Option<Counters>>,
    status: Arc<Mutex<ProbeStatus>>,
}

/// Runs the `probes` section, appending to `A`.
///
/// ```no_run
/// # async fn demo() -> Result<(), vigil_scrape::probe::ProbeError> {
/// use std::sync::Arc;
/// use vigil_scrape::probe::{ProbeConfig, ProbeManager};
///
/// let storage = Arc::new(vigil_model::MemStorage::new());
/// let probes = ProbeManager::new(storage);
/// probes.apply(&[ProbeConfig::new("api", "http://127.0.0.1:8080/healthz")]).await?;
/// probes.stop().await;
/// # Ok(()) }
/// ```
pub struct ProbeManager<A> {
    storage: Arc<A>,
    state: tokio::sync::Mutex<HashMap<String, Handle>>,
    registry: RwLock<Vec<Arc<Mutex<ProbeStatus>>>>,
}

impl<A> fmt::Debug for ProbeManager<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProbeManager")
            .field("probes", &self.registry.read().len())
            .finish()
    }
}

impl<A: Appendable + 'static> ProbeManager<A> {
    /// A manager with no probes.
    pub fn new(storage: Arc<A>) -> Self {
        ProbeManager {
            storage,
            state: tokio::sync::Mutex::new(HashMap::new()),
            registry: RwLock::new(Vec::new()),
        }
    }

    fn spawn(
        &self,
        rt: &tokio::runtime::Handle,
        config: ProbeConfig,
        client: reqwest::Client,
        counters: Counters,
    ) -> Handle {
        let (tx, rx) = watch::channel(Stop::Run);
        let status = Arc::new(Mutex::new(ProbeStatus {
            name: config.name.clone(),
            url: config.url.clone(),
            failed_total: counters.failed_total,
            consecutive_failures: counters.consecutive,
            ..Default::default()
        }));
        let spec = Arc::new(Spec::new(config.clone(), client));
        let join = rt.spawn(run(
            Arc::clone(&self.storage),
            spec,
            counters,
            Arc::clone(&status),
            rx,
        ));
        Handle {
            config,
            stop: tx,
            join,
            status,
        }
    }

    /// Makes the running probes match `configs`: unchanged probes keep
    /// running; a changed probe restarts, keeping its counters when its
    /// series labels (name, URL, labels) are unchanged and otherwise
    /// marking its old series stale; removed probes get stale markers. On
    /// error (invalid config, unreadable CA file) nothing changes.
    pub async fn apply(&self, configs: &[ProbeConfig]) -> Result<(), ProbeError> {
        validate_probes(configs)?;
        let rt = tokio::runtime::Handle::try_current().map_err(|_| ProbeError::NoRuntime)?;
        let mut state = self.state.lock().await;
        let mut clients = HashMap::new();
        for cfg in configs {
            if state.get(&cfg.name).is_some_and(|h| h.config == *cfg) {
                continue;
            }
            let (tls, follow) = (cfg.tls_config.clone(), cfg.follow_redirects);
            let built = tokio::task::spawn_blocking(move || probe_client(tls.as_ref(), follow))
                .await
                .map_err(|_| ProbeError::NoRuntime)?;
            let client = built.map_err(|source| ProbeError::Client {
                probe: cfg.name.clone(),
                source,
            })?;
            clients.insert(cfg.name.clone(), client);
        }
        let mut old = std::mem::take(&mut *state);
        let mut ending = Vec::new();
        for cfg in configs {
            let prev = old.remove(&cfg.name);
            let handle = match prev {
                Some(h) if h.config == *cfg => h,
                prev => {
                    let mut counters = Counters::default();
                    if let Some(h) = prev {
                        let same_series = h.config.url == cfg.url && h.config.labels == cfg.labels;
                        if same_series {
                            let _ = h.stop.send(Stop::Replaced);
                            counters = h.join.await.ok().flatten().unwrap_or_default();
                        } else {
                            let _ = h.stop.send(Stop::Removed);
                            ending.push(h.join);
                        }
                    }
                    let Some(client) = clients.remove(&cfg.name) else {
                        continue;
                    };
                    self.spawn(&rt, cfg.clone(), client, counters)
                }
            };
            state.insert(cfg.name.clone(), handle);
        }
        for (_, h) in old {
            let _ = h.stop.send(Stop::Removed);
            ending.push(h.join);
        }
        // Removed probes write their stale markers at once.
        for j in ending {
            let _ = j.await;
        }
        let mut reg: Vec<_> = state
            .values()
            .map(|h| (h.config.name.clone(), Arc::clone(&h.status)))
            .collect();
        reg.sort_by(|a, b| a.0.cmp(&b.0));
        *self.registry.write() = reg.into_iter().map(|(_, s)| s).collect();
        Ok(())
    }

    /// The probes' last results, sorted by name.
    pub fn probes(&self) -> Vec<ProbeStatus> {
        self.registry
            .read()
            .iter()
            .map(|s| s.lock().clone())
            .collect()
    }

    /// Stops every probe and waits for them; writes no stale markers.
    pub async fn stop(&self) {
        let mut state = self.state.lock().await;
        let handles: Vec<_> = state.drain().map(|(_, h)| h).collect();
        for h in &handles {
            let _ = h.stop.send(Stop::Shutdown);
        }
        for h in handles {
            let _ = h.join.await;
        }
        self.registry.write().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_labels() {
        let p: ProbeConfig =
            serde_yaml_ng::from_str("name: api\nurl: http://127.0.0.1:8080/healthz\n").unwrap();
        assert_eq!(p, ProbeConfig::new("api", "http://127.0.0.1:8080/healthz"));
        assert_eq!(p.interval_ms(), 30_000);
        assert_eq!(p.timeout_ms(), 10_000);
        assert_eq!(p.method, "GET");
        p.validate().unwrap();
        assert_eq!(
            p.series_labels("probe_success"),
            vigil_model::labels!(
                "__name__" => "probe_success",
                "instance" => "http://127.0.0.1:8080/healthz",
                "job" => "probe",
                "probe" => "api"
            )
        );
        let mut q = p.clone();
        q.interval = Some(PromDuration(5_000));
        assert_eq!(q.timeout_ms(), 5_000);
        q.labels.insert("job".into(), "health".into());
        q.labels.insert("team".into(), "web".into());
        let l = q.series_labels("probe_success");
        assert_eq!(l.get("job"), Some("health"));
        assert_eq!(l.get("team"), Some("web"));
    }

    #[test]
    fn every_key_parses_and_bad_values_are_refused() {
        let p: ProbeConfig = serde_yaml_ng::from_str(
            r#"
name: api
url: https://example.invalid/health
method: POST
headers: {X-Token: abc}
body: '{"ping": true}'
valid_status_codes: [200, 204]
body_regex: '"status":\s*"ok"'
interval: 15s
timeout: 2s
labels: {team: web}
tls_config: {insecure_skip_verify: true}
follow_redirects: false
"#,
        )
        .unwrap();
        p.validate().unwrap();
        assert_eq!(p.valid_status_codes, vec![200, 204]);
        assert!(p
            .body_regex
            .as_ref()
            .unwrap()
            .re
            .is_match(br#"{"status": "ok"}"#));
        for bad in [
            "name: a\nurl: http://h/\nunknown: 1\n",
            "name: a\nurl: http://h/\nbody_regex: '('\n",
            "name: a\nurl: http://h/\ninterval: 5\n",
        ] {
            assert!(
                serde_yaml_ng::from_str::<ProbeConfig>(bad).is_err(),
                "{bad}"
            );
        }
        let base = ProbeConfig::new("a", "http://h:1/");
        let mut cases: Vec<ProbeConfig> = Vec::new();
        let mut c = base.clone();
        c.name.clear();
        cases.push(c);
        let mut c = base.clone();
        c.url = "ftp://h/".into();
        cases.push(c);
        let mut c = base.clone();
        c.url = "not a url".into();
        cases.push(c);
        let mut c = base.clone();
        c.method = "G ET".into();
        cases.push(c);
        let mut c = base.clone();
        c.headers.insert("Bad Header".into(), "x".into());
        cases.push(c);
        let mut c = base.clone();
        c.valid_status_codes = vec![99];
        cases.push(c);
        let mut c = base.clone();
        c.timeout = Some(PromDuration(40_000));
        cases.push(c);
        let mut c = base.clone();
        c.interval = Some(PromDuration(0));
        cases.push(c);
        for l in ["instance", "probe", "__x", ""] {
            let mut c = base.clone();
            c.labels.insert(l.into(), "v".into());
            cases.push(c);
        }
        for c in cases {
            assert!(c.validate().is_err(), "{c:?}");
        }
        assert_eq!(
            validate_probes(&[base.clone(), base.clone()]),
            Err(ProbeConfigError::DuplicateName("a".into()))
        );
    }

    #[test]
    fn offsets_stay_within_the_interval() {
        let client = probe_client(None, true).unwrap();
        let mut c = ProbeConfig::new("a", "http://h:1/");
        c.interval = Some(PromDuration(10_000));
        let s = Spec::new(c, client);
        let now = 1_700_000_000_123_456_789u128;
        let o = s.offset(now);
        assert!(o <= Duration::from_secs(10));
        let phase = |now: u128, o: Duration| (now + o.as_nanos()) % 10_000_000_000;
        assert_eq!(
            phase(now, o),
            phase(now + 3_000_000_000, s.offset(now + 3_000_000_000))
        );
    }
}
