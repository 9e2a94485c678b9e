//! One target's scrape loop: fetch on the async side, parse and append on
//! the blocking pool, report, repeat; stale markers when series vanish and
//! when the loop ends. Shaped after Prometheus's `scrapeLoop`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use tokio::sync::watch;
use vigil_model::storage::{AppendError, Appendable, Appender};
use vigil_model::time::now_ms;
use vigil_model::{stale_nan, Labels, LabelsBuilder, SeriesRef, Value, METRIC_NAME};

use crate::client::{FetchError, Fetched, HttpClient};
use crate::parse::{Entry, Format, MetricType, ParseOptions, Parser};
use crate::relabel::{self, RelabelConfig};
use crate::target::{Target, TargetHealth};

/// How far ahead of now a sample timestamp may be (Prometheus's
/// `maxAheadTime`).
const MAX_AHEAD_MS: i64 = 10 * 60 * 1000;

/// The synthetic series of every scrape, in the order Prometheus writes
/// them.
pub(crate) const REPORT_NAMES: [&str; 5] = [
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
];

/// Why a loop is asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopMode {
    /// Keep scraping.
    Run,
    /// The target is gone: write stale markers for all its series once
    /// the next two scrapes would have happened (as Prometheus, so that a
    /// target that comes back under a new loop is not marked stale).
    Removed,
    /// A new loop takes over this target and its cache: no stale markers.
    Replaced,
    /// The manager stops: write no stale markers (as Prometheus, whose
    /// end-of-run staleness is cancelled with the scrape manager's context:
    /// a restart must not put stale markers into the data).
    Shutdown,
}

/// What a loop knows about its target's scrapes, for the API.
#[derive(Debug, Clone, Default)]
pub(crate) struct LoopStatus {
    pub health: TargetHealth,
    pub last_scrape: Option<i64>,
    pub last_duration: Duration,
    pub last_error: Option<String>,
    pub metadata: Arc<Vec<(String, MetricMetadata)>>,
}

/// Metadata of a metric family, from TYPE, HELP and UNIT lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricMetadata {
    /// The type (`unknown` when no TYPE line was seen).
    pub kind: MetricType,
    /// The help text.
    pub help: String,
    /// The unit.
    pub unit: String,
}

/// The settings of one loop; immutable while it runs.
#[derive(Debug)]
pub(crate) struct LoopConfig {
    pub target: Target,
    pub client: Arc<HttpClient>,
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    pub track_timestamps_staleness: bool,
    pub sample_limit: usize,
    pub label_limit: usize,
    pub label_name_length_limit: usize,
    pub label_value_length_limit: usize,
    pub body_size_limit: u64,
    pub fallback: Option<Format>,
    pub metric_relabel: Vec<RelabelConfig>,
    pub offset_seed: u64,
}

#[derive(Debug)]
struct CacheEntry {
    sref: Option<SeriesRef>,
    labels: Labels,
    last_iter: u64,
}

#[derive(Debug)]
struct MetaEntry {
    meta: MetricMetadata,
    last_iter: u64,
}

/// A target's series cache, kept across scrapes (and handed to a new loop
/// when a reload leaves the target's labels unchanged).
#[derive(Debug, Default)]
pub(crate) struct ScrapeCache {
    iter: u64,
    successful_count: usize,
    /// Series text as exposed -> final labels and storage ref.
    series: HashMap<Box<str>, CacheEntry>,
    /// Series text dropped by metric relabeling -> last iteration seen.
    dropped: HashMap<Box<str>, u64>,
    /// Series appended in this scrape and the last one (for staleness).
    cur: HashMap<Labels, Option<SeriesRef>>,
    prev: HashMap<Labels, Option<SeriesRef>>,
    /// Refs of the report series.
    report_refs: [Option<SeriesRef>; 5],
    metadata: HashMap<String, MetaEntry>,
    /// Whether `metadata` changed since [`ScrapeCache::take_metadata_change`].
    meta_changed: bool,
}

impl ScrapeCache {
    fn iter_done(&mut self, flush: bool) {
        let count = self.series.len() + self.dropped.len() + self.metadata.len();
        let mut flush = flush;
        if flush {
            self.successful_count = count;
        } else if count > self.successful_count * 2 + 1000 {
            // Failed scrapes with churning series would grow the cache
            // forever; flush on a doubling, as Prometheus does.
            flush = true;
        }
        if flush {
            let iter = self.iter;
            self.series.retain(|_, e| e.last_iter == iter);
            self.dropped.retain(|_, i| *i == iter);
            let before = self.metadata.len();
            // Metadata outlives its series by 10 scrapes, as in Prometheus.
            self.metadata
                .retain(|_, e| iter.saturating_sub(e.last_iter) <= 10);
            self.meta_changed |= self.metadata.len() != before;
        }
        std::mem::swap(&mut self.prev, &mut self.cur);
        self.cur.clear();
        self.iter += 1;
    }

    /// Updates one family's metadata with `f`, noting whether it changed.
    fn update_meta(&mut self, family: &str, f: impl FnOnce(&mut MetricMetadata)) {
        let iter = self.iter;
        let e = match self.metadata.get_mut(family) {
            Some(e) => e,
            None => {
                self.meta_changed = true;
                self.metadata
                    .entry(family.to_string())
                    .or_insert_with(|| MetaEntry {
                        meta: MetricMetadata::default(),
                        last_iter: iter,
                    })
            }
        };
        e.last_iter = iter;
        let before = e.meta.clone();
        f(&mut e.meta);
        self.meta_changed |= e.meta != before;
    }

    /// The metadata of the families this target exposed recently, sorted by
    /// name, if it changed since the last call.
    fn take_metadata_change(&mut self) -> Option<Vec<(String, MetricMetadata)>> {
        if !std::mem::take(&mut self.meta_changed) {
            return None;
        }
        let mut v: Vec<_> = self
            .metadata
            .iter()
            .map(|(k, e)| (k.clone(), e.meta.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        Some(v)
    }
}

/// Counts of one scrape, for the report series.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    total: usize,
    added: usize,
    series_added: usize,
}

/// Builds a sample's final labels from the exposed ones: target labels
/// added (conflicts renamed `exported_<name>` unless `honor_labels`), then
/// metric relabeling. `None` when relabeling drops the series.
fn mutate_sample_labels(exposed: &Labels, lc: &LoopConfig) -> Option<Labels> {
    let mut lb = LabelsBuilder::from_labels(exposed);
    if lc.honor_labels {
        for l in lc.target.labels.iter() {
            if !exposed.has(l.name) {
                lb.set(l.name, l.value);
            }
        }
    } else {
        let mut conflicts: Vec<(&str, &str)> = Vec::new();
        for l in lc.target.labels.iter() {
            if let Some(v) = exposed.get(l.name) {
                if !v.is_empty() {
                    conflicts.push((l.name, v));
                }
            }
            lb.set(l.name, l.value);
        }
        conflicts.sort_by_key(|(n, _)| n.len());
        for (name, value) in conflicts {
            let mut new = format!("exported_{name}");
            while lb.get(&new).is_some() {
                new = format!("exported_{new}");
            }
            lb.set(&new, value);
        }
    }
    if !relabel::process(&mut lb, &lc.metric_relabel) {
        return None;
    }
    let l = lb.build();
    (!l.is_empty()).then_some(l)
}

/// Checks a new series' labels as Prometheus's append loop does.
fn check_labels(l: &Labels, lc: &LoopConfig) -> Result<(), String> {
    let Some(name) = l.get(METRIC_NAME) else {
        return Err("missing metric name (__name__ label)".to_string());
    };
    if l.iter().any(|x| x.name.is_empty()) {
        return Err(format!("invalid metric name or label names: {l}"));
    }
    let short: String = name.chars().take(50).collect();
    if lc.label_limit > 0 {
        let n = l.len();
        if n > lc.label_limit {
            return Err(format!(
                "label_limit exceeded (metric: {short}, number of labels: {n}, limit: {})",
                lc.label_limit
            ));
        }
    }
    for x in l.iter() {
        if lc.label_name_length_limit > 0 && x.name.len() > lc.label_name_length_limit {
            return Err(format!(
                "label_name_length_limit exceeded (metric: {short}, label name: {:.50}, length: {}, limit: {})",
                x.name,
                x.name.len(),
                lc.label_name_length_limit
            ));
        }
        if lc.label_value_length_limit > 0 && x.value.len() > lc.label_value_length_limit {
            return Err(format!(
                "label_value_length_limit exceeded (metric: {short}, label name: {:.50}, value: {:?}, length: {}, limit: {})",
                x.name,
                x.value.chars().take(50).collect::<String>(),
                x.value.len(),
                lc.label_value_length_limit
            ));
        }
    }
    Ok(())
}

/// Errors a scrape counts and skips rather than failing on.
fn is_soft(e: &AppendError) -> bool {
    matches!(
        e,
        AppendError::OutOfOrder
            | AppendError::DuplicateSampleForTimestamp
            | AppendError::OutOfBounds
            | AppendError::TooOld
            | AppendError::Limit(_)
    )
}

/// Appends stale markers for the series of the previous scrape that this
/// one did not append.
fn update_stale_markers<P: Appender>(app: &mut P, cache: &ScrapeCache, t: i64) {
    for (labels, sref) in &cache.prev {
        if cache.cur.contains_key(labels) {
            continue;
        }
        if let Err(e) = app.append(*sref, labels, t, Value::Float(stale_nan())) {
            if !is_soft(&e) {
                tracing::debug!(error = %e, series = %labels, "stale marker append failed");
            }
        }
    }
}

/// Parses `body` and appends its samples. On error returns the counts so
/// far and the reason; the caller rolls back.
fn append_body<P: Appender>(
    app: &mut P,
    lc: &LoopConfig,
    cache: &mut ScrapeCache,
    fetched: &Fetched,
    t_default: i64,
) -> Result<Counts, (Counts, String)> {
    let mut c = Counts::default();
    let format = Format::from_content_type(fetched.content_type.as_deref(), lc.fallback)
        .map_err(|e| (c, e.to_string()))?;
    if fetched.body.is_empty() {
        update_stale_markers(app, cache, t_default);
        cache.iter_done(false);
        return Ok(c);
    }
    let max_t = now_ms().saturating_add(MAX_AHEAD_MS);
    let mut parser = Parser::new(&fetched.body, format, ParseOptions::default());
    let mut appended = 0usize;
    let mut sample_limit_hit = false;
    let mut n_limit = 0usize;
    let mut first_limit: Option<String> = None;
    let (mut n_ooo, mut n_dup, mut n_oob) = (0usize, 0usize, 0usize);
    let mut err: Option<String> = None;
    let iter = cache.iter;
    loop {
        let entry = match parser.next() {
            Ok(Some(e)) => e,
            Ok(None) => break,
            Err(e) => {
                err = Some(e.to_string());
                break;
            }
        };
        let s = match entry {
            Entry::Sample(s) => s,
            Entry::Type { metric, kind } => {
                cache.update_meta(&metric, |m| m.kind = kind);
                continue;
            }
            Entry::Help { metric, help } => {
                cache.update_meta(&metric, |m| {
                    if m.help != help {
                        m.help = help.into_owned();
                    }
                });
                continue;
            }
            Entry::Unit { metric, unit } => {
                cache.update_meta(&metric, |m| {
                    if m.unit != unit {
                        m.unit = unit.to_string();
                    }
                });
                continue;
            }
            _ => continue,
        };
        c.total += 1;
        let parsed_ts = if lc.honor_timestamps {
            s.timestamp
        } else {
            None
        };
        let t = parsed_ts.unwrap_or(t_default);
        if let Some(i) = cache.dropped.get_mut(s.series) {
            *i = iter;
            continue;
        }
        let (labels, sref, cached, already) = match cache.series.get_mut(s.series) {
            Some(e) => {
                let already = e.last_iter == iter;
                e.last_iter = iter;
                (e.labels.clone(), e.sref, true, already)
            }
            None => {
                let exposed = match parser.labels() {
                    Ok(l) => l,
                    Err(e) => {
                        err = Some(format!("{e} in series {:?}", s.series));
                        break;
                    }
                };
                let Some(l) = mutate_sample_labels(&exposed, lc) else {
                    cache.dropped.insert(s.series.into(), iter);
                    continue;
                };
                if let Err(e) = check_labels(&l, lc) {
                    err = Some(e);
                    break;
                }
                (l, None, false, false)
            }
        };
        if already && parsed_ts.is_none() {
            n_dup += 1;
        } else {
            // The limit counts every sample offered to storage after
            // relabeling, as Prometheus's limitAppender (which wraps the
            // time check).
            appended += 1;
            if lc.sample_limit > 0 && appended > lc.sample_limit {
                // Keep parsing so that the report counts every sample.
                sample_limit_hit = true;
                // Prometheus tracks a new series past the limit for
                // staleness all the same (not a cached one).
                if !cached && (parsed_ts.is_none() || lc.track_timestamps_staleness) {
                    cache.cur.insert(labels.clone(), None);
                }
            } else if t > max_t {
                n_oob += 1;
            } else {
                match app.append(sref, &labels, t, Value::Float(s.value)) {
                    Ok(r) => {
                        if parsed_ts.is_none() || lc.track_timestamps_staleness {
                            cache.cur.insert(labels.clone(), Some(r));
                        }
                        if cached {
                            if let Some(e) = cache.series.get_mut(s.series) {
                                e.sref = Some(r);
                            }
                        } else {
                            cache.series.insert(
                                s.series.into(),
                                CacheEntry {
                                    sref: Some(r),
                                    labels,
                                    last_iter: iter,
                                },
                            );
                            if !sample_limit_hit {
                                c.series_added += 1;
                            }
                        }
                    }
                    Err(e) if is_soft(&e) => match e {
                        AppendError::OutOfOrder => n_ooo += 1,
                        AppendError::DuplicateSampleForTimestamp => n_dup += 1,
                        // A storage limit refuses the new series; the
                        // target's other series are still stored.
                        AppendError::Limit(l) => {
                            n_limit += 1;
                            first_limit.get_or_insert_with(|| l.to_string());
                        }
                        _ => n_oob += 1,
                    },
                    Err(e) => {
                        err = Some(e.to_string());
                        break;
                    }
                }
            }
        }
        c.added += 1;
    }
    if let Some(reason) = first_limit {
        tracing::warn!(
            target_url = %lc.target.url,
            refused = n_limit,
            first = %reason,
            "new series refused by a storage limit"
        );
    }
    if n_ooo + n_dup + n_oob > 0 {
        tracing::warn!(
            target_url = %lc.target.url,
            out_of_order = n_ooo,
            duplicates = n_dup,
            out_of_bounds = n_oob,
            "samples dropped on ingestion"
        );
    }
    if err.is_none() && sample_limit_hit {
        err = Some("sample limit exceeded".to_string());
    }
    match err {
        Some(e) => Err((c, e)),
        None => {
            update_stale_markers(app, cache, t_default);
            cache.iter_done(true);
            Ok(c)
        }
    }
}

/// The labels of the report series: the name and the target's labels.
fn report_labels(lc: &LoopConfig, name: &str) -> Labels {
    let mut lb = LabelsBuilder::from_labels(&lc.target.labels);
    lb.set(METRIC_NAME, name);
    lb.build()
}

fn append_report<P: Appender>(
    app: &mut P,
    lc: &LoopConfig,
    cache: &mut ScrapeCache,
    t: i64,
    values: [f64; 5],
) {
    for (i, (name, v)) in REPORT_NAMES.iter().zip(values).enumerate() {
        let labels = report_labels(lc, name);
        match app.append(cache.report_refs[i], &labels, t, Value::Float(v)) {
            Ok(r) => cache.report_refs[i] = Some(r),
            Err(e) if is_soft(&e) => {}
            Err(e) => tracing::warn!(error = %e, series = %labels, "report append failed"),
        }
    }
}

/// The result of one scrape, for the loop's status.
#[derive(Debug)]
pub(crate) struct ScrapeOutcome {
    pub error: Option<String>,
}

/// Appends one scrape (or its failure) and the report series, and commits:
/// the blocking half of a scrape. As in Prometheus, a failed fetch or parse
/// is an empty scrape: every series of the previous scrape gets a stale
/// marker.
pub(crate) fn append_scrape<A: Appendable>(
    storage: &A,
    lc: &LoopConfig,
    cache: &mut ScrapeCache,
    fetched: Result<Fetched, FetchError>,
    t: i64,
    duration: Duration,
) -> ScrapeOutcome {
    let mut app = storage.appender();
    let (counts, error) = match &fetched {
        Ok(f) => match append_body(&mut app, lc, cache, f, t) {
            Ok(c) => (c, None),
            Err((c, e)) => {
                drop(app);
                app = storage.appender();
                // Nothing of the failed scrape is stored, and the series of
                // the last scrape go stale, except (as in Prometheus, whose
                // rolled-back append leaves them in the staleness set) those
                // this scrape appended before it failed: they go stale once
                // a later scrape lacks them.
                update_stale_markers(&mut app, cache, t);
                cache.iter_done(false);
                (c, Some(e))
            }
        },
        Err(e) => {
            update_stale_markers(&mut app, cache, t);
            cache.iter_done(false);
            (Counts::default(), Some(e.to_string()))
        }
    };
    let up = if error.is_none() { 1.0 } else { 0.0 };
    append_report(
        &mut app,
        lc,
        cache,
        t,
        [
            up,
            duration.as_secs_f64(),
            counts.total as f64,
            counts.added as f64,
            counts.series_added as f64,
        ],
    );
    if let Err(e) = app.commit() {
        tracing::error!(error = %e, target_url = %lc.target.url, "scrape commit failed");
    }
    ScrapeOutcome { error }
}

/// Writes stale markers for every series of the last scrape and for the
/// report series, at `t`.
pub(crate) fn append_end_of_run<A: Appendable>(
    storage: &A,
    lc: &LoopConfig,
    cache: &mut ScrapeCache,
    t: i64,
) {
    let mut app = storage.appender();
    cache.cur.clear();
    update_stale_markers(&mut app, cache, t);
    cache.iter_done(false);
    append_report(&mut app, lc, cache, t, [stale_nan(); 5]);
    if let Err(e) = app.commit() {
        tracing::warn!(error = %e, target_url = %lc.target.url, "stale marker commit failed");
    }
}

fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Runs `f(storage, cache)` on the blocking pool and gives the cache back.
/// A panic there (a bug) loses the cache; the loop goes on with a new one.
async fn blocking<A, R, F>(storage: &Arc<A>, cache: ScrapeCache, f: F) -> (ScrapeCache, Option<R>)
where
    A: Appendable + 'static,
    R: Send + 'static,
    F: FnOnce(&A, &mut ScrapeCache) -> R + Send + 'static,
{
    let storage = Arc::clone(storage);
    let r = tokio::task::spawn_blocking(move || {
        let mut cache = cache;
        let r = f(&storage, &mut cache);
        (cache, r)
    })
    .await;
    match r {
        Ok((c, r)) => (c, Some(r)),
        Err(e) => {
            tracing::error!(error = %e, "scrape append task failed");
            (ScrapeCache::default(), None)
        }
    }
}

/// The loop of one target. Returns its cache when it is replaced.
pub(crate) async fn run<A: Appendable + 'static>(
    storage: Arc<A>,
    lc: Arc<LoopConfig>,
    cache: ScrapeCache,
    status: Arc<Mutex<LoopStatus>>,
    mut stop: watch::Receiver<StopMode>,
) -> Option<ScrapeCache> {
    let mut cache = cache;
    let interval_ms = lc.target.interval_ms.max(1);
    let interval = Duration::from_millis(interval_ms as u64);
    let timeout = Duration::from_millis(lc.target.timeout_ms.max(1) as u64);

    let offset = lc.target.offset(unix_nanos(), lc.offset_seed);
    tokio::select! {
        _ = tokio::time::sleep(offset) => {}
        r = stop.wait_for(|m| *m != StopMode::Run) => {
            return match r.map(|m| *m) {
                Ok(StopMode::Replaced) => Some(cache),
                _ => None,
            };
        }
    }

    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut aligned = now_ms();
    let mut last: Option<i64> = None;
    // Timestamps within this much of the ideal tick are aligned to it, for
    // better compression (prometheus/prometheus#7846).
    let tolerance = (interval_ms / 100).min(2);

    let mode = loop {
        tokio::select! {
            biased;
            r = stop.wait_for(|m| *m != StopMode::Run) => {
                break r.map(|m| *m).ok();
            }
            _ = ticker.tick() => {}
        }
        let now = now_ms();
        while now - aligned >= interval_ms {
            aligned += interval_ms;
        }
        let t = if now - aligned <= tolerance {
            aligned
        } else {
            now
        };
        let start = Instant::now();
        let fetched = tokio::select! {
            biased;
            r = stop.wait_for(|m| *m != StopMode::Run) => {
                break r.map(|m| *m).ok();
            }
            f = lc.client.fetch(&lc.target.url, timeout, lc.body_size_limit) => f,
        };
        let duration = start.elapsed();
        let lc2 = Arc::clone(&lc);
        let (c, outcome) = blocking(&storage, cache, move |s, cache| {
            let o = append_scrape(s, &lc2, cache, fetched, t, duration);
            (o, cache.take_metadata_change())
        })
        .await;
        cache = c;
        let (error, meta) = match outcome {
            Some((o, meta)) => (o.error, meta),
            None => (
                Some("internal error appending the scrape".to_string()),
                None,
            ),
        };
        {
            let mut st = status.lock();
            st.health = if error.is_none() {
                TargetHealth::Up
            } else {
                TargetHealth::Down
            };
            st.last_scrape = Some(t);
            st.last_duration = duration;
            st.last_error = error;
            if let Some(m) = meta {
                st.metadata = Arc::new(m);
            }
        }
        last = Some(t);
    };

    match mode {
        Some(StopMode::Replaced) => Some(cache),
        Some(StopMode::Shutdown) => None,
        Some(StopMode::Removed) => {
            // Nothing was scraped: nothing to mark stale.
            last?;
            // Wait for when the next scrape would have been and record its
            // time; then one more interval and 10%, in case the target comes
            // back under a new loop; then mark everything stale at the first
            // time. A shutdown meanwhile ends the loop without writing them,
            // as Prometheus's endOfRunStaleness returns when its parent
            // context is cancelled.
            let mut stale_t = None;
            for step in 0..3 {
                let wait = async {
                    if step < 2 {
                        ticker.tick().await;
                    } else {
                        tokio::time::sleep(interval / 10).await;
                    }
                };
                tokio::select! {
                    _ = wait => {}
                    _ = stop.wait_for(|m| *m == StopMode::Shutdown) => {
                        // Shut down, or the manager is gone: no writes.
                        return None;
                    }
                }
                if step == 0 {
                    stale_t = Some(now_ms());
                }
            }
            let t = stale_t.unwrap_or_else(now_ms);
            let lc2 = Arc::clone(&lc);
            blocking(&storage, cache, move |s, c| {
                append_end_of_run(s, &lc2, c, t)
            })
            .await;
            None
        }
        // The manager was dropped without stop(): end quietly.
        _ => None,
    }
}
