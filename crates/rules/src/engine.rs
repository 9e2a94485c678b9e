//! Rule groups stepped by the caller with an explicit clock: no runtime,
//! no threads, no wall time.
//!
//! [`RuleEngine`] is the manual twin of [`RuleManager`](crate::RuleManager):
//! the same groups, the same evaluation (results appended with stale
//! markers, alert state machine, persisted alert state when a state
//! directory is set), but evaluations happen only inside
//! [`RuleEngine::advance_to`], on the caller's thread, at times the caller
//! chooses. Tests, simulations and programs with their own scheduler use
//! it.

use std::path::Path;
use std::sync::Arc;

use vigil_model::Appendable;

use crate::alert::{Alert, AlertState};
use crate::file::RuleFileError;
use crate::group::{AlertSink, Group, OutgoingAlert};
use crate::manager::{eval_group, load_groups, restore_persisted, ManagerOptions};
use crate::query::QueryFunc;
use crate::rule::Rule;

struct Slot {
    group: Group,
    /// The next evaluation time, once the group has seen the clock.
    next: Option<i64>,
}

/// Evaluates rule groups when the caller advances its clock.
///
/// A group of interval `i` is evaluated at the multiples of `i` (ms since
/// the epoch): at the last multiple at or before the time of the first
/// [`advance_to`](Self::advance_to) that sees it, then at every multiple
/// up to the time of each later call. Evaluations of all groups run in
/// time order (groups in the order they were added for the same time), so
/// a recording rule's output is visible to every later evaluation.
/// [`RuleManager`](crate::RuleManager), by contrast, shifts each group by
/// a hash of its name to spread load; a manual clock has no load to
/// spread and gains predictable times.
///
/// The engine is a blocking object: it queries and appends on the calling
/// thread (from async code, call it through `spawn_blocking`).
///
/// ```
/// use std::sync::{mpsc, Arc};
/// use std::time::Duration;
/// use vigil_model::{labels, Appendable, Appender, MemStorage, Value};
/// use vigil_promql::{Engine, EngineOptions};
/// use vigil_rules::{AlertBuilder, EngineQuery, GroupBuilder, OutgoingAlert, RuleEngine};
///
/// let store = Arc::new(MemStorage::new());
/// let (tx, rx) = mpsc::channel::<Vec<OutgoingAlert>>();
/// let mut rules = RuleEngine::new(
///     store.clone(),
///     EngineQuery::new(Arc::new(Engine::new(EngineOptions::default())), store.clone()),
/// )
/// .with_alert_sink(tx);
/// rules.add_group(
///     GroupBuilder::new("app")
///         .interval(Duration::from_secs(10))
///         .rule(AlertBuilder::new("QueueFull", "queue_length > 100").for_duration(Duration::from_secs(20)))
///         .build()
///         .unwrap(),
/// );
///
/// // The queue is full from t=0 on.
/// let mut app = store.appender();
/// for t in (0..=60_000).step_by(5_000) {
///     app.append(None, &labels!("__name__" => "queue_length"), t, Value::Float(150.0)).unwrap();
/// }
/// app.commit().unwrap();
///
/// assert!(rules.advance_to(0).is_empty()); // pending from 0 s
/// assert!(rules.advance_to(10_000).is_empty());
/// let sent = rules.advance_to(20_000); // `for` (20 s) has passed: firing
/// assert_eq!(sent[0].labels.get("alertname"), Some("QueueFull"));
/// assert_eq!(rx.try_recv().unwrap(), sent);
/// assert_eq!(rules.firing().count(), 1);
/// ```
pub struct RuleEngine<A> {
    storage: Arc<A>,
    query: Box<dyn QueryFunc>,
    sink: Box<dyn AlertSink>,
    opts: ManagerOptions,
    slots: Vec<Slot>,
    now: Option<i64>,
}

impl<A> std::fmt::Debug for RuleEngine<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleEngine")
            .field("groups", &self.slots.len())
            .field("now", &self.now)
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl<A: Appendable> RuleEngine<A> {
    /// An engine with no groups that queries through `query` and appends
    /// rule results to `storage`. Alerts are only returned by
    /// [`advance_to`](Self::advance_to) until a sink is set; options are
    /// [`ManagerOptions::default`] (no persisted state).
    pub fn new(storage: Arc<A>, query: impl QueryFunc + 'static) -> Self {
        RuleEngine {
            storage,
            query: Box::new(query),
            sink: Box::new(|_: Vec<OutgoingAlert>| {}),
            opts: ManagerOptions::default(),
            slots: Vec::new(),
            now: None,
        }
    }

    /// Sends the alerts of every evaluation to `sink` too: a closure, a
    /// channel's sender, or any [`AlertSink`].
    pub fn with_alert_sink(mut self, sink: impl AlertSink + 'static) -> Self {
        self.sink = Box::new(sink);
        self
    }

    /// Sets the options: external labels and URL, resend delay, and the
    /// directory alert state is persisted to (restored at each group's
    /// first evaluation, as the manager restores it at start).
    pub fn with_options(mut self, opts: ManagerOptions) -> Self {
        self.opts = opts;
        self
    }

    /// Adds a group. A group with the same source and name as one already
    /// there replaces it and takes over its alert state, as a reload does;
    /// it keeps the old one's place in the evaluation order.
    pub fn add_group(&mut self, mut group: Group) {
        let key = group.key();
        if let Some(slot) = self.slots.iter_mut().find(|s| s.group.key() == key) {
            group.copy_state(&slot.group);
            let next = if group.interval == slot.group.interval {
                slot.next
            } else {
                None
            };
            *slot = Slot { group, next };
        } else {
            self.slots.push(Slot { group, next: None });
        }
    }

    /// Loads rule files (checked as `promtool check rules` does) and adds
    /// their groups. `default_interval` (ms) applies to groups that set no
    /// interval. On any error nothing is added and every error is
    /// returned. Returns the number of groups added.
    pub fn load_rule_files(
        &mut self,
        files: &[impl AsRef<Path>],
        default_interval: i64,
    ) -> Result<usize, Vec<RuleFileError>> {
        let files: Vec<_> = files.iter().map(|f| f.as_ref().to_path_buf()).collect();
        let groups = load_groups(&files, default_interval)?;
        let n = groups.len();
        for g in groups {
            self.add_group(g);
        }
        Ok(n)
    }

    /// Removes the group with this source and name, returning it; stale
    /// markers are written at the current clock time for the series it
    /// recorded, so queries stop seeing them.
    pub fn remove_group(&mut self, source: impl AsRef<Path>, name: &str) -> Option<Group> {
        let i = self
            .slots
            .iter()
            .position(|s| s.group.file == source.as_ref() && s.group.name == name)?;
        let mut g = self.slots.remove(i).group;
        if let Some(now) = self.now {
            g.mark_stale(&*self.storage, now);
        }
        Some(g)
    }

    /// Moves the clock to `now` (ms) and runs every evaluation due up to
    /// it, in time order. Returns the alerts sent (also handed to the
    /// sink): newly firing ones, firing ones due for a resend, and
    /// resolved ones. A time before the current one evaluates nothing.
    ///
    /// Every due evaluation runs, however far the clock jumps: a jump of a
    /// day over a 10 s group is 8,640 evaluations.
    pub fn advance_to(&mut self, now: i64) -> Vec<OutgoingAlert> {
        if self.now.is_some_and(|n| now < n) {
            return Vec::new();
        }
        self.now = Some(now);
        for s in &mut self.slots {
            if s.next.is_none() {
                s.next = Some(now - now.rem_euclid(s.group.interval));
            }
        }
        let mut sent = Vec::new();
        loop {
            let due = self
                .slots
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.next.filter(|&t| t <= now).map(|t| (t, i)))
                .min();
            let Some((ts, i)) = due else { break };
            let slot = &mut self.slots[i];
            if !slot.group.is_restored() {
                restore_persisted(&mut slot.group, &self.opts, ts);
            }
            sent.extend(eval_group(
                &mut slot.group,
                &*self.storage,
                &*self.query,
                &*self.sink,
                &self.opts,
                ts,
            ));
            slot.next = Some(ts.saturating_add(slot.group.interval));
        }
        sent
    }

    /// The clock: the time of the last [`advance_to`](Self::advance_to).
    pub fn now(&self) -> Option<i64> {
        self.now
    }

    /// The groups, in evaluation order.
    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.slots.iter().map(|s| &s.group)
    }

    /// Every alert instance the alerting rules hold: pending, firing, and
    /// resolved ones kept for re-sending.
    pub fn alerts(&self) -> impl Iterator<Item = &Alert> {
        self.groups()
            .flat_map(|g| g.rules.iter())
            .filter_map(|r| match r {
                Rule::Alerting(a) => Some(a.active.values()),
                Rule::Recording(_) => None,
            })
            .flatten()
    }

    /// The alerts firing now.
    pub fn firing(&self) -> impl Iterator<Item = &Alert> {
        self.alerts().filter(|a| a.state == AlertState::Firing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AlertBuilder, EngineQuery, GroupBuilder};
    use std::time::Duration;
    use vigil_model::{labels, Appender, MemStorage, Value};
    use vigil_promql::{Engine, EngineOptions};

    fn engine(store: &Arc<MemStorage>) -> RuleEngine<MemStorage> {
        RuleEngine::new(
            store.clone(),
            EngineQuery::new(
                Arc::new(Engine::new(EngineOptions::default())),
                store.clone(),
            ),
        )
    }

    fn put(store: &MemStorage, name: &str, points: impl IntoIterator<Item = (i64, f64)>) {
        let mut app = store.appender();
        for (t, v) in points {
            app.append(None, &labels!("__name__" => name), t, Value::Float(v))
                .unwrap();
        }
        app.commit().unwrap();
    }

    #[test]
    fn groups_run_at_multiples_of_their_interval_in_time_order() {
        let store = Arc::new(MemStorage::new());
        put(&store, "x", (0..=100).map(|i| (i * 1000, i as f64)));
        let mut e = engine(&store);
        // `b` reads what `a` records: at equal times `a` runs first, being
        // added first.
        e.add_group(
            GroupBuilder::new("a")
                .interval(Duration::from_secs(10))
                .record("a:x", "x")
                .build()
                .unwrap(),
        );
        e.add_group(
            GroupBuilder::new("b")
                .interval(Duration::from_secs(15))
                .record("b:a", "a:x")
                .build()
                .unwrap(),
        );
        e.advance_to(7_000); // both at 0
        e.advance_to(45_000); // a: 10..40, b: 15, 30, 45
        let times = |name: &str| -> Vec<i64> {
            let querier = vigil_model::Queryable::querier(&*store, 0, 100_000).unwrap();
            let set = querier
                .select(true, None, &[vigil_model::Matcher::equal("__name__", name)])
                .unwrap();
            let mut out = Vec::new();
            for s in set.series {
                let mut it = s.iter();
                while it.next() == vigil_model::ValueType::Float {
                    out.push(it.at().0);
                }
            }
            out
        };
        assert_eq!(times("a:x"), [0, 10_000, 20_000, 30_000, 40_000]);
        assert_eq!(times("b:a"), [0, 15_000, 30_000, 45_000]);
        assert_eq!(e.groups().map(|g| g.iterations).sum::<u64>(), 9);
        // Time going backwards evaluates nothing.
        assert!(e.advance_to(1_000).is_empty());
        assert_eq!(e.now(), Some(45_000));
        assert_eq!(e.groups().map(|g| g.iterations).sum::<u64>(), 9);
    }

    #[test]
    fn alerts_fire_resolve_and_reach_the_sink_and_a_replaced_group_keeps_its_state() {
        let store = Arc::new(MemStorage::new());
        put(
            &store,
            "errors",
            (0..=20).map(|i| (i * 10_000, if i < 12 { 5.0 } else { 0.0 })),
        );
        let (tx, rx) = std::sync::mpsc::channel::<Vec<OutgoingAlert>>();
        let mut e = engine(&store).with_alert_sink(tx);
        let group = || {
            GroupBuilder::new("g")
                .interval(Duration::from_secs(10))
                .rule(
                    AlertBuilder::new("Errors", "errors > 1")
                        .for_duration(Duration::from_secs(30))
                        .annotation("value", "{{ $value }}"),
                )
                .build()
                .unwrap()
        };
        e.add_group(group());
        // The first evaluation is at the first time seen, 0 s.
        assert!(e.advance_to(0).is_empty());
        assert!(e.advance_to(20_000).is_empty());
        assert_eq!(e.alerts().count(), 1);
        assert_eq!(e.firing().count(), 0);
        let sent = e.advance_to(30_000);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].annotations["value"], "5");
        assert!(!sent[0].is_resolved(30_000));
        assert_eq!(rx.try_recv().unwrap(), sent);
        // Replacing the group (a reload) keeps the firing alert.
        e.add_group(group());
        assert_eq!(e.groups().count(), 1);
        assert_eq!(e.firing().count(), 1);
        // The errors stop at 120 s: resolved and sent as such.
        let sent = e.advance_to(130_000);
        let last = sent.last().unwrap();
        assert!(last.is_resolved(130_000), "{sent:?}");
        assert_eq!(e.firing().count(), 0);
        // Removing the group: gone, and its ALERTS series go stale.
        assert!(e.remove_group("", "g").is_some());
        assert!(e.remove_group("", "g").is_none());
        assert_eq!(e.groups().count(), 0);
    }
}
