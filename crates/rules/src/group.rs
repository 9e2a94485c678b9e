//! A rule group: its rules evaluated in order at aligned times, results
//! appended with stale markers for series that stop, alerts handed to a
//! sink, and alert state persisted so a restart resumes it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use vigil_model::{Appendable, Appender, Labels, LabelsBuilder, Value};

use crate::alert::{Alert, AlertState};
use crate::file::GroupDef;
use crate::query::QueryFunc;
use crate::rule::{EvalEnv, Health, Rule};

/// An alert on its way out of vigil: what Alertmanager's v2 API and
/// vigil's notifier take.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingAlert {
    /// Labels, external labels added where the alert has none of its own.
    pub labels: Labels,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// When it started firing (ms).
    pub starts_at: i64,
    /// When it resolved, or until when it is valid while firing (ms).
    pub ends_at: i64,
    /// A link to the expression.
    pub generator_url: String,
}

impl OutgoingAlert {
    /// Resolved alerts end at or before `now`.
    pub fn is_resolved(&self, now: i64) -> bool {
        self.ends_at <= now
    }
}

/// Where alerts go: Alertmanager, vigil's notifier, a channel, a log.
///
/// Implemented for closures and for the sending halves of channels, so an
/// embedding program can react to alerts in-process:
///
/// - `Fn(Vec<OutgoingAlert>)`: called with each batch;
/// - [`std::sync::mpsc::Sender`] and [`tokio::sync::mpsc::UnboundedSender`]:
///   each batch is sent; the caller owns the queue and its growth;
/// - [`std::sync::mpsc::SyncSender`] and [`tokio::sync::mpsc::Sender`]
///   (bounded): a batch that does not fit is dropped with a warning, as
///   Prometheus's notifier drops alerts when its queue is full, because
///   evaluation must not wait on a slow reader. Firing alerts are re-sent
///   every `resend_delay`, so a dropped batch is repeated later.
///
/// A batch sent to a channel whose receiver is gone is discarded.
///
/// ```
/// use std::sync::mpsc;
/// use vigil_rules::{AlertSink, OutgoingAlert};
///
/// let (tx, rx) = mpsc::channel::<Vec<OutgoingAlert>>();
/// let sink: Box<dyn AlertSink> = Box::new(tx);
/// sink.send(Vec::new());
/// assert!(rx.try_recv().unwrap().is_empty());
/// ```
pub trait AlertSink: Send + Sync {
    /// Takes a batch of alerts to deliver. Must not block for long.
    fn send(&self, alerts: Vec<OutgoingAlert>);
}

impl<F: Fn(Vec<OutgoingAlert>) + Send + Sync> AlertSink for F {
    fn send(&self, alerts: Vec<OutgoingAlert>) {
        self(alerts)
    }
}

impl AlertSink for std::sync::mpsc::Sender<Vec<OutgoingAlert>> {
    fn send(&self, alerts: Vec<OutgoingAlert>) {
        // A receiver that is gone wants no alerts.
        let _ = std::sync::mpsc::Sender::send(self, alerts);
    }
}

impl AlertSink for std::sync::mpsc::SyncSender<Vec<OutgoingAlert>> {
    fn send(&self, alerts: Vec<OutgoingAlert>) {
        if let Err(std::sync::mpsc::TrySendError::Full(dropped)) = self.try_send(alerts) {
            tracing::warn!(
                alerts = dropped.len(),
                "alert channel is full; alerts dropped"
            );
        }
    }
}

impl AlertSink for tokio::sync::mpsc::UnboundedSender<Vec<OutgoingAlert>> {
    fn send(&self, alerts: Vec<OutgoingAlert>) {
        let _ = tokio::sync::mpsc::UnboundedSender::send(self, alerts);
    }
}

impl AlertSink for tokio::sync::mpsc::Sender<Vec<OutgoingAlert>> {
    fn send(&self, alerts: Vec<OutgoingAlert>) {
        if let Err(tokio::sync::mpsc::error::TrySendError::Full(dropped)) = self.try_send(alerts) {
            tracing::warn!(
                alerts = dropped.len(),
                "alert channel is full; alerts dropped"
            );
        }
    }
}

/// What a group's evaluation needs from the outside.
#[allow(missing_debug_implementations)]
pub struct GroupEnv<'a, A: Appendable> {
    /// The query function.
    pub query: &'a dyn QueryFunc,
    /// Where results go.
    pub storage: &'a A,
    /// Where alerts go.
    pub sink: &'a dyn AlertSink,
    /// `global.external_labels`.
    pub external_labels: &'a Labels,
    /// Labels added to every series the group stores, where the series
    /// has no label of that name: the external labels in vigil (issue #7),
    /// none under `promtool test rules` semantics or
    /// `--no-rules.store-external-labels` (Prometheus stores none).
    pub stored_labels: &'a Labels,
    /// The external URL (`--web.external-url`).
    pub external_url: &'a str,
    /// How often firing alerts are re-sent (Prometheus: 1m).
    pub resend_delay: i64,
    /// How long an outage may last for persisted alert state to be
    /// trusted on restart (Prometheus's `--rules.alert.for-outage-tolerance`,
    /// 1h).
    pub outage_tolerance: i64,
}

/// A rule group.
#[derive(Debug, Clone)]
pub struct Group {
    /// The group's name.
    pub name: String,
    /// The file it came from.
    pub file: PathBuf,
    /// Evaluation interval, ms.
    pub interval: i64,
    /// Query offset, ms.
    pub query_offset: i64,
    /// `limit`.
    pub limit: u64,
    /// The definition it was built from (to tell whether a reload changed
    /// it).
    pub def: GroupDef,
    /// The rules, in order.
    pub rules: Vec<Rule>,
    /// Series each rule wrote at the last evaluation, for stale markers.
    prev_series: Vec<HashSet<Labels>>,
    /// When it last ran (ms).
    pub last_evaluation: Option<i64>,
    /// How long the last evaluation took, in seconds.
    pub evaluation_seconds: f64,
    /// Evaluations done.
    pub iterations: u64,
    /// Slots missed because an evaluation ran too long or the process
    /// stalled.
    pub missed: u64,
    /// Whether persisted state was restored into the rules.
    restored: bool,
}

impl Group {
    /// Builds a group from its definition. `default_interval` is the
    /// global `evaluation_interval` (ms).
    pub fn new(def: &GroupDef, file: &Path, default_interval: i64) -> Result<Group, String> {
        let rules = def
            .rules
            .iter()
            .map(|r| {
                Rule::from_def(r, &def.labels).map_err(|e| format!("rule {:?}: {e}", r.name()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Group {
            name: def.name.clone(),
            file: file.to_path_buf(),
            interval: def.interval.map_or(default_interval, |d| d.0).max(1),
            query_offset: def.query_offset.map_or(0, |d| d.0),
            limit: def.limit,
            def: def.clone(),
            prev_series: vec![HashSet::new(); rules.len()],
            rules,
            last_evaluation: None,
            evaluation_seconds: 0.0,
            iterations: 0,
            missed: 0,
            restored: false,
        })
    }

    /// The key that identifies a group across reloads.
    pub fn key(&self) -> (PathBuf, String) {
        (self.file.clone(), self.name.clone())
    }

    /// The group's hash, as Prometheus computes it for alignment: xxhash64
    /// of the label set `{file=..., name=...}`.
    pub fn hash(&self) -> u64 {
        let mut b = Vec::with_capacity(self.name.len() + 64);
        let file = self.file.to_string_lossy();
        for (k, v) in [("file", file.as_ref()), ("name", self.name.as_str())] {
            b.extend_from_slice(k.as_bytes());
            b.push(0xff);
            b.extend_from_slice(v.as_bytes());
            b.push(0xff);
        }
        xxhash_rust::xxh64::xxh64(&b, 0)
    }

    /// The evaluation slot at or before `now` (ms): multiples of the
    /// interval shifted by the group's hash, as Prometheus aligns groups.
    pub fn eval_timestamp(&self, now: i64) -> i64 {
        let offset = (self.hash() % self.interval as u64) as i64;
        let adj = now - offset;
        adj - adj.rem_euclid(self.interval) + offset
    }

    /// Takes over the alert state of `old` for alerting rules of the same
    /// name (in order), as Prometheus does when a reload changes a group.
    pub fn copy_state(&mut self, old: &Group) {
        let mut by_name: BTreeMap<&str, Vec<&Rule>> = BTreeMap::new();
        for r in &old.rules {
            by_name.entry(r.name()).or_default().push(r);
        }
        let mut used: BTreeMap<String, usize> = BTreeMap::new();
        for r in &mut self.rules {
            let name = r.name().to_string();
            let i = used.entry(name.clone()).or_insert(0);
            if let (Rule::Alerting(new), Some(Rule::Alerting(o))) =
                (r, by_name.get(name.as_str()).and_then(|v| v.get(*i)))
            {
                new.active = o.active.clone();
                new.status = o.status.clone();
            }
            *i += 1;
        }
        self.restored = old.restored;
        self.last_evaluation = old.last_evaluation;
    }

    /// Evaluates every rule in order at `ts` (ms), appends the results
    /// (with stale markers for series no longer produced), sends the
    /// alerts that need sending, and returns them too.
    pub fn eval<A: Appendable>(&mut self, ts: i64, env: &GroupEnv<'_, A>) -> Vec<OutgoingAlert> {
        let started = Instant::now();
        let t = ts - self.query_offset;
        let eval_env = EvalEnv {
            query: env.query,
            external_labels: env.external_labels,
            external_url: env.external_url,
            limit: self.limit,
        };
        let mut to_send = Vec::new();
        for i in 0..self.rules.len() {
            let rule_started = Instant::now();
            let result = match &mut self.rules[i] {
                Rule::Recording(r) => r.eval(t, &eval_env),
                Rule::Alerting(r) => r.eval(ts, t, &eval_env),
            };
            let samples = match result {
                Ok(s) => {
                    let st = self.rules[i].status_mut();
                    st.health = Health::Ok;
                    st.last_error = None;
                    s
                }
                Err(e) => {
                    tracing::warn!(group = %self.name, rule = %self.rules[i].name(), error = %e, "rule evaluation failed");
                    let st = self.rules[i].status_mut();
                    st.health = Health::Err;
                    st.last_error = Some(e);
                    Vec::new()
                }
            };
            // Results of this rule must be visible to the next one, so each
            // rule commits its own batch.
            let mut app = env.storage.appender();
            let mut now_series = HashSet::with_capacity(samples.len());
            let mut append_errors = 0usize;
            for s in &samples {
                let labels = with_labels(&s.labels, env.stored_labels);
                if app.append(None, &labels, s.t, Value::Float(s.v)).is_err() {
                    append_errors += 1;
                }
                now_series.insert(labels);
            }
            for gone in self.prev_series[i].difference(&now_series) {
                let _ = app.append(None, gone, t, Value::Float(vigil_model::stale_nan()));
            }
            if let Err(e) = app.commit() {
                let st = self.rules[i].status_mut();
                st.health = Health::Err;
                st.last_error = Some(format!("storing results: {e}"));
            } else if append_errors > 0 {
                tracing::warn!(group = %self.name, rule = %self.rules[i].name(), append_errors, "some rule results were rejected by the storage");
            }
            self.prev_series[i] = now_series;
            if let Rule::Alerting(r) = &mut self.rules[i] {
                let delta = self.interval.max(env.resend_delay);
                let url = generator_url(env.external_url, &r.expr.to_string());
                for a in r.active.values_mut() {
                    if a.needs_sending(ts, env.resend_delay) {
                        a.last_sent_at = Some(ts);
                        a.valid_until = Some(ts + 4 * delta);
                        to_send.push(outgoing(a, env.external_labels, &url));
                    }
                }
            }
            let st = self.rules[i].status_mut();
            st.last_evaluation = Some(ts);
            st.evaluation_seconds = rule_started.elapsed().as_secs_f64();
        }
        self.restored = true;
        self.last_evaluation = Some(ts);
        self.evaluation_seconds = started.elapsed().as_secs_f64();
        self.iterations += 1;
        if !to_send.is_empty() {
            env.sink.send(to_send.clone());
        }
        to_send
    }

    /// Writes stale markers for every series the group wrote at its last
    /// evaluation (when the group is removed by a reload).
    pub fn mark_stale<A: Appendable>(&mut self, storage: &A, ts: i64) {
        let mut app = storage.appender();
        for set in &mut self.prev_series {
            for l in set.drain() {
                let _ = app.append(None, &l, ts, Value::Float(vigil_model::stale_nan()));
            }
        }
        let _ = app.commit();
    }

    /// The group's alert state, for persistence.
    pub fn saved_state(&self, now: i64) -> SavedGroup {
        SavedGroup {
            file: self.file.clone(),
            name: self.name.clone(),
            saved_at: now,
            rules: self
                .rules
                .iter()
                .filter_map(|r| match r {
                    Rule::Alerting(a) => Some(SavedRule {
                        alert: a.name.clone(),
                        alerts: a.active.values().cloned().collect(),
                    }),
                    Rule::Recording(_) => None,
                })
                .collect(),
        }
    }

    /// Restores persisted alert state (from before a restart) into the
    /// alerting rules, matched by alert name in order, if it is not older
    /// than `outage_tolerance`. Returns the alerts restored.
    pub fn restore(&mut self, saved: &SavedGroup, now: i64, outage_tolerance: i64) -> usize {
        if saved.file != self.file || saved.name != self.name {
            return 0;
        }
        if now - saved.saved_at > outage_tolerance {
            tracing::info!(group = %self.name, "persisted alert state is older than the outage tolerance; not restored");
            return 0;
        }
        let mut n = 0;
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for r in &mut self.rules {
            let Rule::Alerting(a) = r else { continue };
            let k = seen.entry(a.name.clone()).or_insert(0);
            if let Some(s) = saved.rules.iter().filter(|s| s.alert == a.name).nth(*k) {
                for al in &s.alerts {
                    a.active.insert(al.labels.clone(), al.clone());
                    n += 1;
                }
            }
            *k += 1;
        }
        self.restored = true;
        n
    }

    /// Whether state was restored (or the group evaluated since start).
    pub fn is_restored(&self) -> bool {
        self.restored
    }

    /// Restores `for` progress from `ALERTS_FOR_STATE` when no persisted
    /// state exists (as Prometheus's `RestoreForState` does): for each
    /// alert now pending whose series holds an older activation time within
    /// the outage tolerance, that time becomes its `active_at`.
    /// `stored_labels` are the labels the group adds to what it stores
    /// (see [`GroupEnv::stored_labels`]): a series is matched to its alert
    /// in that stored form.
    pub fn restore_from_series(
        &mut self,
        query: &dyn QueryFunc,
        ts: i64,
        outage_tolerance: i64,
        stored_labels: &Labels,
    ) {
        for r in &mut self.rules {
            let Rule::Alerting(a) = r else { continue };
            if a.active.is_empty() {
                continue;
            }
            let by_stored: HashMap<Labels, Labels> = a
                .active
                .keys()
                .map(|k| (with_labels(k, stored_labels), k.clone()))
                .collect();
            let q = format!(
                "last_over_time(ALERTS_FOR_STATE{{alertname={:?}}}[{}])",
                a.name,
                vigil_model::format_duration(outage_tolerance.max(1000))
            );
            let Ok(expr) = vigil_promql::parse(&q) else {
                continue;
            };
            // Just before `ts`: the evaluation at `ts` wrote its own sample.
            let Ok(res) = query.query(&expr, ts - 1) else {
                continue;
            };
            for s in res {
                let stored = s.labels.without_metric_name();
                let Some(key) = by_stored.get(&stored) else {
                    continue;
                };
                if let Some(al) = a.active.get_mut(key) {
                    let restored = (s.v * 1000.0) as i64;
                    if al.state == AlertState::Pending && restored < al.active_at {
                        al.active_at = restored;
                        if ts - al.active_at >= a.hold {
                            al.state = AlertState::Firing;
                            al.fired_at = Some(ts);
                        }
                    }
                }
            }
        }
        self.restored = true;
    }
}

/// The alert state of a group as written to disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedGroup {
    /// The group's file.
    pub file: PathBuf,
    /// The group's name.
    pub name: String,
    /// When it was written (ms).
    pub saved_at: i64,
    /// Alerting rules' alerts.
    pub rules: Vec<SavedRule>,
}

/// The alerts of one alerting rule as written to disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedRule {
    /// The alert name.
    pub alert: String,
    /// Its alert instances.
    pub alerts: Vec<Alert>,
}

/// `labels` with each of `extra` added where `labels` has no label of
/// that name (how external labels are applied everywhere).
fn with_labels(labels: &Labels, extra: &Labels) -> Labels {
    if extra.is_empty() {
        return labels.clone();
    }
    let mut b = LabelsBuilder::from_labels(labels);
    for l in extra.iter() {
        if labels.get(l.name).is_none() {
            b.set(l.name, l.value);
        }
    }
    b.build()
}

/// The alert as it leaves vigil: Prometheus's `SendAlerts` mapping.
fn outgoing(a: &Alert, external: &Labels, url: &str) -> OutgoingAlert {
    OutgoingAlert {
        labels: with_labels(&a.labels, external),
        annotations: a.annotations.clone(),
        starts_at: a.fired_at.unwrap_or(a.active_at),
        ends_at: a.resolved_at.or(a.valid_until).unwrap_or(a.active_at),
        generator_url: url.to_string(),
    }
}

/// `<external url>/graph?g0.expr=<expr>&g0.tab=1`, as Prometheus links
/// alerts to their expression.
pub fn generator_url(external_url: &str, expr: &str) -> String {
    let mut enc = String::with_capacity(expr.len() * 3);
    for b in expr.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                enc.push(b as char)
            }
            b' ' => enc.push('+'),
            _ => enc.push_str(&format!("%{b:02X}")),
        }
    }
    format!(
        "{}/graph?g0.expr={enc}&g0.tab=1",
        external_url.trim_end_matches('/')
    )
}

#[cfg(test)]
mod sink_tests {
    use super::*;

    fn alert(name: &str) -> OutgoingAlert {
        OutgoingAlert {
            labels: Labels::from_pairs([("alertname", name)]),
            annotations: BTreeMap::new(),
            starts_at: 0,
            ends_at: 1,
            generator_url: String::new(),
        }
    }

    #[test]
    fn channels_receive_batches_and_bounded_ones_drop_what_does_not_fit() {
        let (tx, rx) = std::sync::mpsc::channel();
        AlertSink::send(&tx, vec![alert("a")]);
        assert_eq!(rx.try_recv().unwrap(), vec![alert("a")]);
        drop(rx);
        AlertSink::send(&tx, vec![alert("gone")]); // no receiver: discarded

        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        AlertSink::send(&tx, vec![alert("a")]);
        AlertSink::send(&tx, vec![alert("b")]); // full: dropped, not blocking
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), vec![vec![alert("a")]]);

        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        AlertSink::send(&tx, vec![alert("a")]);
        AlertSink::send(&tx, vec![alert("b")]);
        assert_eq!(rx.try_recv().unwrap(), vec![alert("a")]);
        assert!(rx.try_recv().is_err());

        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        AlertSink::send(&tx, vec![alert("a")]);
        AlertSink::send(&tx, vec![alert("b")]);
        assert_eq!(rx.try_recv().unwrap(), vec![alert("a")]);
        assert_eq!(rx.try_recv().unwrap(), vec![alert("b")]);
    }
}
