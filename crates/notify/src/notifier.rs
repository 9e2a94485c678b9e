//! The notifier the server holds: the synchronous [`Core`] behind a lock,
//! the receivers' integrations, an explicit [`Clock`], sending on tokio
//! with retries and backoff, and self-metrics.
//!
//! `tick(now)` is the whole step: it plans what is due at `now`, sends it
//! (concurrently, each integration with its retries) and records the
//! outcome. [`Notifier::run`] calls it on the real clock; tests call it
//! with a [`FakeClock`] and step time themselves.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::config::{Config, ConfigError};
use crate::dispatch::{
    AlertFilter, AlertStatus, Compiled, Core, CoreOptions, GroupStatus, IntegrationInfo,
    ReceiveError,
};
use crate::escalation::{Ack, AckError, AckRequest, EscalationState};
use crate::history::{HistoryEvent, HistoryQuery};
use crate::receivers::ReceiverConfig;
use crate::silence::{Silence, SilenceError, SilenceRequest};
use crate::state::OpenReport;
use crate::types::{Alert, Integration, NotificationData, NotifyError};

/// A boxed future of a [`Clock::sleep`].
pub type SleepFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Where the notifier gets the time from, and how it waits.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
    /// Waits `d` (used between retries and by [`Notifier::run`]).
    fn sleep(&self, d: Duration) -> SleepFuture;
}

/// The system clock and tokio's timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
    fn sleep(&self, d: Duration) -> SleepFuture {
        Box::pin(tokio::time::sleep(d))
    }
}

/// A clock that moves only when told to. Its `sleep` returns at once and
/// counts the time asked for (see [`FakeClock::slept_ms`]).
#[derive(Debug, Default)]
pub struct FakeClock {
    now: AtomicI64,
    slept: Arc<AtomicI64>,
}

impl FakeClock {
    /// A clock at `ms`.
    pub fn new(ms: i64) -> FakeClock {
        FakeClock {
            now: AtomicI64::new(ms),
            slept: Arc::new(AtomicI64::new(0)),
        }
    }
    /// Sets the time.
    pub fn set(&self, ms: i64) {
        self.now.store(ms, Ordering::SeqCst);
    }
    /// Moves the time forward.
    pub fn advance(&self, ms: i64) {
        self.now.fetch_add(ms, Ordering::SeqCst);
    }
    /// The total time `sleep` was asked to wait.
    pub fn slept_ms(&self) -> i64 {
        self.slept.load(Ordering::SeqCst)
    }
}

impl Clock for FakeClock {
    fn now_ms(&self) -> i64 {
        self.now.load(Ordering::SeqCst)
    }
    fn sleep(&self, d: Duration) -> SleepFuture {
        self.slept.fetch_add(d.as_millis() as i64, Ordering::SeqCst);
        Box::pin(std::future::ready(()))
    }
}

/// Builds the integrations of a receiver, given the whole configuration
/// (for `global` defaults and `templates`). [`Notifier::new`] uses
/// [`crate::receivers::build`]; the server can pass one that also applies
/// `global`; tests pass a recording fake.
pub type IntegrationFactory = Arc<
    dyn Fn(&Config, &ReceiverConfig) -> Result<Vec<Box<dyn Integration>>, String> + Send + Sync,
>;

/// Settings of a [`Notifier`].
#[derive(Debug, Clone)]
pub struct NotifierOptions {
    /// Retention and the external URL.
    pub core: CoreOptions,
    /// Attempts per notification (the first and the retries).
    pub max_attempts: u32,
    /// Wait before the first retry; doubled each time.
    pub backoff_initial: Duration,
    /// Longest wait between retries.
    pub backoff_max: Duration,
    /// Time limit of one attempt.
    pub send_timeout: Duration,
    /// Longest wait between two ticks of [`Notifier::run`].
    pub tick_interval: Duration,
}

impl Default for NotifierOptions {
    fn default() -> Self {
        NotifierOptions {
            core: CoreOptions::default(),
            max_attempts: 5,
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            send_timeout: Duration::from_secs(30),
            tick_interval: Duration::from_secs(1),
        }
    }
}

/// The notifier could not be built or reconfigured.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotifierError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The state directory could not be used.
    #[error("opening notifier state in {dir}: {source}")]
    State {
        /// The directory.
        dir: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
}

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Groups flushed or escalated.
    pub plans: usize,
    /// Notifications sent successfully.
    pub sent: usize,
    /// Notifications that failed after their retries.
    pub failed: usize,
}

#[derive(Debug, Default, Clone)]
struct IntegrationMetrics {
    total: u64,
    failed: u64,
    latency_buckets: [u64; LATENCY_BUCKETS.len()],
    latency_sum: f64,
    latency_count: u64,
}

const LATENCY_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 15.0];

type MetricsMap = BTreeMap<(String, &'static str), IntegrationMetrics>;
type IntegrationMap = BTreeMap<String, Vec<Arc<dyn Integration>>>;

/// The notification pipeline.
pub struct Notifier {
    core: Mutex<Core>,
    integrations: Mutex<Arc<IntegrationMap>>,
    clock: Arc<dyn Clock>,
    opts: NotifierOptions,
    factory: IntegrationFactory,
    metrics: Arc<Mutex<MetricsMap>>,
    tick_lock: tokio::sync::Mutex<()>,
    open_report: OpenReport,
}

impl fmt::Debug for Notifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notifier")
            .field("clock", &self.clock)
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

fn build_integrations(
    factory: &IntegrationFactory,
    config: &Config,
) -> Result<(IntegrationMap, BTreeMap<String, Vec<IntegrationInfo>>), ConfigError> {
    let mut map = BTreeMap::new();
    let mut info = BTreeMap::new();
    for rc in &config.receivers {
        let list = factory(config, rc).map_err(|message| ConfigError::Receiver {
            receiver: rc.name.clone(),
            message,
        })?;
        let list: Vec<Arc<dyn Integration>> = list.into_iter().map(Arc::from).collect();
        info.insert(
            rc.name.clone(),
            list.iter()
                .map(|i| IntegrationInfo {
                    kind: i.kind(),
                    send_resolved: i.send_resolved(),
                })
                .collect(),
        );
        map.insert(rc.name.clone(), list);
    }
    Ok((map, info))
}

impl Notifier {
    /// A notifier with the receivers of [`crate::receivers::build`] and
    /// default options; state lives in `state_dir`.
    pub fn new(
        config: Config,
        state_dir: &Path,
        clock: Arc<dyn Clock>,
    ) -> Result<Notifier, NotifierError> {
        Self::with_options(
            config,
            state_dir,
            clock,
            NotifierOptions::default(),
            Arc::new(|_: &Config, rc: &ReceiverConfig| crate::receivers::build(rc)),
        )
    }

    /// A notifier with explicit options and integration factory.
    pub fn with_options(
        config: Config,
        state_dir: &Path,
        clock: Arc<dyn Clock>,
        opts: NotifierOptions,
        factory: IntegrationFactory,
    ) -> Result<Notifier, NotifierError> {
        let compiled = Compiled::new(config)?;
        let (integrations, info) = build_integrations(&factory, &compiled.config)?;
        let (core, open_report) =
            Core::open(compiled, info, state_dir, opts.core.clone(), clock.now_ms()).map_err(
                |source| NotifierError::State {
                    dir: state_dir.to_path_buf(),
                    source,
                },
            )?;
        Ok(Notifier {
            core: Mutex::new(core),
            integrations: Mutex::new(Arc::new(integrations)),
            clock,
            opts,
            factory,
            metrics: Arc::new(Mutex::new(BTreeMap::new())),
            tick_lock: tokio::sync::Mutex::new(()),
            open_report,
        })
    }

    /// What opening the state file found (torn tail dropped, ...).
    pub fn open_report(&self) -> &OpenReport {
        &self.open_report
    }

    /// The current time of the notifier's clock (ms).
    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Replaces the configuration, keeping all state. On error the old
    /// configuration stays. Building integrations may read files (CA
    /// certificates, templates): call this (and the constructors) off the
    /// async workers, e.g. in `spawn_blocking`.
    pub fn apply_config(&self, config: Config) -> Result<(), NotifierError> {
        let compiled = Compiled::new(config)?;
        let (integrations, info) = build_integrations(&self.factory, &compiled.config)?;
        let now = self.clock.now_ms();
        self.core.lock().apply_config(compiled, info, now);
        *self.integrations.lock() = Arc::new(integrations);
        Ok(())
    }

    /// The configuration in use.
    pub fn config(&self) -> Config {
        self.core.lock().compiled().config.clone()
    }

    /// Receiver names.
    pub fn receivers(&self) -> Vec<String> {
        self.core
            .lock()
            .compiled()
            .config
            .receivers
            .iter()
            .map(|r| r.name.clone())
            .collect()
    }

    /// Takes alerts in (Alertmanager's `POST /api/v2/alerts`).
    pub fn receive(&self, alerts: Vec<Alert>) -> Result<(), ReceiveError> {
        let now = self.clock.now_ms();
        self.core.lock().receive(alerts, now)
    }

    /// Alerts not resolved, with status (`GET /api/v2/alerts`).
    pub fn alerts(&self, filter: &AlertFilter) -> Vec<AlertStatus> {
        let now = self.clock.now_ms();
        self.core.lock().alerts(filter, now)
    }

    /// Aggregation groups (`GET /api/v2/alerts/groups`).
    pub fn groups(&self, filter: &AlertFilter) -> Vec<GroupStatus> {
        let now = self.clock.now_ms();
        self.core.lock().groups(filter, now)
    }

    /// All silences (`GET /api/v2/silences`).
    pub fn silences(&self) -> Vec<Silence> {
        let now = self.clock.now_ms();
        self.core.lock().silences(now)
    }

    /// One silence (`GET /api/v2/silence/{id}`).
    pub fn silence(&self, id: &str) -> Option<Silence> {
        self.core.lock().silence(id)
    }

    /// Creates or updates a silence (`POST /api/v2/silences`).
    pub fn add_silence(&self, req: SilenceRequest) -> Result<Silence, SilenceError> {
        let now = self.clock.now_ms();
        self.core.lock().add_silence(req, now)
    }

    /// Expires a silence (`DELETE /api/v2/silence/{id}`).
    pub fn expire_silence(&self, id: &str) -> Result<(), SilenceError> {
        let now = self.clock.now_ms();
        self.core.lock().expire_silence(id, now)
    }

    /// Acknowledges a group or an alert.
    pub fn ack(&self, req: AckRequest) -> Result<Ack, AckError> {
        let now = self.clock.now_ms();
        self.core.lock().ack(req, now)
    }

    /// Acknowledges through an ack link: the two path segments after
    /// `/api/v1/notify/ack/`.
    pub fn ack_with_token(
        &self,
        group_id: &str,
        token: &str,
        by: String,
        comment: String,
    ) -> Result<Ack, AckError> {
        let now = self.clock.now_ms();
        self.core
            .lock()
            .ack_with_token(group_id, token, by, comment, now)
    }

    /// Removes an ack.
    pub fn unack(&self, id: &str) -> Result<(), AckError> {
        let now = self.clock.now_ms();
        self.core.lock().unack(id, now)
    }

    /// Active acks.
    pub fn acks(&self) -> Vec<Ack> {
        let now = self.clock.now_ms();
        self.core.lock().acks(now)
    }

    /// The path of a group's ack link:
    /// `/api/v1/notify/ack/{group id}/{token}`.
    pub fn ack_path(&self, group_key: &str) -> String {
        self.core.lock().ack_path(group_key)
    }

    /// Whether a token acknowledges a group key.
    pub fn verify_ack_token(&self, group_key: &str, token: &str) -> bool {
        self.core.lock().verify_ack_token(group_key, token)
    }

    /// Running escalations, by group key.
    pub fn escalations(&self) -> Vec<(String, EscalationState)> {
        self.core.lock().escalations()
    }

    /// The alert history.
    pub fn history(&self, q: &HistoryQuery) -> Vec<HistoryEvent> {
        self.core.lock().history(q)
    }

    /// When something is next due, if anything is.
    pub fn next_due(&self) -> Option<i64> {
        self.core.lock().next_due()
    }

    /// Flushes due groups and escalations at `now` and sends their
    /// notifications.
    pub async fn tick(&self, now: i64) -> TickReport {
        let _serial = self.tick_lock.lock().await;
        let plans = self.core.lock().plan(now);
        let integrations = self.integrations.lock().clone();
        let mut results: Vec<Vec<Result<(), String>>> =
            plans.iter().map(|p| vec![Ok(()); p.jobs.len()]).collect();
        let mut set = tokio::task::JoinSet::new();
        for (pi, plan) in plans.iter().enumerate() {
            for (ji, job) in plan.jobs.iter().enumerate() {
                if !job.send {
                    continue;
                }
                let Some(integ) = integrations
                    .get(&job.receiver)
                    .and_then(|v| v.get(job.integration))
                    .cloned()
                else {
                    results[pi][ji] = Err("integration no longer configured".into());
                    continue;
                };
                let data = job.data.clone();
                let clock = self.clock.clone();
                let metrics = self.metrics.clone();
                let opts = self.opts.clone();
                let receiver = job.receiver.clone();
                set.spawn(async move {
                    let r = send_with_retries(integ, data, clock, metrics, opts, receiver).await;
                    (pi, ji, r)
                });
            }
        }
        while let Some(done) = set.join_next().await {
            match done {
                Ok((pi, ji, r)) => results[pi][ji] = r,
                Err(e) => tracing::warn!(error = %e, "notification task failed"),
            }
        }
        let mut report = TickReport {
            plans: plans.len(),
            ..TickReport::default()
        };
        let mut core = self.core.lock();
        for (plan, res) in plans.iter().zip(&results) {
            for (job, r) in plan.jobs.iter().zip(res) {
                if job.send {
                    if r.is_ok() {
                        report.sent += 1;
                    } else {
                        report.failed += 1;
                    }
                }
            }
            core.complete(plan, res);
        }
        report
    }

    /// Ticks on the clock until `shutdown` completes: at each due time, and
    /// at least every `tick_interval`. Syncs the state file every ten
    /// seconds off the runtime's workers.
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut last_sync = self.clock.now_ms();
        loop {
            let now = self.clock.now_ms();
            self.tick(now).await;
            if now - last_sync >= 10_000 {
                last_sync = now;
                let this = self.clone();
                let _ = tokio::task::spawn_blocking(move || this.core.lock().sync()).await;
            }
            let max = self.opts.tick_interval.as_millis() as i64;
            let wait = match self.next_due() {
                Some(due) => (due - self.clock.now_ms()).clamp(0, max),
                None => max,
            };
            tokio::select! {
                _ = &mut shutdown => break,
                _ = self.clock.sleep(Duration::from_millis(wait.max(1) as u64)) => {}
            }
        }
        let this = self.clone();
        let _ = tokio::task::spawn_blocking(move || this.core.lock().sync()).await;
    }

    /// Writes the self-metrics in Prometheus text format:
    /// `vigil_notifications_total`, `vigil_notifications_failed_total`
    /// (per attempt, as Alertmanager counts) and
    /// `vigil_notification_latency_seconds`, each labelled with
    /// `integration` (kind) and `receiver`.
    pub fn write_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        let m = self.metrics.lock().clone();
        let lbl = |(r, k): &(String, &'static str)| {
            format!(
                "integration=\"{}\",receiver=\"{}\"",
                k,
                r.replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n")
            )
        };
        let _ = writeln!(
            out,
            "# HELP vigil_notifications_total The total number of attempted notifications."
        );
        let _ = writeln!(out, "# TYPE vigil_notifications_total counter");
        for (k, v) in &m {
            let _ = writeln!(out, "vigil_notifications_total{{{}}} {}", lbl(k), v.total);
        }
        let _ = writeln!(
            out,
            "# HELP vigil_notifications_failed_total The total number of failed notification attempts."
        );
        let _ = writeln!(out, "# TYPE vigil_notifications_failed_total counter");
        for (k, v) in &m {
            let _ = writeln!(
                out,
                "vigil_notifications_failed_total{{{}}} {}",
                lbl(k),
                v.failed
            );
        }
        let _ = writeln!(
            out,
            "# HELP vigil_notification_latency_seconds The latency of notification attempts."
        );
        let _ = writeln!(out, "# TYPE vigil_notification_latency_seconds histogram");
        for (k, v) in &m {
            let l = lbl(k);
            let mut cum = 0;
            for (b, n) in LATENCY_BUCKETS.iter().zip(&v.latency_buckets) {
                cum += n;
                let _ = writeln!(
                    out,
                    "vigil_notification_latency_seconds_bucket{{{l},le=\"{b}\"}} {cum}"
                );
            }
            let _ = writeln!(
                out,
                "vigil_notification_latency_seconds_bucket{{{l},le=\"+Inf\"}} {}",
                v.latency_count
            );
            let _ = writeln!(
                out,
                "vigil_notification_latency_seconds_sum{{{l}}} {}",
                v.latency_sum
            );
            let _ = writeln!(
                out,
                "vigil_notification_latency_seconds_count{{{l}}} {}",
                v.latency_count
            );
        }
    }
}

async fn send_with_retries(
    integ: Arc<dyn Integration>,
    data: NotificationData,
    clock: Arc<dyn Clock>,
    metrics: Arc<Mutex<MetricsMap>>,
    opts: NotifierOptions,
    receiver: String,
) -> Result<(), String> {
    let kind = integ.kind();
    let mut delay = opts.backoff_initial;
    let attempts = opts.max_attempts.max(1);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let start = Instant::now();
        let res = match tokio::time::timeout(opts.send_timeout, integ.notify(&data)).await {
            Ok(r) => r,
            Err(_) => Err(NotifyError {
                retryable: true,
                message: format!("timed out after {:?}", opts.send_timeout),
            }),
        };
        let secs = start.elapsed().as_secs_f64();
        {
            let mut m = metrics.lock();
            let e = m.entry((receiver.clone(), kind)).or_default();
            e.total += 1;
            if res.is_err() {
                e.failed += 1;
            }
            if let Some(i) = LATENCY_BUCKETS.iter().position(|b| secs <= *b) {
                e.latency_buckets[i] += 1;
            }
            e.latency_sum += secs;
            e.latency_count += 1;
        }
        match res {
            Ok(()) => return Ok(()),
            Err(e) => {
                if !e.retryable || attempt >= attempts {
                    tracing::warn!(receiver, integration = kind, attempt, error = %e.message, "notification failed");
                    return Err(e.message);
                }
                clock.sleep(delay).await;
                delay = delay
                    .checked_mul(2)
                    .unwrap_or(opts.backoff_max)
                    .min(opts.backoff_max);
            }
        }
    }
}
