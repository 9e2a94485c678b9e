//! Runs rule groups on a tokio runtime the caller owns: one task per group,
//! evaluations at aligned slots, missed slots counted, alert state
//! persisted after every evaluation and restored at start, and reloads that
//! keep the state of unchanged groups.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use vigil_model::{Appendable, Labels};

use crate::file::{load_rule_file, parse_rule_file, RuleFile, RuleFileError};
use crate::group::OutgoingAlert;
use crate::group::{AlertSink, Group, GroupEnv, SavedGroup};
use crate::query::QueryFunc;

/// Settings of a [`RuleManager`].
#[derive(Debug, Clone)]
pub struct ManagerOptions {
    /// `global.external_labels`: added to alerts that leave vigil and
    /// available to templates.
    pub external_labels: Labels,
    /// The URL vigil is reached at, for templates and generator URLs.
    pub external_url: String,
    /// How often firing alerts are re-sent (Prometheus's
    /// `--rules.alert.resend-delay`, 1m).
    pub resend_delay: i64,
    /// How old persisted alert state may be and still be restored
    /// (Prometheus's `--rules.alert.for-outage-tolerance`, 1h).
    pub outage_tolerance: i64,
    /// Where alert state is persisted (one JSON file per group); `None`
    /// keeps it in memory only, and a restart restores `for` progress from
    /// `ALERTS_FOR_STATE` alone.
    pub state_dir: Option<PathBuf>,
    /// Whether recorded series, `ALERTS` and `ALERTS_FOR_STATE` are stored
    /// with the external labels (vigil's default, issue #7). Off, they are
    /// stored as Prometheus stores them, and external labels are added only
    /// on the way out (alerts, federation, remote write).
    pub store_external_labels: bool,
}

impl Default for ManagerOptions {
    fn default() -> Self {
        ManagerOptions {
            external_labels: Labels::empty(),
            external_url: "http://localhost:9090".into(),
            resend_delay: 60_000,
            outage_tolerance: 3_600_000,
            state_dir: None,
            store_external_labels: true,
        }
    }
}

/// Loads and checks every rule file, then builds the groups. Every error
/// of every file is returned, and then no group at all.
pub fn load_groups(
    files: &[PathBuf],
    default_interval: i64,
) -> Result<Vec<Group>, Vec<RuleFileError>> {
    let mut errors = Vec::new();
    let mut groups = Vec::new();
    for f in files {
        match load_rule_file(f) {
            Ok(rf) => build_groups(&rf, f, default_interval, &mut groups, &mut errors),
            Err(e) => errors.extend(e),
        }
    }
    if errors.is_empty() {
        Ok(groups)
    } else {
        Err(errors)
    }
}

/// Parses and checks a rule file's text, then builds its groups. `file`
/// names the source in errors and identifies the groups (their key, their
/// alignment, their persisted state); it is not read.
///
/// ```
/// use std::path::Path;
///
/// let groups = vigil_rules::parse_groups(
///     "groups:\n- name: app\n  rules:\n  - alert: Down\n    expr: up == 0\n",
///     Path::new("app.rules.yml"),
///     60_000,
/// )
/// .unwrap();
/// assert_eq!(groups[0].name, "app");
/// assert!(vigil_rules::parse_groups("groups: [{name: g, rules: [{record: x}]}]", Path::new("r"), 60_000).is_err());
/// ```
pub fn parse_groups(
    text: &str,
    file: &Path,
    default_interval: i64,
) -> Result<Vec<Group>, Vec<RuleFileError>> {
    let rf = parse_rule_file(text, file)?;
    let mut groups = Vec::new();
    let mut errors = Vec::new();
    build_groups(&rf, file, default_interval, &mut groups, &mut errors);
    if errors.is_empty() {
        Ok(groups)
    } else {
        Err(errors)
    }
}

fn build_groups(
    rf: &RuleFile,
    file: &Path,
    default_interval: i64,
    groups: &mut Vec<Group>,
    errors: &mut Vec<RuleFileError>,
) {
    for g in &rf.groups {
        match Group::new(g, file, default_interval) {
            Ok(g) => groups.push(g),
            Err(reason) => errors.push(RuleFileError {
                file: file.to_path_buf(),
                group: Some(g.name.clone()),
                rule: None,
                line: None,
                reason,
            }),
        }
    }
}

struct Running {
    group: Arc<Mutex<Group>>,
    stop: watch::Sender<bool>,
    join: JoinHandle<()>,
}

/// Runs rule groups on a tokio runtime the caller owns, over a storage, a
/// query function and an alert sink.
///
/// Each group is a task evaluated at wall-clock slots of its interval,
/// shifted by a hash of its source and name (as Prometheus spreads groups);
/// the evaluation itself, which queries and appends, runs on the runtime's
/// blocking pool. Groups come from code or YAML through
/// [`set_groups`](Self::set_groups), or from rule files through
/// [`update`](Self::update); calling either again is a reload that keeps
/// the state of unchanged groups. Alerts reach the [`AlertSink`] given to
/// [`new`](Self::new): a closure, a channel's sender, or your own.
///
/// The manager's async methods must be awaited inside a runtime with the
/// time driver enabled (`enable_time` or `enable_all`); the groups' tasks
/// run on that runtime. [`stop`](Self::stop) stops them and waits for
/// them; dropping the manager stops them too, each at its next wait for a
/// slot, without waiting. For
/// evaluations at times of your choosing instead, without a runtime, use
/// [`RuleEngine`](crate::RuleEngine).
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use vigil_model::{labels, Appendable, Appender, MemStorage, Value};
/// use vigil_promql::{Engine, EngineOptions};
/// use vigil_rules::{AlertBuilder, EngineQuery, GroupBuilder, ManagerOptions, OutgoingAlert, RuleManager};
///
/// // The caller's runtime; the manager needs its time driver.
/// let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
/// runtime.block_on(async {
///     let store = Arc::new(MemStorage::new());
///     let mut app = store.appender();
///     let now = vigil_model::time::now_ms();
///     app.append(None, &labels!("__name__" => "queue_length"), now, Value::Float(150.0)).unwrap();
///     app.commit().unwrap();
///
///     let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<OutgoingAlert>>();
///     let engine = Arc::new(Engine::new(EngineOptions::default()));
///     let rules = RuleManager::new(
///         store.clone(),
///         Arc::new(EngineQuery::new(engine, store.clone())),
///         Arc::new(tx),
///         ManagerOptions::default(),
///     );
///     let group = GroupBuilder::new("app")
///         .interval(Duration::from_millis(50))
///         .rule(AlertBuilder::new("QueueFull", "queue_length > 100"))
///         .build()
///         .unwrap();
///     rules.set_groups(vec![group]).await.unwrap();
///
///     // No `for`: the first evaluation, within 50 ms, fires it.
///     let sent = tokio::time::timeout(Duration::from_secs(10), rx.recv())
///         .await
///         .expect("no alert within 10 s")
///         .unwrap();
///     assert_eq!(sent[0].labels.get("alertname"), Some("QueueFull"));
///     rules.stop().await;
/// });
/// ```
pub struct RuleManager<A> {
    storage: Arc<A>,
    query: Arc<dyn QueryFunc>,
    sink: Arc<dyn AlertSink>,
    opts: Arc<RwLock<ManagerOptions>>,
    running: tokio::sync::Mutex<Vec<Running>>,
    /// The groups in order, for status readers.
    groups: RwLock<Vec<Arc<Mutex<Group>>>>,
}

impl<A> std::fmt::Debug for RuleManager<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleManager")
            .field("groups", &self.groups.read().len())
            .finish()
    }
}

impl<A: Appendable + 'static> RuleManager<A> {
    /// A manager with no groups: [`set_groups`](Self::set_groups) starts
    /// groups built in code or parsed, [`update`](Self::update) loads rule
    /// files. Nothing runs until then.
    pub fn new(
        storage: Arc<A>,
        query: Arc<dyn QueryFunc>,
        sink: Arc<dyn AlertSink>,
        opts: ManagerOptions,
    ) -> Self {
        RuleManager {
            storage,
            query,
            sink,
            opts: Arc::new(RwLock::new(opts)),
            running: tokio::sync::Mutex::new(Vec::new()),
            groups: RwLock::new(Vec::new()),
        }
    }

    /// Makes the running groups `groups`: groups built in code with
    /// [`GroupBuilder`](crate::GroupBuilder), parsed with
    /// [`parse_groups`], or loaded with [`load_groups`].
    ///
    /// Groups are matched to the running ones by their key, source and
    /// name ([`Group::key`]): a group whose definition and interval did not
    /// change keeps running with its state (the new value is dropped); a
    /// changed group takes over the alert state of its predecessor; a
    /// running group not in `groups` stops and writes stale markers for
    /// the series it recorded; a new group restores its persisted state
    /// (when [`ManagerOptions::state_dir`] is set) and starts. An empty
    /// `groups` stops every group.
    ///
    /// Two groups with the same source and name are refused (give built
    /// groups distinct names, or distinct
    /// [`source`](crate::GroupBuilder::source)s): every repeat is returned
    /// as an error and nothing changes.
    ///
    /// This is what [`update`](Self::update) does after loading its files,
    /// so files and groups from code can be mixed by loading the files
    /// with [`load_groups`] and passing them together with the others.
    pub async fn set_groups(&self, groups: Vec<Group>) -> Result<(), Vec<RuleFileError>> {
        self.apply(groups, None).await
    }

    /// Loads `files` and makes the running groups match them: groups whose
    /// definition did not change keep running with their state; changed
    /// groups take over the alert state of their predecessor; removed
    /// groups stop and write stale markers for their series; new groups
    /// restore persisted state. On any error in any file nothing changes.
    ///
    /// `default_interval` (ms) applies to groups that set no interval;
    /// `external_labels` replaces [`ManagerOptions::external_labels`].
    /// Apart from loading the files this is [`set_groups`](Self::set_groups).
    pub async fn update(
        &self,
        files: &[PathBuf],
        default_interval: i64,
        external_labels: Labels,
    ) -> Result<(), Vec<RuleFileError>> {
        let files = files.to_vec();
        let new_groups = tokio::task::spawn_blocking(move || load_groups(&files, default_interval))
            .await
            .map_err(|e| {
                vec![RuleFileError {
                    file: PathBuf::new(),
                    group: None,
                    rule: None,
                    line: None,
                    reason: format!("loading rule files: {e}"),
                }]
            })??;
        self.apply(new_groups, Some(external_labels)).await
    }

    /// The one path behind [`set_groups`](Self::set_groups) and
    /// [`update`](Self::update): checks the keys, sets the external labels
    /// when given, then reconciles the running groups with `new_groups`.
    async fn apply(
        &self,
        new_groups: Vec<Group>,
        external_labels: Option<Labels>,
    ) -> Result<(), Vec<RuleFileError>> {
        let errors = repeated_keys(&new_groups);
        if !errors.is_empty() {
            return Err(errors);
        }
        if let Some(labels) = external_labels {
            self.opts.write().external_labels = labels;
        }
        let mut running = self.running.lock().await;
        let mut old: HashMap<(PathBuf, String), Running> = running
            .drain(..)
            .map(|r| {
                let key = r.group.lock().key();
                (key, r)
            })
            .collect();
        let now = vigil_model::time::now_ms();
        let mut next = Vec::with_capacity(new_groups.len());
        for mut g in new_groups {
            let key = g.key();
            if let Some(prev) = old.remove(&key) {
                let unchanged = {
                    let p = prev.group.lock();
                    p.def == g.def && p.interval == g.interval
                };
                if unchanged {
                    next.push(prev);
                    continue;
                }
                g.copy_state(&prev.group.lock());
                stop_running(prev).await;
            } else {
                self.restore(&mut g, now);
            }
            next.push(self.spawn(g));
        }
        for (_, gone) in old {
            let group = gone.group.clone();
            stop_running(gone).await;
            let storage = self.storage.clone();
            let state_dir = self.opts.read().state_dir.clone();
            let _ = tokio::task::spawn_blocking(move || {
                let mut g = group.lock();
                g.mark_stale(&*storage, vigil_model::time::now_ms());
                if let Some(dir) = state_dir {
                    let _ = std::fs::remove_file(state_path(&dir, &g));
                }
            })
            .await;
        }
        *self.groups.write() = next.iter().map(|r| r.group.clone()).collect();
        *running = next;
        Ok(())
    }

    /// Restores persisted state for a group that is new to this process.
    fn restore(&self, g: &mut Group, now: i64) {
        restore_persisted(g, &self.opts.read(), now);
    }

    fn spawn(&self, g: Group) -> Running {
        let group = Arc::new(Mutex::new(g));
        let (stop, mut stop_rx) = watch::channel(false);
        let storage = self.storage.clone();
        let query = self.query.clone();
        let sink = self.sink.clone();
        let opts = self.opts.clone();
        let gr = group.clone();
        let join = tokio::spawn(async move {
            let (interval, mut slot) = {
                let g = gr.lock();
                let now = vigil_model::time::now_ms();
                (g.interval, g.eval_timestamp(now) + g.interval)
            };
            loop {
                let wait = slot - vigil_model::time::now_ms();
                if wait > 0 {
                    tokio::select! {
                        _ = tokio::time::sleep(std::time::Duration::from_millis(wait as u64)) => {}
                        _ = stop_rx.changed() => return,
                    }
                }
                if *stop_rx.borrow() {
                    return;
                }
                let (gr2, storage2, query2, sink2, opts2) = (
                    gr.clone(),
                    storage.clone(),
                    query.clone(),
                    sink.clone(),
                    opts.clone(),
                );
                let ts = slot;
                let _ = tokio::task::spawn_blocking(move || {
                    eval_and_persist(&gr2, &*storage2, &*query2, &*sink2, &opts2.read(), ts)
                })
                .await;
                // Count the slots this evaluation (or a stall) overran.
                let now = vigil_model::time::now_ms();
                let missed = ((now - slot) / interval - 1).max(0);
                if missed > 0 {
                    let mut g = gr.lock();
                    g.missed += missed as u64;
                    tracing::warn!(group = %g.name, missed, "rule group missed evaluation slots");
                }
                slot += (missed + 1) * interval;
            }
        });
        Running { group, stop, join }
    }

    /// Snapshots of the groups, in file and definition order.
    pub fn groups(&self) -> Vec<Group> {
        self.groups
            .read()
            .iter()
            .map(|g| g.lock().clone())
            .collect()
    }

    /// Stops every group. Alert state stays persisted; no stale markers
    /// are written (a restart continues the series).
    pub async fn stop(&self) {
        let mut running = self.running.lock().await;
        for r in running.drain(..) {
            stop_running(r).await;
        }
    }
}

/// An error for every group whose source and name an earlier group in
/// `groups` already has: the two would share their persisted state and
/// their identity across reloads.
fn repeated_keys(groups: &[Group]) -> Vec<RuleFileError> {
    let mut seen = std::collections::HashSet::new();
    groups
        .iter()
        .filter(|g| !seen.insert((&g.file, &g.name)))
        .map(|g| RuleFileError {
            file: g.file.clone(),
            group: Some(g.name.clone()),
            rule: None,
            line: None,
            reason: "another group has the same source and name".into(),
        })
        .collect()
}

async fn stop_running(r: Running) {
    let _ = r.stop.send(true);
    let _ = r.join.await;
}

/// One evaluation of a group at `ts`, then its alert state to disk.
pub fn eval_and_persist<A: Appendable>(
    group: &Mutex<Group>,
    storage: &A,
    query: &dyn QueryFunc,
    sink: &dyn AlertSink,
    opts: &ManagerOptions,
    ts: i64,
) {
    eval_group(&mut group.lock(), storage, query, sink, opts, ts);
}

/// One evaluation of a group at `ts` (restoring `for` progress from
/// `ALERTS_FOR_STATE` on its first one when nothing was persisted), then
/// its alert state to disk. Returns the alerts sent.
pub(crate) fn eval_group<A: Appendable>(
    g: &mut Group,
    storage: &A,
    query: &dyn QueryFunc,
    sink: &dyn AlertSink,
    opts: &ManagerOptions,
    ts: i64,
) -> Vec<OutgoingAlert> {
    let first = !g.is_restored();
    let none = Labels::empty();
    let stored_labels = if opts.store_external_labels {
        &opts.external_labels
    } else {
        &none
    };
    let env = GroupEnv {
        query,
        storage,
        sink,
        external_labels: &opts.external_labels,
        stored_labels,
        external_url: &opts.external_url,
        resend_delay: opts.resend_delay,
        outage_tolerance: opts.outage_tolerance,
    };
    let sent = g.eval(ts, &env);
    if first {
        // Nothing was persisted for this group: take `for` progress from
        // the ALERTS_FOR_STATE series written before the restart.
        g.restore_from_series(query, ts, opts.outage_tolerance, stored_labels);
    }
    if let Some(dir) = &opts.state_dir {
        if let Err(e) = persist(dir, g, ts) {
            tracing::warn!(group = %g.name, error = %e, "persisting alert state failed");
        }
    }
    sent
}

/// Restores the state persisted in `opts.state_dir` into a group new to
/// this process, if there is any and it is recent enough.
pub(crate) fn restore_persisted(g: &mut Group, opts: &ManagerOptions, now: i64) {
    let Some(dir) = &opts.state_dir else { return };
    let path = state_path(dir, g);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return;
    };
    match serde_json::from_str::<SavedGroup>(&text) {
        Ok(saved) => {
            let n = g.restore(&saved, now, opts.outage_tolerance);
            if n > 0 {
                tracing::info!(group = %g.name, alerts = n, "restored alert state");
            }
        }
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "persisted alert state is unreadable; restoring from ALERTS_FOR_STATE instead");
        }
    }
}

fn state_path(dir: &Path, g: &Group) -> PathBuf {
    dir.join(format!("{:016x}.json", g.hash()))
}

fn persist(dir: &Path, g: &Group, now: i64) -> std::io::Result<()> {
    let saved = g.saved_state(now);
    if saved.rules.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    let path = state_path(dir, g);
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_vec(&saved).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, &path)
}
