//! The synchronous core of the pipeline: the alert store, aggregation
//! groups and their timers, inhibition, silences, the notification log,
//! escalations and acks, history, and persistence. It never sleeps and
//! never sends: [`Core::plan`] says what is due at a time, the caller sends
//! (on tokio, see [`crate::notifier`]) and reports back with
//! [`Core::complete`].
//!
//! Timing follows Alertmanager's `dispatch` package:
//!
//! - a new group flushes `group_wait` after it is created — at once when an
//!   alert arrives whose `startsAt + group_wait` has already passed and the
//!   group has not flushed yet;
//! - after a flush, the next is `group_interval` later, whatever happens;
//! - a flush sends to a receiver integration only when the notification
//!   log says so ([`crate::nflog::needs_update`]): new firing alerts,
//!   everything resolved, new resolved alerts with `send_resolved`, or the
//!   last notification older than `repeat_interval` — which therefore
//!   takes effect at the first flush after it, i.e. rounded up to a
//!   multiple of `group_interval`;
//! - after a flush whose notifications all succeeded, resolved alerts that
//!   did not change meanwhile leave the group; an empty group is removed.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::Path;

use vigil_model::Labels;

use crate::config::{Config, ConfigError};
use crate::escalation::{
    group_id, new_uuid, Ack, AckError, AckRequest, AckSigner, AckTarget, EscalationPolicy,
    EscalationState,
};
use crate::history::{HistoryEvent, HistoryKind, HistoryQuery};
use crate::inhibit::{InhibitIndex, InhibitRule};
use crate::matcher::{Matcher, Matchers};
use crate::nflog::{self, NflogEntry};
use crate::route::{label_set_string, RouteTree};
use crate::silence::{Silence, SilenceError, SilenceRequest, Silences};
use crate::state::{OpenReport, PersistedAlert, Record, StateFile};
use crate::timeinterval::{any_contains, TimeInterval};
use crate::types::{Alert, NotificationData};

/// Retention and housekeeping settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreOptions {
    /// How long expired silences and notification log entries are kept
    /// (ms; Alertmanager's `--data.retention`, 120h).
    pub retention: i64,
    /// How long resolved alerts stay in the store (ms; Alertmanager's
    /// `--alerts.gc-interval`, 30m).
    pub alert_gc: i64,
    /// How long history is kept (ms; 30 days).
    pub history_retention: i64,
    /// At most this many history events are kept.
    pub history_max: usize,
    /// The URL vigil is reached at, for `.ExternalURL` and ack links.
    pub external_url: String,
}

impl Default for CoreOptions {
    fn default() -> Self {
        CoreOptions {
            retention: 120 * 3_600_000,
            alert_gc: 30 * 60_000,
            history_retention: 30 * 86_400_000,
            history_max: 100_000,
            external_url: String::new(),
        }
    }
}

/// A configuration compiled for use.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The configuration as given.
    pub config: Config,
    /// The routing tree.
    pub tree: RouteTree,
    inhibit: Vec<InhibitRule>,
    intervals: HashMap<String, Vec<TimeInterval>>,
    policies: HashMap<String, EscalationPolicy>,
}

impl Compiled {
    /// Validates and compiles.
    pub fn new(config: Config) -> Result<Compiled, ConfigError> {
        config.validate()?;
        let root = config.route.as_ref().ok_or(ConfigError::NoRoute)?;
        let tree = RouteTree::new(root)?;
        let inhibit = config
            .inhibit_rules
            .iter()
            .map(InhibitRule::new)
            .collect::<Result<_, _>>()?;
        let intervals = config
            .all_time_intervals()
            .map(|t| (t.name.clone(), t.time_intervals.clone()))
            .collect();
        let policies = config
            .escalations
            .iter()
            .map(|p| (p.name.clone(), EscalationPolicy::from(p)))
            .collect();
        Ok(Compiled {
            config,
            tree,
            inhibit,
            intervals,
            policies,
        })
    }

    /// The time intervals muting a route at `now` (empty: not muted).
    fn time_muted(&self, route: usize, now: i64) -> Vec<String> {
        let Some(r) = self.tree.get(route) else {
            return Vec::new();
        };
        let mut out: Vec<String> = r
            .opts
            .mute_time_intervals
            .iter()
            .filter(|n| {
                self.intervals
                    .get(*n)
                    .is_some_and(|ti| any_contains(ti, now))
            })
            .cloned()
            .collect();
        if !r.opts.active_time_intervals.is_empty()
            && !r.opts.active_time_intervals.iter().any(|n| {
                self.intervals
                    .get(n)
                    .is_some_and(|ti| any_contains(ti, now))
            })
        {
            out.extend(r.opts.active_time_intervals.iter().cloned());
        }
        out
    }

    fn policy_of(&self, route: usize) -> Option<&EscalationPolicy> {
        let name = self.tree.get(route)?.opts.escalation.as_ref()?;
        self.policies.get(name)
    }
}

/// What the core knows of a receiver's integration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntegrationInfo {
    /// Its kind (`webhook`, ...).
    pub kind: &'static str,
    /// `send_resolved`.
    pub send_resolved: bool,
}

#[derive(Debug, Clone)]
struct StoredAlert {
    alert: Alert,
    /// `endsAt` was set by vigil (`resolve_timeout`), not by the sender.
    timeout: bool,
    resolved_logged: bool,
}

#[derive(Debug, Clone)]
struct Group {
    route: usize,
    labels: Labels,
    alerts: BTreeMap<u64, Alert>,
    next_flush: i64,
    has_flushed: bool,
}

/// One notification to send.
#[derive(Debug, Clone)]
pub struct Job {
    /// Receiver name.
    pub receiver: String,
    /// Index of the integration in the receiver.
    pub integration: usize,
    /// Integration kind.
    pub kind: &'static str,
    /// What to send.
    pub data: NotificationData,
    /// False when nothing is left to send (resolved alerts only, and the
    /// integration does not send resolved): counts as success unsent.
    pub send: bool,
    nflog_key: String,
    firing: BTreeSet<u64>,
    resolved: BTreeSet<u64>,
}

/// What is due for one group.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Group key.
    pub group_key: String,
    /// The time it was planned for.
    pub now: i64,
    /// The notifications.
    pub jobs: Vec<Job>,
    group_flush: bool,
    /// Resolved alerts at planning: (fingerprint, updated_at, ends_at).
    resolved_snapshot: Vec<(u64, i64, i64)>,
}

/// An alert was refused by [`Core::receive`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} of the alerts were refused: {}", .refused.len(), .refused.iter().map(|(i, m)| format!("#{i}: {m}")).collect::<Vec<_>>().join("; "))]
pub struct ReceiveError {
    /// Index in the input and reason, for each refused alert; the others
    /// were accepted.
    pub refused: Vec<(usize, String)>,
}

/// Which alerts [`Core::alerts`] returns (Alertmanager's v2 API filters).
#[derive(Debug, Clone)]
pub struct AlertFilter {
    /// Label matchers the alert must match.
    pub matchers: Matchers,
    /// Include active (not suppressed) alerts.
    pub active: bool,
    /// Include silenced alerts.
    pub silenced: bool,
    /// Include inhibited alerts.
    pub inhibited: bool,
    /// Include alerts muted by time intervals.
    pub muted: bool,
    /// Only alerts routed to a receiver this matches (a `receiver=~...`
    /// matcher; its name is ignored).
    pub receiver: Option<Matcher>,
}

impl Default for AlertFilter {
    fn default() -> Self {
        AlertFilter {
            matchers: Matchers::default(),
            active: true,
            silenced: true,
            inhibited: true,
            muted: true,
            receiver: None,
        }
    }
}

/// An alert with its status.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertStatus {
    /// The alert.
    pub alert: Alert,
    /// Its fingerprint.
    pub fingerprint: u64,
    /// `active` or `suppressed`.
    pub state: &'static str,
    /// Receivers it is routed to.
    pub receivers: Vec<String>,
    /// IDs of silences muting it.
    pub silenced_by: Vec<String>,
    /// Fingerprints (16 hex digits) of alerts inhibiting it.
    pub inhibited_by: Vec<String>,
    /// Time intervals muting it.
    pub muted_by: Vec<String>,
    /// The ack covering it, if any.
    pub ack: Option<Ack>,
}

/// An aggregation group with its status.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupStatus {
    /// Key.
    pub key: String,
    /// Short ID used in ack links.
    pub id: String,
    /// Group labels.
    pub labels: Labels,
    /// The route's receiver.
    pub receiver: String,
    /// The route's ID.
    pub route_id: String,
    /// Alerts (not resolved) passing the filter.
    pub alerts: Vec<AlertStatus>,
    /// When the group flushes next (ms).
    pub next_flush: i64,
    /// The escalation, when one runs.
    pub escalation: Option<EscalationState>,
    /// Whether the group is acknowledged.
    pub acked: bool,
}

/// The core.
#[derive(Debug)]
pub struct Core {
    cfg: Compiled,
    opts: CoreOptions,
    receivers: BTreeMap<String, Vec<IntegrationInfo>>,
    alerts: BTreeMap<u64, StoredAlert>,
    groups: BTreeMap<String, Group>,
    silences: Silences,
    nflog: BTreeMap<String, NflogEntry>,
    acks: BTreeMap<String, Ack>,
    escalations: BTreeMap<String, EscalationState>,
    history: VecDeque<HistoryEvent>,
    store: Option<StateFile>,
    signer: AckSigner,
    pending: Vec<Record>,
}

fn labels_vec(l: &Labels) -> Vec<(String, String)> {
    l.iter()
        .map(|x| (x.name.to_string(), x.value.to_string()))
        .collect()
}

fn common_labels(alerts: &[Alert]) -> Labels {
    let Some(first) = alerts.first() else {
        return Labels::empty();
    };
    Labels::from_pairs(
        first
            .labels
            .iter()
            .filter(|l| {
                alerts[1..]
                    .iter()
                    .all(|a| a.labels.get(l.name) == Some(l.value))
            })
            .map(|l| (l.name, l.value)),
    )
}

fn common_annotations(alerts: &[Alert]) -> BTreeMap<String, String> {
    let Some(first) = alerts.first() else {
        return BTreeMap::new();
    };
    first
        .annotations
        .iter()
        .filter(|(k, v)| {
            alerts[1..]
                .iter()
                .all(|a| a.annotations.get(*k) == Some(*v))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

impl Core {
    /// Opens the state in `dir` (created if needed) and restores it.
    pub fn open(
        cfg: Compiled,
        receivers: BTreeMap<String, Vec<IntegrationInfo>>,
        dir: &Path,
        opts: CoreOptions,
        now: i64,
    ) -> std::io::Result<(Core, OpenReport)> {
        let (store, records, report) = StateFile::open(dir)?;
        let signer = AckSigner::load_or_create(dir)?;
        let mut core = Core {
            cfg,
            opts,
            receivers,
            alerts: BTreeMap::new(),
            groups: BTreeMap::new(),
            silences: Silences::new(),
            nflog: BTreeMap::new(),
            acks: BTreeMap::new(),
            escalations: BTreeMap::new(),
            history: VecDeque::new(),
            store: Some(store),
            signer,
            pending: Vec::new(),
        };
        let mut schedules = HashMap::new();
        for r in records {
            core.replay(r, &mut schedules);
        }
        for a in core.alerts.values_mut() {
            a.resolved_logged = a.alert.resolved_at(now);
        }
        core.rebuild_groups(schedules, now);
        core.compact();
        Ok((core, report))
    }

    fn replay(&mut self, r: Record, schedules: &mut HashMap<String, (i64, bool)>) {
        match r {
            Record::Alert(p) => {
                let alert = Alert {
                    labels: Labels::from_pairs(p.labels),
                    annotations: p.annotations.into_iter().collect(),
                    starts_at: p.starts_at,
                    ends_at: p.ends_at,
                    generator_url: p.generator_url,
                    updated_at: p.updated_at,
                };
                self.alerts.insert(
                    alert.fingerprint(),
                    StoredAlert {
                        alert,
                        timeout: p.timeout,
                        resolved_logged: false,
                    },
                );
            }
            Record::AlertDel(fp) => {
                self.alerts.remove(&fp);
            }
            Record::Group {
                key,
                next_flush,
                has_flushed,
            } => {
                schedules.insert(key, (next_flush, has_flushed));
            }
            Record::GroupDel(k) => {
                schedules.remove(&k);
            }
            Record::Silence(s) => self.silences.restore(s),
            Record::SilenceDel(id) => {
                self.silences.gc_one(&id);
            }
            Record::Nflog { key, entry } => {
                self.nflog.insert(key, entry);
            }
            Record::NflogDel(k) => {
                self.nflog.remove(&k);
            }
            Record::Ack(a) => {
                self.acks.insert(a.id.clone(), a);
            }
            Record::AckDel(id) => {
                self.acks.remove(&id);
            }
            Record::Escalation { group_key, state } => {
                self.escalations.insert(group_key, state);
            }
            Record::EscalationDel(k) => {
                self.escalations.remove(&k);
            }
            Record::History(e) => self.history.push_back(e),
        }
    }

    /// Rebuilds the groups from the alert store, keeping the given timers.
    fn rebuild_groups(&mut self, mut schedules: HashMap<String, (i64, bool)>, now: i64) {
        self.groups.clear();
        let alerts: Vec<Alert> = self.alerts.values().map(|a| a.alert.clone()).collect();
        for a in &alerts {
            for route in self.cfg.tree.matches(&a.labels) {
                let glabels = self.cfg.tree.group_labels(route, &a.labels);
                let key = self.cfg.tree.group_key(route, &glabels);
                let wait = self.route_opts(route).group_wait;
                let g = self.groups.entry(key.clone()).or_insert_with(|| {
                    let (next_flush, has_flushed) = schedules
                        .remove(&key)
                        .unwrap_or((now.saturating_add(wait), false));
                    Group {
                        route,
                        labels: glabels,
                        alerts: BTreeMap::new(),
                        next_flush,
                        has_flushed,
                    }
                });
                g.alerts.insert(a.fingerprint(), a.clone());
                if !g.has_flushed && a.starts_at.saturating_add(wait) < now && g.next_flush > now {
                    g.next_flush = now;
                }
            }
        }
        // Escalations of groups that no longer exist, or whose route
        // changed policy, end.
        let stale: Vec<String> = self
            .escalations
            .iter()
            .filter(|(k, st)| {
                self.groups
                    .get(*k)
                    .and_then(|g| self.cfg.policy_of(g.route))
                    .is_none_or(|p| p.name != st.policy || st.level > p.levels.len())
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in stale {
            self.end_escalation(&k, "route changed", now);
        }
    }

    fn route_opts(&self, route: usize) -> crate::route::RouteOpts {
        self.cfg
            .tree
            .get(route)
            .map(|r| r.opts.clone())
            .unwrap_or_default()
    }

    /// The configuration in use.
    pub fn compiled(&self) -> &Compiled {
        &self.cfg
    }

    /// Replaces the configuration, keeping alerts, silences, acks,
    /// notification log and the timers of groups that still exist.
    pub fn apply_config(
        &mut self,
        cfg: Compiled,
        receivers: BTreeMap<String, Vec<IntegrationInfo>>,
        now: i64,
    ) {
        let schedules: HashMap<String, (i64, bool)> = self
            .groups
            .iter()
            .map(|(k, g)| (k.clone(), (g.next_flush, g.has_flushed)))
            .collect();
        self.cfg = cfg;
        self.receivers = receivers;
        let old: BTreeSet<String> = self.groups.keys().cloned().collect();
        self.rebuild_groups(schedules, now);
        for k in old {
            if !self.groups.contains_key(&k) {
                self.pending.push(Record::GroupDel(k));
            }
        }
        let keys: Vec<String> = self.groups.keys().cloned().collect();
        for k in keys {
            self.persist_group(&k);
        }
        self.flush_records();
    }

    fn record(&mut self, r: Record) {
        self.pending.push(r);
    }

    fn event(&mut self, at: i64, kind: HistoryKind) {
        let e = HistoryEvent { at, kind };
        self.pending.push(Record::History(e.clone()));
        self.history.push_back(e);
    }

    /// Writes the records of the last operation.
    fn flush_records(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let recs = std::mem::take(&mut self.pending);
        if let Some(s) = &mut self.store {
            if let Err(e) = s.append(&recs) {
                tracing::warn!(error = %e, "notify state: append failed; state kept in memory");
            }
        }
    }

    fn persist_group(&mut self, key: &str) {
        if let Some(g) = self.groups.get(key) {
            let r = Record::Group {
                key: key.to_string(),
                next_flush: g.next_flush,
                has_flushed: g.has_flushed,
            };
            self.record(r);
        }
    }

    fn snapshot(&self) -> Vec<Record> {
        let mut v = Vec::new();
        for a in self.alerts.values() {
            v.push(Record::Alert(PersistedAlert {
                labels: labels_vec(&a.alert.labels),
                annotations: a
                    .alert
                    .annotations
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                starts_at: a.alert.starts_at,
                ends_at: a.alert.ends_at,
                generator_url: a.alert.generator_url.clone(),
                updated_at: a.alert.updated_at,
                timeout: a.timeout,
            }));
        }
        for (k, g) in &self.groups {
            v.push(Record::Group {
                key: k.clone(),
                next_flush: g.next_flush,
                has_flushed: g.has_flushed,
            });
        }
        for s in self.silences.list(0) {
            v.push(Record::Silence(s));
        }
        for (k, e) in &self.nflog {
            v.push(Record::Nflog {
                key: k.clone(),
                entry: e.clone(),
            });
        }
        for a in self.acks.values() {
            v.push(Record::Ack(a.clone()));
        }
        for (k, s) in &self.escalations {
            v.push(Record::Escalation {
                group_key: k.clone(),
                state: s.clone(),
            });
        }
        for e in &self.history {
            v.push(Record::History(e.clone()));
        }
        v
    }

    /// Rewrites the state file from the current state.
    pub fn compact(&mut self) {
        self.pending.clear();
        let snap = self.snapshot();
        if let Some(s) = &mut self.store {
            if let Err(e) = s.rewrite(&snap) {
                tracing::warn!(error = %e, "notify state: compaction failed");
            }
        }
    }

    /// The size of the state file in bytes.
    pub fn state_size(&self) -> u64 {
        self.store.as_ref().map(|s| s.size()).unwrap_or(0)
    }

    // ---- alerts ----

    /// Takes alerts in, as Alertmanager's `POST /api/v2/alerts`: `updatedAt`
    /// is now; a missing (<= 0) `startsAt` is `endsAt` or now; a missing
    /// `endsAt` is now + `resolve_timeout`. Valid alerts are accepted even
    /// when others are refused.
    pub fn receive(&mut self, input: Vec<Alert>, now: i64) -> Result<(), ReceiveError> {
        let resolve_timeout = self.cfg.config.global.resolve_timeout.ms();
        let mut refused = Vec::new();
        for (i, mut a) in input.into_iter().enumerate() {
            if a.labels.is_empty() {
                refused.push((i, "at least one label pair required".to_string()));
                continue;
            }
            if let Some(l) = a.labels.iter().find(|l| l.name.is_empty()) {
                refused.push((
                    i,
                    format!("invalid label set: empty name for {:?}", l.value),
                ));
                continue;
            }
            a.updated_at = now;
            if a.starts_at <= 0 {
                a.starts_at = if a.ends_at > 0 { a.ends_at } else { now };
            }
            let mut timeout = false;
            if a.ends_at <= 0 {
                timeout = true;
                a.ends_at = now.saturating_add(resolve_timeout);
            }
            if a.ends_at < a.starts_at {
                refused.push((i, "start time must be before end time".to_string()));
                continue;
            }
            self.put_alert(a, timeout, now);
        }
        self.flush_records();
        if refused.is_empty() {
            Ok(())
        } else {
            Err(ReceiveError { refused })
        }
    }

    fn put_alert(&mut self, mut a: Alert, mut timeout: bool, now: i64) {
        let fp = a.fingerprint();
        let mut was_firing = false;
        if let Some(old) = self.alerts.get(&fp) {
            was_firing = !old.alert.resolved_at(now);
            let o = &old.alert;
            // Merge when the activity ranges overlap (Alertmanager's
            // provider/mem Put and types.Alert.Merge).
            if (a.ends_at > o.starts_at && a.ends_at < o.ends_at)
                || (a.starts_at > o.starts_at && a.starts_at < o.ends_at)
            {
                let (older, older_timeout, newer_timeout) = if a.updated_at < o.updated_at {
                    // The stored one is younger: it wins, the new one merges in.
                    let stored = o.clone();
                    let st = old.timeout;
                    let incoming = std::mem::replace(&mut a, stored);
                    (incoming, timeout, st)
                } else {
                    (o.clone(), old.timeout, timeout)
                };
                timeout = newer_timeout;
                if older.starts_at < a.starts_at {
                    a.starts_at = older.starts_at;
                }
                if a.resolved_at(now) {
                    if older.resolved_at(now) && older.ends_at > a.ends_at {
                        a.ends_at = older.ends_at;
                    }
                } else if older.ends_at > a.ends_at && !older_timeout {
                    a.ends_at = older.ends_at;
                    timeout = false;
                }
            }
        }
        let firing = !a.resolved_at(now);
        if firing && !was_firing {
            self.event(
                now,
                HistoryKind::Fired {
                    fingerprint: fp,
                    labels: labels_vec(&a.labels),
                    starts_at: a.starts_at,
                },
            );
        }
        self.record(Record::Alert(PersistedAlert {
            labels: labels_vec(&a.labels),
            annotations: a
                .annotations
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            starts_at: a.starts_at,
            ends_at: a.ends_at,
            generator_url: a.generator_url.clone(),
            updated_at: a.updated_at,
            timeout,
        }));
        self.alerts.insert(
            fp,
            StoredAlert {
                alert: a.clone(),
                timeout,
                resolved_logged: !firing && !was_firing,
            },
        );
        if !firing && was_firing {
            self.note_resolved(fp, now);
        }
        for route in self.cfg.tree.matches(&a.labels) {
            let glabels = self.cfg.tree.group_labels(route, &a.labels);
            let key = self.cfg.tree.group_key(route, &glabels);
            let wait = self.route_opts(route).group_wait;
            let joins = firing
                && self
                    .groups
                    .get(&key)
                    .and_then(|g| g.alerts.get(&fp))
                    .is_none_or(|x| x.resolved_at(now));
            if joins && self.groups.contains_key(&key) {
                let current = self.raw_firing(&key, now);
                if self.group_acked(&key, &current, now) {
                    self.clear_group_acks(&key, "group changed", now);
                    self.end_escalation(&key, "group changed", now);
                }
            }
            let created = !self.groups.contains_key(&key);
            let g = self.groups.entry(key.clone()).or_insert_with(|| Group {
                route,
                labels: glabels,
                alerts: BTreeMap::new(),
                next_flush: now.saturating_add(wait),
                has_flushed: false,
            });
            g.alerts.insert(fp, a.clone());
            let mut changed = created;
            if !g.has_flushed && a.starts_at.saturating_add(wait) < now && g.next_flush > now {
                g.next_flush = now;
                changed = true;
            }
            if changed {
                self.persist_group(&key);
            }
        }
    }

    fn note_resolved(&mut self, fp: u64, now: i64) {
        let Some(a) = self.alerts.get_mut(&fp) else {
            return;
        };
        if a.resolved_logged {
            return;
        }
        a.resolved_logged = true;
        let (labels, ends_at) = (labels_vec(&a.alert.labels), a.alert.ends_at);
        self.event(
            now,
            HistoryKind::Resolved {
                fingerprint: fp,
                labels,
                ends_at,
            },
        );
        let ids: Vec<String> = self
            .acks
            .values()
            .filter(|k| k.target == AckTarget::Alert(fp))
            .map(|k| k.id.clone())
            .collect();
        for id in ids {
            self.remove_ack(&id, "resolved", now);
        }
    }

    fn raw_firing(&self, key: &str, now: i64) -> BTreeSet<u64> {
        self.groups
            .get(key)
            .map(|g| {
                g.alerts
                    .iter()
                    .filter(|(_, a)| !a.resolved_at(now))
                    .map(|(fp, _)| *fp)
                    .collect()
            })
            .unwrap_or_default()
    }

    // ---- muting ----

    fn firing_labels(&self, now: i64) -> Vec<(u64, &Labels)> {
        self.alerts
            .iter()
            .filter(|(_, a)| !a.alert.resolved_at(now))
            .map(|(fp, a)| (*fp, &a.alert.labels))
            .collect()
    }

    // ---- acks ----

    fn group_acked(&self, key: &str, firing: &BTreeSet<u64>, now: i64) -> bool {
        if firing.is_empty() {
            return false;
        }
        let target = AckTarget::Group(key.to_string());
        if self.acks.values().any(|a| {
            a.target == target && a.is_active(now) && firing.iter().all(|f| a.covered.contains(f))
        }) {
            return true;
        }
        firing.iter().all(|f| {
            self.acks
                .values()
                .any(|a| a.target == AckTarget::Alert(*f) && a.is_active(now))
        })
    }

    fn clear_group_acks(&mut self, key: &str, reason: &str, now: i64) {
        let target = AckTarget::Group(key.to_string());
        let ids: Vec<String> = self
            .acks
            .values()
            .filter(|a| a.target == target)
            .map(|a| a.id.clone())
            .collect();
        for id in ids {
            self.remove_ack(&id, reason, now);
        }
    }

    fn remove_ack(&mut self, id: &str, reason: &str, now: i64) {
        if let Some(a) = self.acks.remove(id) {
            self.record(Record::AckDel(id.to_string()));
            self.event(
                now,
                HistoryKind::AckCleared {
                    target: a.target,
                    reason: reason.to_string(),
                },
            );
        }
    }

    /// Acknowledges a group or an alert.
    pub fn ack(&mut self, req: AckRequest, now: i64) -> Result<Ack, AckError> {
        if req.by.trim().is_empty() {
            return Err(AckError::NoAuthor);
        }
        if req.expires_at.is_some_and(|e| e <= now) {
            return Err(AckError::ExpiryInPast);
        }
        let mut target = req.target;
        let covered = match &mut target {
            AckTarget::Group(k) => {
                if !self.groups.contains_key(k.as_str()) {
                    // Alertmanager's form of the key, as receivers see it.
                    let found: Vec<&String> = self
                        .groups
                        .iter()
                        .filter(|(_, g)| self.cfg.tree.am_group_key(g.route, &g.labels) == *k)
                        .map(|(ik, _)| ik)
                        .collect();
                    match found.as_slice() {
                        [one] => *k = (*one).clone(),
                        _ => return Err(AckError::NoGroup(k.clone())),
                    }
                }
                self.raw_firing(k, now).into_iter().collect()
            }
            AckTarget::Alert(fp) => {
                if self.alerts.get(fp).is_none_or(|a| a.alert.resolved_at(now)) {
                    return Err(AckError::NoAlert(*fp));
                }
                Vec::new()
            }
        };
        let ack = Ack {
            id: new_uuid(),
            target,
            by: req.by,
            at: now,
            comment: req.comment,
            expires_at: req.expires_at,
            covered,
        };
        self.acks.insert(ack.id.clone(), ack.clone());
        self.record(Record::Ack(ack.clone()));
        self.event(
            now,
            HistoryKind::Acked {
                target: ack.target.clone(),
                by: ack.by.clone(),
                comment: ack.comment.clone(),
                expires_at: ack.expires_at,
            },
        );
        self.flush_records();
        Ok(ack)
    }

    /// Acknowledges the group of an ack link after checking its token.
    pub fn ack_with_token(
        &mut self,
        group: &str,
        token: &str,
        by: String,
        comment: String,
        now: i64,
    ) -> Result<Ack, AckError> {
        let key = self
            .groups
            .keys()
            .find(|k| group_id(k) == group)
            .cloned()
            .ok_or_else(|| AckError::NoGroup(group.to_string()))?;
        if !self.signer.verify(&key, token) {
            return Err(AckError::BadToken);
        }
        self.ack(
            AckRequest {
                target: AckTarget::Group(key),
                by,
                comment,
                expires_at: None,
            },
            now,
        )
    }

    /// Removes an ack.
    pub fn unack(&mut self, id: &str, now: i64) -> Result<(), AckError> {
        if !self.acks.contains_key(id) {
            return Err(AckError::NoAck(id.to_string()));
        }
        self.remove_ack(id, "removed", now);
        self.flush_records();
        Ok(())
    }

    /// Active acks.
    pub fn acks(&self, now: i64) -> Vec<Ack> {
        self.acks
            .values()
            .filter(|a| a.is_active(now))
            .cloned()
            .collect()
    }

    /// The path of a group's ack link (`/api/v1/notify/ack/{id}/{token}`).
    pub fn ack_path(&self, group_key: &str) -> String {
        self.signer.ack_path(group_key)
    }

    /// Whether `token` is the ack token of `group_key`.
    pub fn verify_ack_token(&self, group_key: &str, token: &str) -> bool {
        self.signer.verify(group_key, token)
    }

    // ---- silences ----

    /// Creates or updates a silence.
    pub fn add_silence(&mut self, req: SilenceRequest, now: i64) -> Result<Silence, SilenceError> {
        let updating = req.id.clone();
        let (s, replaced) = self.silences.set(req, new_uuid, now)?;
        if let Some(old) = replaced {
            self.record(Record::Silence(old.clone()));
            self.event(
                now,
                HistoryKind::Silence {
                    id: old.id,
                    action: "expired".into(),
                    by: old.created_by,
                },
            );
        }
        self.record(Record::Silence(s.clone()));
        let action = if updating.as_deref() == Some(s.id.as_str()) {
            "updated"
        } else {
            "created"
        };
        self.event(
            now,
            HistoryKind::Silence {
                id: s.id.clone(),
                action: action.into(),
                by: s.created_by.clone(),
            },
        );
        self.flush_records();
        Ok(s)
    }

    /// Expires a silence.
    pub fn expire_silence(&mut self, id: &str, now: i64) -> Result<(), SilenceError> {
        let s = self.silences.expire(id, now)?;
        self.record(Record::Silence(s.clone()));
        self.event(
            now,
            HistoryKind::Silence {
                id: s.id,
                action: "expired".into(),
                by: s.created_by,
            },
        );
        self.flush_records();
        Ok(())
    }

    /// All silences.
    pub fn silences(&self, now: i64) -> Vec<Silence> {
        self.silences.list(now)
    }

    /// One silence.
    pub fn silence(&self, id: &str) -> Option<Silence> {
        self.silences.get(id).cloned()
    }

    // ---- escalation ----

    fn end_escalation(&mut self, key: &str, reason: &str, now: i64) {
        if self.escalations.remove(key).is_some() {
            self.record(Record::EscalationDel(key.to_string()));
            self.event(
                now,
                HistoryKind::EscalationEnded {
                    group_key: key.to_string(),
                    reason: reason.to_string(),
                },
            );
        }
    }

    /// Escalation states, by group key.
    pub fn escalations(&self) -> Vec<(String, EscalationState)> {
        self.escalations
            .iter()
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect()
    }

    // ---- planning ----

    /// The next time something is due (a group flush or an escalation), if
    /// anything is.
    pub fn next_due(&self) -> Option<i64> {
        let flush = self.groups.values().map(|g| g.next_flush).min();
        let esc = self
            .escalations
            .iter()
            .filter_map(|(k, st)| {
                let g = self.groups.get(k)?;
                let p = self.cfg.policy_of(g.route)?;
                if st.level >= p.levels.len() {
                    return None;
                }
                let lvl = p.levels.get(st.level.checked_sub(1)?)?;
                Some(st.since.saturating_add(lvl.timeout))
            })
            .min();
        match (flush, esc) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Plans everything due at `now`: group flushes, then escalations.
    /// Group timers advance here; the notification log is written by
    /// [`Core::complete`].
    pub fn plan(&mut self, now: i64) -> Vec<Plan> {
        self.maintain(now);
        let mut plans = Vec::new();
        let due: Vec<String> = self
            .groups
            .iter()
            .filter(|(_, g)| g.next_flush <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            let Some(g) = self.groups.get_mut(&key) else {
                continue;
            };
            let interval = self
                .cfg
                .tree
                .get(g.route)
                .map(|r| r.opts.group_interval)
                .unwrap_or(300_000);
            g.next_flush = now.saturating_add(interval.max(1));
            g.has_flushed = true;
            self.persist_group(&key);
            plans.push(self.plan_group(&key, now));
        }
        let escalating: Vec<String> = self.escalations.keys().cloned().collect();
        for key in escalating {
            if let Some(p) = self.plan_escalation(&key, now) {
                plans.push(p);
            }
        }
        self.flush_records();
        plans
    }

    /// The unmuted alerts of a group, firing first, and whether the route
    /// is muted by time.
    fn group_alerts(&self, key: &str, now: i64) -> (Vec<Alert>, bool) {
        let Some(g) = self.groups.get(key) else {
            return (Vec::new(), false);
        };
        if !self.cfg.time_muted(g.route, now).is_empty() {
            return (Vec::new(), true);
        }
        let firing = self.firing_labels(now);
        let idx = InhibitIndex::new(&self.cfg.inhibit, &firing);
        let mut v: Vec<Alert> = g
            .alerts
            .values()
            .filter(|a| idx.inhibited_by(&a.labels).is_none())
            .filter(|a| self.silences.mutes(&a.labels, now).is_empty())
            .cloned()
            .collect();
        v.sort_by(|a, b| {
            a.resolved_at(now)
                .cmp(&b.resolved_at(now))
                .then_with(|| a.labels.cmp(&b.labels))
        });
        (v, false)
    }

    fn plan_escalation(&mut self, key: &str, now: i64) -> Option<Plan> {
        let st = self.escalations.get(key)?.clone();
        let g = self.groups.get(key)?;
        let policy = self.cfg.policy_of(g.route)?.clone();
        if st.level >= policy.levels.len() {
            return None;
        }
        let lvl = policy.levels.get(st.level.checked_sub(1)?)?;
        if now < st.since.saturating_add(lvl.timeout) {
            return None;
        }
        let (alerts, time_muted) = self.group_alerts(key, now);
        if time_muted {
            return None;
        }
        let firing: BTreeSet<u64> = alerts
            .iter()
            .filter(|a| !a.resolved_at(now))
            .map(|a| a.fingerprint())
            .collect();
        if firing.is_empty() || self.group_acked(key, &firing, now) {
            return None;
        }
        let level = st.level + 1;
        let next = EscalationState {
            level,
            since: now,
            ..st
        };
        self.escalations.insert(key.to_string(), next.clone());
        self.record(Record::Escalation {
            group_key: key.to_string(),
            state: next,
        });
        self.event(
            now,
            HistoryKind::Escalated {
                group_key: key.to_string(),
                policy: policy.name.clone(),
                level,
            },
        );
        let receivers: Vec<(String, Option<usize>)> = policy.levels[level - 1]
            .receivers
            .iter()
            .map(|r| (r.clone(), Some(level)))
            .collect();
        let mut plan = self.build_plan(key, now, &alerts, &receivers);
        plan.group_flush = false;
        Some(plan)
    }

    fn plan_group(&mut self, key: &str, now: i64) -> Plan {
        let (alerts, time_muted) = self.group_alerts(key, now);
        let Some(g) = self.groups.get(key) else {
            return Plan {
                group_key: key.to_string(),
                now,
                jobs: Vec::new(),
                group_flush: true,
                resolved_snapshot: Vec::new(),
            };
        };
        let route = g.route;
        let resolved_snapshot = g
            .alerts
            .iter()
            .filter(|(_, a)| a.resolved_at(now))
            .map(|(fp, a)| (*fp, a.updated_at, a.ends_at))
            .collect();
        if time_muted {
            return Plan {
                group_key: key.to_string(),
                now,
                jobs: Vec::new(),
                group_flush: true,
                resolved_snapshot,
            };
        }
        let receiver = self.route_opts(route).receiver;
        let mut receivers = vec![(receiver, None)];
        let any_firing = alerts.iter().any(|a| !a.resolved_at(now));
        if let Some(policy) = self.cfg.policy_of(route).cloned() {
            if any_firing {
                if !self.escalations.contains_key(key) {
                    let st = EscalationState {
                        policy: policy.name.clone(),
                        level: 1,
                        since: now,
                        started: now,
                    };
                    self.escalations.insert(key.to_string(), st.clone());
                    self.record(Record::Escalation {
                        group_key: key.to_string(),
                        state: st,
                    });
                    self.event(
                        now,
                        HistoryKind::Escalated {
                            group_key: key.to_string(),
                            policy: policy.name.clone(),
                            level: 1,
                        },
                    );
                }
                let reached = self.escalations.get(key).map(|s| s.level).unwrap_or(1);
                for (i, lvl) in policy.levels.iter().enumerate().take(reached) {
                    for r in &lvl.receivers {
                        receivers.push((r.clone(), Some(i + 1)));
                    }
                }
            } else if let Some(st) = self.escalations.get(key) {
                // Resolved: the levels reached hear about it, then it ends.
                for (i, lvl) in policy.levels.iter().enumerate().take(st.level) {
                    for r in &lvl.receivers {
                        receivers.push((r.clone(), Some(i + 1)));
                    }
                }
                self.end_escalation(key, "resolved", now);
                self.clear_group_acks(key, "resolved", now);
            }
        }
        let mut plan = self.build_plan(key, now, &alerts, &receivers);
        plan.resolved_snapshot = resolved_snapshot;
        plan
    }

    fn build_plan(
        &self,
        key: &str,
        now: i64,
        alerts: &[Alert],
        receivers: &[(String, Option<usize>)],
    ) -> Plan {
        let mut plan = Plan {
            group_key: key.to_string(),
            now,
            jobs: Vec::new(),
            group_flush: true,
            resolved_snapshot: Vec::new(),
        };
        let Some(g) = self.groups.get(key) else {
            return plan;
        };
        if alerts.is_empty() {
            return plan;
        }
        let repeat = self.route_opts(g.route).repeat_interval;
        let firing: BTreeSet<u64> = alerts
            .iter()
            .filter(|a| !a.resolved_at(now))
            .map(|a| a.fingerprint())
            .collect();
        let resolved: BTreeSet<u64> = alerts
            .iter()
            .filter(|a| a.resolved_at(now))
            .map(|a| a.fingerprint())
            .collect();
        let acked = self.group_acked(key, &firing, now);
        let ack_url = Some(format!(
            "{}{}",
            self.opts.external_url.trim_end_matches('/'),
            self.signer.ack_path(key)
        ));
        let mut seen = BTreeSet::new();
        for (name, level) in receivers {
            if !seen.insert(name.clone()) {
                continue;
            }
            let Some(integrations) = self.receivers.get(name) else {
                continue;
            };
            for (idx, info) in integrations.iter().enumerate() {
                let nkey = nflog::key(key, name, info.kind, idx);
                if !nflog::needs_update(
                    self.nflog.get(&nkey),
                    &firing,
                    &resolved,
                    info.send_resolved,
                    repeat,
                    now,
                    acked,
                ) {
                    continue;
                }
                let sent: Vec<Alert> = alerts
                    .iter()
                    .filter(|a| info.send_resolved || !a.resolved_at(now))
                    .cloned()
                    .collect();
                let status = if sent.iter().any(|a| !a.resolved_at(now)) {
                    "firing"
                } else {
                    "resolved"
                };
                let data = NotificationData {
                    receiver: name.clone(),
                    status: status.to_string(),
                    group_labels: g.labels.clone(),
                    common_labels: common_labels(&sent),
                    common_annotations: common_annotations(&sent),
                    external_url: self.opts.external_url.clone(),
                    group_key: self.cfg.tree.am_group_key(g.route, &g.labels),
                    truncated_alerts: 0,
                    now,
                    ack_url: ack_url.clone(),
                    escalation_level: *level,
                    alerts: sent,
                };
                plan.jobs.push(Job {
                    receiver: name.clone(),
                    integration: idx,
                    kind: info.kind,
                    send: !data.alerts.is_empty(),
                    data,
                    nflog_key: nkey,
                    firing: firing.clone(),
                    resolved: resolved.clone(),
                });
            }
        }
        plan
    }

    /// Records the outcome of a plan's jobs (`results[i]` for `jobs[i]`;
    /// missing results count as failures).
    pub fn complete(&mut self, plan: &Plan, results: &[Result<(), String>]) {
        let now = plan.now;
        let mut all_ok = true;
        for (i, job) in plan.jobs.iter().enumerate() {
            match results.get(i) {
                Some(Ok(())) => {
                    let entry = NflogEntry {
                        firing: job.firing.clone(),
                        resolved: job.resolved.clone(),
                        ts: now,
                        expires: now.saturating_add(self.opts.retention),
                    };
                    self.nflog.insert(job.nflog_key.clone(), entry.clone());
                    self.record(Record::Nflog {
                        key: job.nflog_key.clone(),
                        entry,
                    });
                    if job.send {
                        let sent_firing = job
                            .data
                            .alerts
                            .iter()
                            .filter(|a| !a.resolved_at(now))
                            .map(|a| a.fingerprint())
                            .collect();
                        let sent_resolved = job
                            .data
                            .alerts
                            .iter()
                            .filter(|a| a.resolved_at(now))
                            .map(|a| a.fingerprint())
                            .collect();
                        self.event(
                            now,
                            HistoryKind::Notified {
                                group_key: plan.group_key.clone(),
                                receiver: job.receiver.clone(),
                                integration: job.kind.to_string(),
                                firing: sent_firing,
                                resolved: sent_resolved,
                                escalation_level: job.data.escalation_level,
                            },
                        );
                    }
                }
                other => {
                    all_ok = false;
                    let error = match other {
                        Some(Err(e)) => e.clone(),
                        _ => "no result".to_string(),
                    };
                    self.event(
                        now,
                        HistoryKind::NotifyFailed {
                            group_key: plan.group_key.clone(),
                            receiver: job.receiver.clone(),
                            integration: job.kind.to_string(),
                            error,
                        },
                    );
                }
            }
        }
        if plan.group_flush && all_ok {
            let mut empty = false;
            if let Some(g) = self.groups.get_mut(&plan.group_key) {
                for (fp, updated, ends) in &plan.resolved_snapshot {
                    if g.alerts
                        .get(fp)
                        .is_some_and(|a| a.updated_at == *updated && a.ends_at == *ends)
                    {
                        g.alerts.remove(fp);
                    }
                }
                empty = g.alerts.is_empty();
            }
            if empty {
                self.groups.remove(&plan.group_key);
                self.record(Record::GroupDel(plan.group_key.clone()));
                self.end_escalation(&plan.group_key, "resolved", now);
                self.clear_group_acks(&plan.group_key, "resolved", now);
            }
        }
        self.flush_records();
    }

    /// Housekeeping: resolution history, garbage collection, compaction.
    pub fn maintain(&mut self, now: i64) {
        let newly_resolved: Vec<u64> = self
            .alerts
            .iter()
            .filter(|(_, a)| a.alert.resolved_at(now) && !a.resolved_logged)
            .map(|(fp, _)| *fp)
            .collect();
        for fp in newly_resolved {
            self.note_resolved(fp, now);
        }
        let gc = self.opts.alert_gc;
        let dead: Vec<u64> = self
            .alerts
            .iter()
            .filter(|(_, a)| a.alert.ends_at.saturating_add(gc) <= now)
            .map(|(fp, _)| *fp)
            .collect();
        for fp in dead {
            self.alerts.remove(&fp);
            self.record(Record::AlertDel(fp));
        }
        for id in self.silences.gc(now, self.opts.retention) {
            self.record(Record::SilenceDel(id));
        }
        let expired: Vec<String> = self
            .nflog
            .iter()
            .filter(|(_, e)| e.expires < now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in expired {
            self.nflog.remove(&k);
            self.record(Record::NflogDel(k));
        }
        let lapsed: Vec<String> = self
            .acks
            .values()
            .filter(|a| !a.is_active(now))
            .map(|a| a.id.clone())
            .collect();
        for id in lapsed {
            self.remove_ack(&id, "expired", now);
        }
        let orphans: Vec<String> = self
            .escalations
            .keys()
            .filter(|k| !self.groups.contains_key(*k))
            .cloned()
            .collect();
        for k in orphans {
            self.end_escalation(&k, "resolved", now);
        }
        let horizon = now.saturating_sub(self.opts.history_retention);
        while self
            .history
            .front()
            .is_some_and(|e| e.at < horizon || self.history.len() > self.opts.history_max)
        {
            self.history.pop_front();
        }
        self.flush_records();
        if self.store.as_ref().is_some_and(|s| s.needs_compaction()) {
            self.compact();
        }
    }

    /// Syncs the state file.
    pub fn sync(&mut self) {
        if let Some(s) = &mut self.store {
            if let Err(e) = s.sync() {
                tracing::warn!(error = %e, "notify state: sync failed");
            }
        }
    }

    // ---- queries ----

    fn status_of(&self, fp: u64, a: &Alert, idx: &InhibitIndex<'_>, now: i64) -> AlertStatus {
        let routes = self.cfg.tree.matches(&a.labels);
        let mut receivers = Vec::new();
        let mut muted_by = Vec::new();
        for r in &routes {
            if let Some(rt) = self.cfg.tree.get(*r) {
                if !receivers.contains(&rt.opts.receiver) {
                    receivers.push(rt.opts.receiver.clone());
                }
            }
            for m in self.cfg.time_muted(*r, now) {
                if !muted_by.contains(&m) {
                    muted_by.push(m);
                }
            }
        }
        let silenced_by = self.silences.mutes(&a.labels, now);
        let inhibited_by: Vec<String> = idx
            .inhibited_by(&a.labels)
            .map(|f| format!("{f:016x}"))
            .into_iter()
            .collect();
        let suppressed =
            !silenced_by.is_empty() || !inhibited_by.is_empty() || !muted_by.is_empty();
        let ack = self
            .acks
            .values()
            .find(|k| k.is_active(now) && k.target == AckTarget::Alert(fp))
            .or_else(|| {
                self.acks.values().find(|k| {
                    k.is_active(now)
                        && matches!(&k.target, AckTarget::Group(_))
                        && k.covered.contains(&fp)
                })
            })
            .cloned();
        AlertStatus {
            alert: a.clone(),
            fingerprint: fp,
            state: if suppressed { "suppressed" } else { "active" },
            receivers,
            silenced_by,
            inhibited_by,
            muted_by,
            ack,
        }
    }

    fn passes(f: &AlertFilter, s: &AlertStatus) -> bool {
        if !f.matchers.matches(&s.alert.labels) {
            return false;
        }
        if let Some(m) = &f.receiver {
            if !s.receivers.iter().any(|r| m.matches_value(r)) {
                return false;
            }
        }
        if !f.silenced && !s.silenced_by.is_empty() {
            return false;
        }
        if !f.inhibited && !s.inhibited_by.is_empty() {
            return false;
        }
        if !f.muted && !s.muted_by.is_empty() {
            return false;
        }
        if !f.active && s.state == "active" {
            return false;
        }
        true
    }

    /// Alerts not resolved at `now` that pass the filter, by fingerprint.
    pub fn alerts(&self, f: &AlertFilter, now: i64) -> Vec<AlertStatus> {
        let firing = self.firing_labels(now);
        let idx = InhibitIndex::new(&self.cfg.inhibit, &firing);
        self.alerts
            .iter()
            .filter(|(_, a)| !a.alert.resolved_at(now))
            .map(|(fp, a)| self.status_of(*fp, &a.alert, &idx, now))
            .filter(|s| Self::passes(f, s))
            .collect()
    }

    /// Aggregation groups with their alerts passing the filter; groups
    /// left without alerts are omitted.
    pub fn groups(&self, f: &AlertFilter, now: i64) -> Vec<GroupStatus> {
        let firing = self.firing_labels(now);
        let idx = InhibitIndex::new(&self.cfg.inhibit, &firing);
        let mut out = Vec::new();
        for (key, g) in &self.groups {
            let alerts: Vec<AlertStatus> = g
                .alerts
                .iter()
                .filter(|(_, a)| !a.resolved_at(now))
                .map(|(fp, a)| self.status_of(*fp, a, &idx, now))
                .filter(|s| Self::passes(f, s))
                .collect();
            if alerts.is_empty() {
                continue;
            }
            let route = self.cfg.tree.get(g.route);
            let fps = self.raw_firing(key, now);
            out.push(GroupStatus {
                key: key.clone(),
                id: group_id(key),
                labels: g.labels.clone(),
                receiver: route.map(|r| r.opts.receiver.clone()).unwrap_or_default(),
                route_id: route.map(|r| r.id.clone()).unwrap_or_default(),
                alerts,
                next_flush: g.next_flush,
                escalation: self.escalations.get(key).cloned(),
                acked: self.group_acked(key, &fps, now),
            });
        }
        out
    }

    /// History events matching the query, oldest first.
    pub fn history(&self, q: &HistoryQuery) -> Vec<HistoryEvent> {
        let mut v: Vec<HistoryEvent> = self
            .history
            .iter()
            .filter(|e| q.matches(e))
            .cloned()
            .collect();
        if q.limit > 0 && v.len() > q.limit {
            v.drain(..v.len() - q.limit);
        }
        v
    }

    /// The group key string of a label set on the root route, for tests and
    /// tools: `{}:{a="b"}`.
    pub fn root_group_key(labels: &Labels) -> String {
        format!("{{}}:{}", label_set_string(labels))
    }
}
