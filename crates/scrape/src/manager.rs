//! The scrape manager: turns `scrape_configs` into one loop per target and
//! keeps them in step with configuration reloads.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use vigil_model::Appendable;

use crate::client::{ClientError, HttpClient};
use crate::config::{validate_scrape_configs, ConfigError, GlobalDefaults, ScrapeConfig};
use crate::scrape_loop::{self, LoopConfig, LoopStatus, MetricMetadata, ScrapeCache, StopMode};
use crate::target::{targets_from_config, DroppedTarget, Target, TargetStatus};

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
#[derive(Debug, Clone, Default)]
pub struct ScrapeOptions {
    /// Mixed into every target's start offset, so that several servers
    /// scraping the same targets spread out (Prometheus's `offsetSeed`).
    pub offset_seed: u64,
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
}

#[derive(Default)]
struct State {
    jobs: HashMap<String, Job>,
    /// Loops of removed targets still waiting to write their stale markers.
    draining: Vec<(watch::Sender<StopMode>, JoinHandle<Option<ScrapeCache>>)>,
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
    storage: Arc<A>,
    options: ScrapeOptions,
    state: tokio::sync::Mutex<State>,
    registry: RwLock<Vec<Registered>>,
    dropped: RwLock<Vec<DroppedTarget>>,
}

impl<A> std::fmt::Debug for ScrapeManager<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScrapeManager")
            .field("targets", &self.registry.read().len())
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

impl<A: Appendable + 'static> ScrapeManager<A> {
    /// A manager with no jobs; [`apply`](Self::apply) starts them.
    pub fn new(storage: Arc<A>, options: ScrapeOptions) -> Self {
        ScrapeManager {
            storage,
            options,
            state: tokio::sync::Mutex::new(State::default()),
            registry: RwLock::new(Vec::new()),
            dropped: RwLock::new(Vec::new()),
        }
    }

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

    /// Makes the running loops match `configs`: validates them (with
    /// [`validate_scrape_configs`]), builds each changed job's HTTP client,
    /// then keeps the loops of unchanged (job config, target) pairs running
    /// with their state, stops the loops of targets that are gone (their
    /// series get stale markers once two more intervals have passed, as in
    /// Prometheus) and starts loops for new targets. A target whose job
    /// changed gets a new loop; when the change leaves its sample labels
    /// alone the new loop takes over the old one's series cache and no stale
    /// markers are written. On error nothing changes.
    pub async fn apply(
        &self,
        configs: &[ScrapeConfig],
        global: &GlobalDefaults,
    ) -> Result<(), ScrapeError> {
        validate_scrape_configs(configs, global)?;
        let rt = tokio::runtime::Handle::try_current().map_err(|_| ScrapeError::NoRuntime)?;
        let mut state = self.state.lock().await;

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
        let mut dropped = Vec::new();
        let mut new_jobs = HashMap::new();
        for cfg in configs {
            let client = Arc::clone(&clients[&cfg.job_name]);
            let targets = targets_from_config(cfg, global);
            for (addr, e) in &targets.failures {
                tracing::warn!(job = %cfg.job_name, target = %addr, error = %e, "creating target failed");
            }
            dropped.extend(targets.dropped);
            let mut old = old_jobs.remove(&cfg.job_name);
            let same_config = old
                .as_ref()
                .is_some_and(|j| j.config == *cfg && j.global == *global);
            let reusable = old.as_ref().is_some_and(|j| cache_reusable(&j.config, cfg));
            let mut loops = HashMap::new();
            for target in targets.active {
                let prev = old.as_mut().and_then(|j| j.loops.remove(&target.hash));
                let handle = match prev {
                    Some(h) if same_config => h,
                    Some(h) if reusable => {
                        let _ = h.stop.send(StopMode::Replaced);
                        let cache = h.join.await.ok().flatten().unwrap_or_default();
                        self.spawn_loop(&rt, cfg, target.clone(), Arc::clone(&client), cache)
                    }
                    prev => {
                        if let Some(h) = prev {
                            let _ = h.stop.send(StopMode::Removed);
                            state.draining.push((h.stop, h.join));
                        }
                        self.spawn_loop(
                            &rt,
                            cfg,
                            target.clone(),
                            Arc::clone(&client),
                            ScrapeCache::default(),
                        )
                    }
                };
                loops.insert(target.hash, handle);
            }
            // Targets of this job that are gone.
            if let Some(j) = old {
                for (_, h) in j.loops {
                    let _ = h.stop.send(StopMode::Removed);
                    state.draining.push((h.stop, h.join));
                }
            }
            new_jobs.insert(
                cfg.job_name.clone(),
                Job {
                    config: cfg.clone(),
                    global: *global,
                    client,
                    loops,
                },
            );
        }
        // Jobs that are gone.
        for (_, j) in old_jobs {
            for (_, h) in j.loops {
                let _ = h.stop.send(StopMode::Removed);
                state.draining.push((h.stop, h.join));
            }
        }
        state.draining.retain(|(_, j)| !j.is_finished());
        state.jobs = new_jobs;

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
        *self.registry.write() = reg;
        *self.dropped.write() = dropped;
        Ok(())
    }

    /// The active targets with their last scrape's health, sorted by job and
    /// URL.
    pub fn targets(&self) -> Vec<TargetStatus> {
        self.registry
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
        self.registry
            .read()
            .iter()
            .map(|r| TargetMetadata {
                job: r.job.clone(),
                labels: r.target.labels.clone(),
                metrics: Arc::clone(&r.status.lock().metadata),
            })
            .collect()
    }

    /// Targets that target relabeling dropped.
    pub fn dropped_targets(&self) -> Vec<DroppedTarget> {
        self.dropped.read().clone()
    }

    /// Stops every loop and waits for them. Each target's series (and its
    /// `up` and `scrape_*` series) get a stale marker now. (Prometheus
    /// writes none on shutdown; vigil's embedded use wants a clean end.)
    pub async fn stop(&self) {
        let mut state = self.state.lock().await;
        let mut joins = Vec::new();
        for (_, j) in state.jobs.drain() {
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
        self.registry.write().clear();
        self.dropped.write().clear();
    }
}
