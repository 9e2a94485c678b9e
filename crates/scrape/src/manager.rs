//! The scrape manager: turns `scrape_configs` into one loop per target and
//! keeps them in step with configuration reloads.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use vigil_model::Appendable;

use crate::client::{ClientError, HttpClient};
use crate::config::{validate_scrape_configs, ConfigError, GlobalDefaults, ScrapeConfig};
use crate::discovery::{FileDiscovery, FileSdConfig, TargetGroup};
use crate::scrape_loop::{self, LoopConfig, LoopStatus, MetricMetadata, ScrapeCache, StopMode};
use crate::target::{
    static_groups, targets_from_groups, DroppedTarget, Target, TargetError, TargetStatus,
};

/// Why [`ScrapeManager::apply`] refused a configuration. Nothing changes
/// when it does: the running loops keep the old configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScrapeError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The HTTP client of a job could not be built.
    #[error("job {job:?}: {source}")]
    Client {
        /// The job.
        job: String,
        /// What failed.
        #[source]
        source: ClientError,
    },
    /// `apply` was called outside a tokio runtime.
    #[error("the scrape manager needs a tokio runtime")]
    NoRuntime,
    /// The probes could not be started.
    #[error("probes: {0}")]
    Probe(#[from] crate::probe::ProbeError),
}

/// The metric metadata of one target.
#[derive(Debug, Clone)]
pub struct TargetMetadata {
    /// The job.
    pub job: String,
    /// The target's labels.
    pub labels: vigil_model::Labels,
    /// Metadata by metric family name, sorted by name.
    pub metrics: Arc<Vec<(String, MetricMetadata)>>,
}

/// Options for [`ScrapeManager::new`].
#[derive(Debug, Clone)]
pub struct ScrapeOptions {
    /// Mixed into every target's start offset, so that several servers
    /// scraping the same targets spread out (Prometheus's `offsetSeed`).
    pub offset_seed: u64,
    /// How often file discovery checks its files for changes (1s); every
    /// file is read again on its `refresh_interval` regardless.
    pub file_sd_poll_interval: Duration,
}

impl Default for ScrapeOptions {
    fn default() -> Self {
        ScrapeOptions {
            offset_seed: 0,
            file_sd_poll_interval: Duration::from_secs(1),
        }
    }
}

struct LoopHandle {
    target: Target,
    stop: watch::Sender<StopMode>,
    join: JoinHandle<Option<ScrapeCache>>,
    status: Arc<Mutex<LoopStatus>>,
}

struct Job {
    config: ScrapeConfig,
    global: GlobalDefaults,
    client: Arc<HttpClient>,
    loops: HashMap<u64, LoopHandle>,
    /// The groups file discovery found last.
    discovered: Vec<TargetGroup>,
    /// Targets that target relabeling dropped.
    dropped: Vec<DroppedTarget>,
    /// The file discovery task, when the job has `file_sd_configs`.
    discovery: Option<JoinHandle<()>>,
    /// Tells updates of this job's discovery from those of an older one.
    generation: u64,
}

#[derive(Default)]
struct State {
    jobs: HashMap<String, Job>,
    /// Loops of removed targets still waiting to write their stale markers.
    draining: Vec<(watch::Sender<StopMode>, JoinHandle<Option<ScrapeCache>>)>,
    next_generation: u64,
}

/// One entry of the status registry read by [`ScrapeManager::targets`].
struct Registered {
    job: String,
    target: Target,
    status: Arc<Mutex<LoopStatus>>,
}

/// Runs scrape loops for `scrape_configs`, appending to `A`.
///
/// ```no_run
/// # async fn demo() -> Result<(), vigil_scrape::ScrapeError> {
/// use std::sync::Arc;
/// use vigil_scrape::{GlobalDefaults, ScrapeConfig, ScrapeManager};
///
/// let storage = Arc::new(vigil_model::MemStorage::new());
/// let manager = ScrapeManager::new(storage, Default::default());
/// let jobs = vec![ScrapeConfig::new("self", vec!["127.0.0.1:9090".into()])];
/// manager.apply(&jobs, &GlobalDefaults::default()).await?;
/// // ... later, on reload: manager.apply(&new_jobs, &global).await?;
/// manager.stop().await;
/// # Ok(()) }
/// ```
pub struct ScrapeManager<A> {
    inner: Arc<Inner<A>>,
}

/// The manager's state, shared with its file discovery tasks (which hold
/// it weakly).
struct Inner<A> {
    storage: Arc<A>,
    options: ScrapeOptions,
    state: tokio::sync::Mutex<State>,
    registry: RwLock<Vec<Registered>>,
    dropped: RwLock<Vec<DroppedTarget>>,
}

impl<A> std::fmt::Debug for ScrapeManager<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScrapeManager")
            .field("targets", &self.inner.registry.read().len())
            .finish()
    }
}

/// Do two configs give the same sample labels, so that a replaced loop may
/// hand its cache on (Prometheus's `reusableCache`)?
fn cache_reusable(a: &ScrapeConfig, b: &ScrapeConfig) -> bool {
    a.honor_labels == b.honor_labels
        && a.honor_timestamps == b.honor_timestamps
        && a.track_timestamps_staleness == b.track_timestamps_staleness
        && a.metric_relabel_configs == b.metric_relabel_configs
}

fn loop_config(
    cfg: &ScrapeConfig,
    target: Target,
    client: Arc<HttpClient>,
    seed: u64,
) -> LoopConfig {
    let lim = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    LoopConfig {
        target,
        client,
        honor_labels: cfg.honor_labels,
        honor_timestamps: cfg.honor_timestamps,
        track_timestamps_staleness: cfg.track_timestamps_staleness,
        sample_limit: lim(cfg.sample_limit),
        label_limit: lim(cfg.label_limit),
        label_name_length_limit: lim(cfg.label_name_length_limit),
        label_value_length_limit: lim(cfg.label_value_length_limit),
        body_size_limit: cfg.body_size_limit.0,
        fallback: cfg.fallback_scrape_protocol.map(|p| p.format()),
        metric_relabel: cfg.metric_relabel_configs.clone(),
        offset_seed: seed,
    }
}

fn log_failures(job: &str, failures: &[(String, TargetError)]) {
    for (addr, e) in failures {
        tracing::warn!(job = %job, target = %addr, error = %e, "creating target failed");
    }
}

impl<A: Appendable + 'static> ScrapeManager<A> {
    /// A manager with no jobs; [`apply`](Self::apply) starts them.
    pub fn new(storage: Arc<A>, options: ScrapeOptions) -> Self {
        ScrapeManager {
            inner: Arc::new(Inner {
                storage,
                options,
                state: tokio::sync::Mutex::new(State::default()),
                registry: RwLock::new(Vec::new()),
                dropped: RwLock::new(Vec::new()),
            }),
        }
    }

    /// Makes the running loops match `configs`: validates them (with
    /// [`validate_scrape_configs`]), builds each changed job's HTTP client
    /// and reads its discovery files, then keeps the loops of unchanged
    /// (job config, target) pairs running with their state, stops the loops
    /// of targets that are gone (their series get stale markers once two
    /// more intervals have passed, as in Prometheus) and starts loops for
    /// new targets. A target whose job changed gets a new loop; when the
    /// change leaves its sample labels alone the new loop takes over the old
    /// one's series cache and no stale markers are written. On error nothing
    /// changes.
    ///
    /// Jobs with `file_sd_configs` keep a discovery task that re-reads the
    /// files on change and on their `refresh_interval`, and adds and
    /// removes targets the same way.
    pub async fn apply(
        &self,
        configs: &[ScrapeConfig],
        global: &GlobalDefaults,
    ) -> Result<(), ScrapeError> {
        validate_scrape_configs(configs, global)?;
        let rt = tokio::runtime::Handle::try_current().map_err(|_| ScrapeError::NoRuntime)?;
        let inner = &self.inner;
        let mut guard = inner.state.lock().await;
        let state = &mut *guard;

        // Build the clients of new and changed jobs first, so that a
        // failure leaves everything as it was.
        let mut clients: HashMap<String, Arc<HttpClient>> = HashMap::new();
        for cfg in configs {
            let unchanged = state
                .jobs
                .get(&cfg.job_name)
                .filter(|j| j.config == *cfg && j.global == *global);
            let client = match unchanged {
                Some(j) => Arc::clone(&j.client),
                None => {
                    let c = cfg.clone();
                    let built = tokio::task::spawn_blocking(move || HttpClient::new(&c))
                        .await
                        .map_err(|_| ScrapeError::NoRuntime)?;
                    Arc::new(built.map_err(|source| ScrapeError::Client {
                        job: cfg.job_name.clone(),
                        source,
                    })?)
                }
            };
            clients.insert(cfg.job_name.clone(), client);
        }

        let mut old_jobs = std::mem::take(&mut state.jobs);
        let mut new_jobs = HashMap::new();
        for cfg in configs {
            let client = Arc::clone(&clients[&cfg.job_name]);
            let mut old = old_jobs.remove(&cfg.job_name);
            let same_config = old
                .as_ref()
                .is_some_and(|j| j.config == *cfg && j.global == *global);
            let reusable = old.as_ref().is_some_and(|j| cache_reusable(&j.config, cfg));

            // Discovery: an unchanged job keeps its task and groups; a
            // changed or new one reads its files now, so that its targets
            // start with this call.
            let (discovered, discovery, generation) = match old.as_mut() {
                Some(j) if same_config => (
                    std::mem::take(&mut j.discovered),
                    j.discovery.take(),
                    j.generation,
                ),
                _ => {
                    if let Some(d) = old.as_mut().and_then(|j| j.discovery.take()) {
                        d.abort();
                    }
                    state.next_generation += 1;
                    let generation = state.next_generation;
                    let (groups, task) = self
                        .start_discovery(&rt, &cfg.job_name, generation, &cfg.file_sd_configs)
                        .await;
                    (groups, task, generation)
                }
            };

            let targets = targets_from_groups(
                cfg,
                global,
                static_groups(cfg).iter().chain(discovered.iter()),
            );
            log_failures(&cfg.job_name, &targets.failures);
            let old_loops = old.map(|j| j.loops).unwrap_or_default();
            let loops = inner
                .reconcile(
                    &rt,
                    &mut state.draining,
                    cfg,
                    &client,
                    old_loops,
                    Reuse {
                        same_config,
                        reusable,
                    },
                    targets.active,
                )
                .await;
            new_jobs.insert(
                cfg.job_name.clone(),
                Job {
                    config: cfg.clone(),
                    global: *global,
                    client,
                    loops,
                    discovered,
                    dropped: targets.dropped,
                    discovery,
                    generation,
                },
            );
        }
        // Jobs that are gone.
        for (_, j) in old_jobs {
            if let Some(d) = j.discovery {
                d.abort();
            }
            for (_, h) in j.loops {
                let _ = h.stop.send(StopMode::Removed);
                state.draining.push((h.stop, h.join));
            }
        }
        state.draining.retain(|(_, j)| !j.is_finished());
        state.jobs = new_jobs;
        inner.publish(state);
        Ok(())
    }

    /// Reads the files of `configs` once (off the async workers) and starts
    /// the task that watches them. No task without `file_sd_configs`.
    async fn start_discovery(
        &self,
        rt: &tokio::runtime::Handle,
        job: &str,
        generation: u64,
        configs: &[FileSdConfig],
    ) -> (Vec<TargetGroup>, Option<JoinHandle<()>>) {
        if configs.is_empty() {
            return (Vec::new(), None);
        }
        let mut discs: Vec<FileDiscovery> = configs.iter().map(FileDiscovery::new).collect();
        let read = tokio::task::spawn_blocking(move || {
            for d in &mut discs {
                d.refresh();
            }
            discs
        })
        .await;
        let discs = match read {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(job = %job, error = %e, "file_sd: reading files failed");
                configs.iter().map(FileDiscovery::new).collect()
            }
        };
        let groups = discs.iter().flat_map(|d| d.groups().cloned()).collect();
        let task = rt.spawn(discovery_loop(
            Arc::downgrade(&self.inner),
            job.to_string(),
            generation,
            discs,
            self.inner.options.file_sd_poll_interval,
        ));
        (groups, Some(task))
    }

    /// The active targets with their last scrape's health, sorted by job and
    /// URL.
    pub fn targets(&self) -> Vec<TargetStatus> {
        self.inner
            .registry
            .read()
            .iter()
            .map(|r| {
                let st = r.status.lock().clone();
                TargetStatus {
                    job: r.job.clone(),
                    labels: r.target.labels.clone(),
                    discovered_labels: r.target.discovered.clone(),
                    scrape_url: r.target.url.clone(),
                    health: st.health,
                    last_scrape: st.last_scrape,
                    last_scrape_duration: st.last_duration,
                    last_error: st.last_error,
                    scrape_interval_ms: r.target.interval_ms,
                    scrape_timeout_ms: r.target.timeout_ms,
                }
            })
            .collect()
    }

    /// The metric metadata (TYPE, HELP, UNIT) each active target exposed in
    /// its recent scrapes, by family name, for `/api/v1/metadata` and
    /// `/api/v1/targets/metadata`.
    pub fn metadata(&self) -> Vec<TargetMetadata> {
        self.inner
            .registry
            .read()
            .iter()
            .map(|r| TargetMetadata {
                job: r.job.clone(),
                labels: r.target.labels.clone(),
                metrics: Arc::clone(&r.status.lock().metadata),
            })
            .collect()
    }

    /// Targets that target relabeling dropped, by job.
    pub fn dropped_targets(&self) -> Vec<DroppedTarget> {
        self.inner.dropped.read().clone()
    }

    /// The job names (scrape pools), sorted.
    pub async fn scrape_pools(&self) -> Vec<String> {
        let state = self.inner.state.lock().await;
        let mut v: Vec<String> = state.jobs.keys().cloned().collect();
        v.sort();
        v
    }

    /// Stops discovery and every loop and waits for them. As in
    /// Prometheus, nothing is marked stale: a restart must not put stale
    /// markers into the data (loops of removed targets still waiting to
    /// write theirs end without writing them too).
    pub async fn stop(&self) {
        let mut state = self.inner.state.lock().await;
        let mut joins = Vec::new();
        for (_, j) in state.jobs.drain() {
            if let Some(d) = j.discovery {
                d.abort();
            }
            for (_, h) in j.loops {
                let _ = h.stop.send(StopMode::Shutdown);
                joins.push(h.join);
            }
        }
        for (tx, join) in state.draining.drain(..) {
            let _ = tx.send(StopMode::Shutdown);
            joins.push(join);
        }
        for j in joins {
            let _ = j.await;
        }
        self.inner.registry.write().clear();
        self.inner.dropped.write().clear();
    }
}

impl<A> Drop for ScrapeManager<A> {
    fn drop(&mut self) {
        // Discovery tasks hold the state weakly and end on their next poll;
        // end them now if nobody holds the state any more.
        if let Ok(state) = self.inner.state.try_lock() {
            for j in state.jobs.values() {
                if let Some(d) = &j.discovery {
                    d.abort();
                }
            }
        }
    }
}

/// How a job's old loops may be reused by [`Inner::reconcile`].
#[derive(Debug, Clone, Copy)]
struct Reuse {
    /// The job config is unchanged: keep running loops as they are.
    same_config: bool,
    /// Sample labels are unchanged: a new loop takes the old one's cache.
    reusable: bool,
}

impl<A: Appendable + 'static> Inner<A> {
    fn spawn_loop(
        &self,
        rt: &tokio::runtime::Handle,
        cfg: &ScrapeConfig,
        target: Target,
        client: Arc<HttpClient>,
        cache: ScrapeCache,
    ) -> LoopHandle {
        let (tx, rx) = watch::channel(StopMode::Run);
        let status = Arc::new(Mutex::new(LoopStatus::default()));
        let lc = Arc::new(loop_config(
            cfg,
            target.clone(),
            client,
            self.options.offset_seed,
        ));
        let join = rt.spawn(scrape_loop::run(
            Arc::clone(&self.storage),
            lc,
            cache,
            Arc::clone(&status),
            rx,
        ));
        LoopHandle {
            target,
            stop: tx,
            join,
            status,
        }
    }

    /// The loops for `active`: old ones kept or replaced as `reuse` allows,
    /// new ones started; old loops of targets not in `active` are told the
    /// target is gone and moved to `draining`.
    #[allow(clippy::too_many_arguments)]
    async fn reconcile(
        &self,
        rt: &tokio::runtime::Handle,
        draining: &mut Vec<(watch::Sender<StopMode>, JoinHandle<Option<ScrapeCache>>)>,
        cfg: &ScrapeConfig,
        client: &Arc<HttpClient>,
        mut old: HashMap<u64, LoopHandle>,
        reuse: Reuse,
        active: Vec<Target>,
    ) -> HashMap<u64, LoopHandle> {
        let mut loops = HashMap::new();
        for target in active {
            let handle = match old.remove(&target.hash) {
                Some(h) if reuse.same_config => h,
                Some(h) if reuse.reusable => {
                    let _ = h.stop.send(StopMode::Replaced);
                    let cache = h.join.await.ok().flatten().unwrap_or_default();
                    self.spawn_loop(rt, cfg, target.clone(), Arc::clone(client), cache)
                }
                prev => {
                    if let Some(h) = prev {
                        let _ = h.stop.send(StopMode::Removed);
                        draining.push((h.stop, h.join));
                    }
                    self.spawn_loop(
                        rt,
                        cfg,
                        target.clone(),
                        Arc::clone(client),
                        ScrapeCache::default(),
                    )
                }
            };
            loops.insert(target.hash, handle);
        }
        // Targets of this job that are gone.
        for (_, h) in old {
            let _ = h.stop.send(StopMode::Removed);
            draining.push((h.stop, h.join));
        }
        loops
    }

    /// Publishes the targets of `state` for the status calls.
    fn publish(&self, state: &State) {
        let mut reg: Vec<Registered> = state
            .jobs
            .iter()
            .flat_map(|(job, j)| {
                j.loops.values().map(move |h| Registered {
                    job: job.clone(),
                    target: h.target.clone(),
                    status: Arc::clone(&h.status),
                })
            })
            .collect();
        reg.sort_by(|a, b| (&a.job, &a.target.url).cmp(&(&b.job, &b.target.url)));
        let mut jobs: Vec<&String> = state.jobs.keys().collect();
        jobs.sort();
        let dropped = jobs
            .into_iter()
            .flat_map(|j| state.jobs[j].dropped.iter().cloned())
            .collect();
        *self.registry.write() = reg;
        *self.dropped.write() = dropped;
    }

    /// A discovery update of `job`: its targets become those of its static
    /// groups and `groups`.
    async fn update_discovered(&self, job: &str, generation: u64, groups: Vec<TargetGroup>) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut guard = self.state.lock().await;
        let State { jobs, draining, .. } = &mut *guard;
        let Some(j) = jobs.get_mut(job).filter(|j| j.generation == generation) else {
            return;
        };
        j.discovered = groups;
        let targets = targets_from_groups(
            &j.config,
            &j.global,
            static_groups(&j.config).iter().chain(j.discovered.iter()),
        );
        log_failures(job, &targets.failures);
        let old = std::mem::take(&mut j.loops);
        j.loops = self
            .reconcile(
                &rt,
                draining,
                &j.config,
                &j.client,
                old,
                Reuse {
                    same_config: true,
                    reusable: true,
                },
                targets.active,
            )
            .await;
        j.dropped = targets.dropped;
        draining.retain(|(_, j)| !j.is_finished());
        tracing::debug!(job = %job, targets = j.loops.len(), "file_sd: targets updated");
        self.publish(&guard);
    }
}

/// Watches the files of one job's `file_sd_configs`: polls them for
/// changes, reads them all on each config's refresh interval, and hands
/// changed groups to the manager. Ends when the manager is gone (or when
/// aborted on reload and stop).
async fn discovery_loop<A: Appendable + 'static>(
    inner: Weak<Inner<A>>,
    job: String,
    generation: u64,
    mut discs: Vec<FileDiscovery>,
    poll: Duration,
) {
    let tick = discs
        .iter()
        .map(FileDiscovery::refresh_interval)
        .fold(poll, Duration::min)
        .max(Duration::from_millis(10));
    let start = tokio::time::Instant::now();
    let mut next_full: Vec<_> = discs.iter().map(|d| start + d.refresh_interval()).collect();
    loop {
        tokio::time::sleep(tick).await;
        if inner.strong_count() == 0 {
            return;
        }
        let now = tokio::time::Instant::now();
        let due: Vec<bool> = next_full.iter().map(|t| now >= *t).collect();
        for (n, (d, due)) in next_full.iter_mut().zip(discs.iter().zip(&due)) {
            if *due {
                *n = now + d.refresh_interval();
            }
        }
        let r = tokio::task::spawn_blocking(move || {
            let mut changed = false;
            for (d, due) in discs.iter_mut().zip(due) {
                if due || d.changed() {
                    changed |= d.refresh();
                }
            }
            let groups: Option<Vec<TargetGroup>> =
                changed.then(|| discs.iter().flat_map(|d| d.groups().cloned()).collect());
            (discs, groups)
        })
        .await;
        let Ok((d, groups)) = r else {
            tracing::error!(job = %job, "file_sd: the reader task failed; discovery stops");
            return;
        };
        discs = d;
        if let Some(groups) = groups {
            let Some(inner) = inner.upgrade() else {
                return;
            };
            inner.update_discovered(&job, generation, groups).await;
        }
    }
}
