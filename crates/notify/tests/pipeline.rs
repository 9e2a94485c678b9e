//! The notification pipeline end to end with a fake clock and a recording
//! fake integration: Alertmanager's timing, routing, inhibition, silences,
//! vigil's escalation and acks, persistence across restarts, retries.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use vigil_model::Labels;
use vigil_notify::notifier::IntegrationFactory;
use vigil_notify::types::NotifyFuture;
use vigil_notify::*;

const T0: i64 = 1_700_000_000_000;
const S: i64 = 1000;
const M: i64 = 60 * S;
const H: i64 = 60 * M;

#[derive(Debug, Default)]
struct Recorder {
    sent: Mutex<Vec<NotificationData>>,
    /// Attempts left to fail.
    fail: AtomicUsize,
    attempts: AtomicUsize,
}

#[derive(Debug)]
struct Fake {
    rec: Arc<Recorder>,
    send_resolved: bool,
}

impl Integration for Fake {
    fn kind(&self) -> &'static str {
        "fake"
    }
    fn send_resolved(&self) -> bool {
        self.send_resolved
    }
    fn notify<'a>(&'a self, data: &'a NotificationData) -> NotifyFuture<'a> {
        Box::pin(async move {
            self.rec.attempts.fetch_add(1, Ordering::SeqCst);
            if self
                .rec
                .fail
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err(NotifyError {
                    retryable: true,
                    message: "503 from fake".into(),
                });
            }
            self.rec.sent.lock().push(data.clone());
            Ok(())
        })
    }
}

struct Harness {
    n: Option<Notifier>,
    clock: Arc<FakeClock>,
    rec: Arc<Recorder>,
    dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    yaml: String,
    opts: NotifierOptions,
}

fn config(yaml: &str) -> Config {
    let c: Config = serde_yaml_ng::from_str(yaml).expect("yaml");
    c
}

impl Harness {
    fn new(yaml: &str) -> Harness {
        Self::with_opts(yaml, NotifierOptions::default())
    }

    fn with_opts(yaml: &str, mut opts: NotifierOptions) -> Harness {
        opts.core.external_url = "http://vigil.example".into();
        let mut h = Harness {
            n: None,
            clock: Arc::new(FakeClock::new(T0)),
            rec: Arc::new(Recorder::default()),
            dir: tempfile::tempdir().unwrap(),
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            yaml: yaml.to_string(),
            opts,
        };
        h.start();
        h
    }

    fn factory(&self) -> IntegrationFactory {
        let rec = self.rec.clone();
        Arc::new(move |_: &Config, rc: &receivers::ReceiverConfig| {
            let i: Box<dyn Integration> = Box::new(Fake {
                rec: rec.clone(),
                send_resolved: rc.name.ends_with("-resolved"),
            });
            Ok(vec![i])
        })
    }

    /// (Re)opens the notifier on the same state directory.
    fn start(&mut self) {
        self.n = None;
        let n = Notifier::with_options(
            config(&self.yaml),
            self.dir.path(),
            self.clock.clone(),
            self.opts.clone(),
            self.factory(),
        )
        .expect("notifier");
        self.n = Some(n);
    }

    fn n(&self) -> &Notifier {
        self.n.as_ref().unwrap()
    }

    /// Moves the clock to T0 + `t` and ticks.
    fn at(&self, t: i64) -> TickReport {
        self.clock.set(T0 + t);
        self.rt.block_on(self.n().tick(T0 + t))
    }

    /// Ticks at every time from `from` to `to` in steps, returning
    /// (time offset, receiver, alert count) of each notification sent.
    fn run(&self, from: i64, to: i64, step: i64) -> Vec<(i64, String, usize)> {
        let mut out = Vec::new();
        let mut t = from;
        while t <= to {
            let before = self.rec.sent.lock().len();
            self.at(t);
            for d in &self.rec.sent.lock()[before..] {
                out.push((t, d.receiver.clone(), d.alerts.len()));
            }
            t += step;
        }
        out
    }

    fn send(&self, t: i64, alerts: Vec<Alert>) {
        self.clock.set(T0 + t);
        self.n().receive(alerts).unwrap();
    }

    fn take(&self) -> Vec<NotificationData> {
        std::mem::take(&mut *self.rec.sent.lock())
    }
}

fn alert(labels: &[(&str, &str)], starts: i64) -> Alert {
    Alert {
        labels: Labels::from_pairs(labels.iter().copied()),
        annotations: BTreeMap::new(),
        starts_at: T0 + starts,
        ends_at: T0 + 1000 * H,
        generator_url: String::new(),
        updated_at: 0,
    }
}

fn resolved(labels: &[(&str, &str)], starts: i64, ends: i64) -> Alert {
    Alert {
        ends_at: T0 + ends,
        ..alert(labels, starts)
    }
}

const BASIC: &str = r#"
route:
  receiver: team
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
receivers: [{name: team}]
"#;

/// Alertmanager's documented timing: the first notification after
/// group_wait; an alert joining later waits for the next group_interval
/// tick; an unchanged group is re-sent after repeat_interval, at the first
/// group_interval tick after it has passed (4h plus one interval here,
/// because the repeat check is strict).
#[test]
fn group_wait_group_interval_repeat_interval() {
    let h = Harness::new(BASIC);
    h.send(0, vec![alert(&[("alertname", "A"), ("i", "1")], 0)]);
    assert_eq!(h.at(29 * S).sent, 0);
    assert_eq!(h.at(30 * S).sent, 1);
    assert_eq!(h.take()[0].alerts.len(), 1);
    h.send(M, vec![alert(&[("alertname", "A"), ("i", "2")], M)]);
    assert_eq!(h.at(5 * M).sent, 0, "new alerts wait for group_interval");
    assert_eq!(h.at(5 * M + 30 * S).sent, 1);
    let d = h.take();
    assert_eq!(d[0].alerts.len(), 2);
    assert_eq!(d[0].status, "firing");
    assert_eq!(
        d[0].group_key, r#"{}:{alertname="A"}"#,
        "Alertmanager's group key form"
    );
    assert!(d[0]
        .ack_url
        .as_deref()
        .unwrap()
        .starts_with("http://vigil.example/api/v1/notify/ack/"));
    // Nothing changes: next notification is the repeat.
    let sent = h.run(10 * M + 30 * S, 4 * H + 15 * M + 30 * S, 5 * M);
    assert_eq!(
        sent,
        vec![(4 * H + 10 * M + 30 * S, "team".to_string(), 2)],
        "repeat after 4h, rounded up to the group_interval ticks"
    );
}

#[test]
fn old_alert_skips_group_wait_and_new_group_after_resolution() {
    let h = Harness::new(BASIC);
    // Started 10m ago: group_wait has passed, flush at once.
    h.send(0, vec![alert(&[("alertname", "Old")], -10 * M)]);
    assert_eq!(h.at(0).sent, 1);
}

#[test]
fn resolved_notifications_follow_send_resolved() {
    let h = Harness::new(
        r#"
route:
  receiver: quiet
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  routes:
    - matchers: [team=db]
      receiver: db-resolved
      continue: true
    - matchers: [team=db]
      receiver: quiet
receivers: [{name: quiet}, {name: db-resolved}]
"#,
    );
    let l1 = [("alertname", "A"), ("team", "db"), ("i", "1")];
    let l2 = [("alertname", "A"), ("team", "db"), ("i", "2")];
    h.send(0, vec![alert(&l1, 0), alert(&l2, 0)]);
    h.at(30 * S);
    let d = h.take();
    assert_eq!(d.len(), 2, "continue: both routes notified");
    // One resolves: only the send_resolved receiver hears of it.
    h.send(M, vec![resolved(&l1, 0, M)]);
    h.at(5 * M + 30 * S);
    let d = h.take();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].receiver, "db-resolved");
    assert_eq!(d[0].alerts.len(), 2);
    assert!(d[0].alerts[1].resolved_at(T0 + 5 * M + 30 * S));
    // The rest resolves: resolved notification to db-resolved; quiet's log
    // is updated without a send.
    h.send(6 * M, vec![resolved(&l2, 0, 6 * M)]);
    h.at(10 * M + 30 * S);
    let d = h.take();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].status, "resolved");
    assert_eq!(d[0].alerts.len(), 1, "l1 left the group after it was sent");
    assert!(h.n().groups(&AlertFilter::default()).is_empty());
    assert_eq!(h.at(15 * M + 30 * S).sent, 0);
}

#[test]
fn inhibition_and_silences() {
    let h = Harness::with_opts(
        r#"
route:
  receiver: team
  group_by: ['...']
  group_wait: 0s
  group_interval: 1m
receivers: [{name: team}]
inhibit_rules:
  - source_matchers: [severity="critical"]
    target_matchers: [severity="warning"]
    equal: [cluster]
"#,
        NotifierOptions {
            core: CoreOptions {
                retention: H,
                ..CoreOptions::default()
            },
            ..NotifierOptions::default()
        },
    );
    let crit = [
        ("alertname", "Down"),
        ("severity", "critical"),
        ("cluster", "a"),
    ];
    let warn = [
        ("alertname", "Slow"),
        ("severity", "warning"),
        ("cluster", "a"),
    ];
    let other = [
        ("alertname", "Slow"),
        ("severity", "warning"),
        ("cluster", "b"),
    ];
    h.send(0, vec![alert(&crit, 0), alert(&warn, 0), alert(&other, 0)]);
    let sil = h
        .n()
        .add_silence(SilenceRequest {
            id: None,
            matchers: parse_matchers("cluster=b").unwrap(),
            starts_at: T0,
            ends_at: T0 + 10 * M,
            created_by: "ops".into(),
            comment: "maintenance".into(),
        })
        .unwrap();
    h.at(0);
    let d = h.take();
    let names: Vec<String> = d
        .iter()
        .map(|d| d.alerts[0].labels.get_or_empty("alertname").to_string())
        .collect();
    assert_eq!(names, ["Down"], "warning inhibited, cluster b silenced");
    let st = h.n().alerts(&AlertFilter::default());
    let slow_b = st
        .iter()
        .find(|s| s.alert.labels.get("cluster") == Some("b"))
        .unwrap();
    assert_eq!(slow_b.state, "suppressed");
    assert_eq!(slow_b.silenced_by, vec![sil.id.clone()]);
    let slow_a = st
        .iter()
        .find(|s| {
            s.alert.labels.get("cluster") == Some("a")
                && s.alert.labels.get("alertname") == Some("Slow")
        })
        .unwrap();
    assert_eq!(slow_a.inhibited_by.len(), 1);
    // The silence ends: the alert is sent at the next flush.
    h.n().expire_silence(&sil.id).unwrap();
    h.at(M);
    let d = h.take();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].alerts[0].labels.get("cluster"), Some("b"));
    // Expired silences are removed after the retention.
    assert_eq!(h.n().silences().len(), 1);
    h.at(M + H + S);
    assert!(
        h.n().silences().is_empty(),
        "expired silence garbage-collected"
    );
}

#[test]
fn mute_time_intervals_mute_the_route() {
    let h = Harness::new(
        r#"
route:
  receiver: team
  group_wait: 0s
  routes:
    - matchers: [team=web]
      mute_time_intervals: [always]
time_intervals:
  - name: always
    time_intervals: [{times: [{start_time: '00:00', end_time: '24:00'}]}]
receivers: [{name: team}]
"#,
    );
    h.send(0, vec![alert(&[("alertname", "A"), ("team", "web")], 0)]);
    assert_eq!(h.at(0).sent, 0);
    let st = h.n().alerts(&AlertFilter::default());
    assert_eq!(st[0].muted_by, vec!["always".to_string()]);
}

/// `active_time_intervals`: outside the interval the route holds its
/// notifications back (the alert shows as muted by it); once the interval
/// starts, the next group_interval tick sends them.
#[test]
fn active_time_intervals_send_only_inside_the_interval() {
    // T0 is 22:13:20 UTC; the route is active from 23:00, 46m40s later.
    let h = Harness::new(
        r#"
route:
  receiver: team
  group_wait: 0s
  group_interval: 5m
  routes:
    - matchers: [team=web]
      active_time_intervals: [late]
time_intervals:
  - name: late
    time_intervals: [{times: [{start_time: '23:00', end_time: '24:00'}]}]
receivers: [{name: team}]
"#,
    );
    h.send(0, vec![alert(&[("alertname", "A"), ("team", "web")], 0)]);
    assert_eq!(h.at(0).sent, 0, "outside the active interval");
    let st = h.n().alerts(&AlertFilter::default());
    assert_eq!(st[0].muted_by, vec!["late".to_string()]);
    assert_eq!(st[0].state, "suppressed");
    let sent = h.run(30 * S, 60 * M, 30 * S);
    assert_eq!(
        receivers_of(&sent),
        vec![(50 * M, "team")],
        "the first group_interval tick inside the interval (23:03:20)"
    );
    assert!(h.n().alerts(&AlertFilter::default())[0].muted_by.is_empty());
}

const ESCALATING: &str = r#"
route:
  receiver: slack
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
  routes:
    - matchers: [severity="critical"]
      escalation: paging
receivers: [{name: slack}, {name: devops}, {name: lead}, {name: cto}]
escalations:
  - name: paging
    levels:
      - {receivers: [devops], timeout: 15m}
      - {receivers: [lead], timeout: 30m}
      - {receivers: [cto], timeout: 1h}
"#;

fn crit(i: &str) -> Alert {
    alert(
        &[("alertname", "DbDown"), ("severity", "critical"), ("i", i)],
        0,
    )
}

fn receivers_of(sent: &[(i64, String, usize)]) -> Vec<(i64, &str)> {
    sent.iter().map(|(t, r, _)| (*t, r.as_str())).collect()
}

#[test]
fn escalation_levels_without_ack() {
    let h = Harness::new(ESCALATING);
    h.send(0, vec![crit("1")]);
    let sent = h.run(0, 3 * H, 30 * S);
    assert_eq!(
        receivers_of(&sent),
        vec![
            (30 * S, "slack"),
            (30 * S, "devops"),
            (15 * M + 30 * S, "lead"),
            (45 * M + 30 * S, "cto"),
        ]
    );
    let lvl: Vec<Option<usize>> = h.take().iter().map(|d| d.escalation_level).collect();
    assert_eq!(lvl, vec![None, Some(1), Some(2), Some(3)]);
    let hist = h.n().history(&HistoryQuery::default());
    assert!(hist
        .iter()
        .any(|e| matches!(&e.kind, HistoryKind::Escalated { level: 3, .. })));
}

#[test]
fn ack_stops_escalation_and_a_new_alert_restarts_it() {
    let h = Harness::new(ESCALATING);
    h.send(0, vec![crit("1")]);
    h.run(0, 10 * M, 30 * S);
    assert_eq!(h.take().len(), 2);
    let g = &h.n().groups(&AlertFilter::default())[0];
    assert_eq!(g.escalation.as_ref().unwrap().level, 1);
    // Ack through the link the notification carried.
    let path = h.n().ack_path(&g.key);
    let parts: Vec<&str> = path
        .trim_start_matches(ACK_PATH_PREFIX)
        .split('/')
        .collect();
    assert!(matches!(
        h.n().ack_with_token(
            parts[0],
            "00000000000000000000000000000000",
            "x".into(),
            String::new()
        ),
        Err(AckError::BadToken)
    ));
    let ack = h
        .n()
        .ack_with_token(parts[0], parts[1], "alice".into(), "looking".into())
        .unwrap();
    assert_eq!(ack.by, "alice");
    assert!(h.n().groups(&AlertFilter::default())[0].acked);
    let sent = h.run(10 * M + 30 * S, 2 * H, 30 * S);
    assert!(sent.is_empty(), "acked: no escalation, got {sent:?}");
    // A new alert joins: the ack is cleared and escalation restarts at L1
    // with the next flush.
    h.send(2 * H, vec![crit("2")]);
    assert!(!h.n().groups(&AlertFilter::default())[0].acked);
    let sent = h.run(2 * H, 3 * H, 30 * S);
    let flush = 2 * H + 30 * S; // the group's flush cadence: 30s + k*5m
    assert_eq!(
        receivers_of(&sent),
        vec![
            (flush, "slack"),
            (flush, "devops"),
            (flush + 15 * M, "lead"),
            (flush + 45 * M, "cto"),
        ]
    );
    let hist = h.n().history(&HistoryQuery::default());
    assert!(hist
        .iter()
        .any(|e| matches!(&e.kind, HistoryKind::Acked { by, .. } if by == "alice")));
    assert!(hist.iter().any(
        |e| matches!(&e.kind, HistoryKind::AckCleared { reason, .. } if reason == "group changed")
    ));
}

#[test]
fn alert_ack_with_expiry_then_resolution_stops() {
    let h = Harness::new(ESCALATING);
    h.send(0, vec![crit("1")]);
    h.run(0, 5 * M, 30 * S);
    h.take();
    let fp = h.n().alerts(&AlertFilter::default())[0].fingerprint;
    h.clock.set(T0 + 5 * M);
    h.n()
        .ack(AckRequest {
            target: AckTarget::Alert(fp),
            by: "bob".into(),
            comment: "for 20m".into(),
            expires_at: Some(T0 + 25 * M),
        })
        .unwrap();
    // L2 would be due at 15m30s; the ack holds until 25m.
    let sent = h.run(5 * M + 30 * S, 24 * M + 30 * S, 30 * S);
    assert!(sent.is_empty());
    let sent = h.run(25 * M, 25 * M, 30 * S);
    assert_eq!(
        receivers_of(&sent),
        vec![(25 * M, "lead")],
        "resumes on expiry"
    );
    // Resolution stops it: no L3.
    h.send(
        26 * M,
        vec![Alert {
            ends_at: T0 + 26 * M,
            ..crit("1")
        }],
    );
    let sent = h.run(26 * M, 3 * H, 30 * S);
    assert!(sent.iter().all(|(_, r, _)| r != "cto"), "{sent:?}");
    assert!(h.n().escalations().is_empty());
}

/// A restart in the middle of an escalation resumes at the right level and
/// time, without resending anything early.
#[test]
fn restart_mid_escalation_resumes() {
    let mut h = Harness::new(ESCALATING);
    h.send(0, vec![crit("1")]);
    let sent = h.run(0, 20 * M, 30 * S);
    assert_eq!(sent.len(), 3, "slack, devops, lead");
    h.take();
    // Crash (drop without a clean shutdown) and restart 5 minutes later.
    h.start();
    let esc = h.n().escalations();
    assert_eq!(esc.len(), 1);
    assert_eq!(esc[0].1.level, 2);
    assert_eq!(esc[0].1.since, T0 + 15 * M + 30 * S);
    // Prometheus re-sends the alert, as it does every minute.
    h.send(25 * M, vec![crit("1")]);
    let sent = h.run(25 * M, 50 * M, 30 * S);
    assert_eq!(
        receivers_of(&sent),
        vec![(45 * M + 30 * S, "cto")],
        "nothing resent early, L3 on time"
    );
    // A restart while L3 was already due fires it at once.
    let mut h = Harness::new(ESCALATING);
    h.send(0, vec![crit("1")]);
    h.run(0, 16 * M, 30 * S);
    h.take();
    h.start();
    let sent = h.run(2 * H, 2 * H, 30 * S);
    assert_eq!(receivers_of(&sent), vec![(2 * H, "cto")]);
}

/// Silences, acks (with their expiry) and the history live in the state
/// file: after a restart the silence still mutes until it ends, the ack
/// still holds the escalation until it expires, and the history still
/// lists what happened before.
#[test]
fn restart_keeps_silences_acks_and_history() {
    let mut h = Harness::new(ESCALATING);
    let noisy = [("alertname", "Noisy"), ("severity", "warning")];
    h.send(0, vec![crit("1"), alert(&noisy, 0)]);
    let sil = h
        .n()
        .add_silence(SilenceRequest {
            id: None,
            matchers: parse_matchers("alertname=Noisy").unwrap(),
            starts_at: T0,
            ends_at: T0 + 2 * H,
            created_by: "ops".into(),
            comment: "known".into(),
        })
        .unwrap();
    let sent = h.run(0, 5 * M, 30 * S);
    assert_eq!(
        receivers_of(&sent),
        vec![(30 * S, "slack"), (30 * S, "devops")],
        "Noisy is silenced"
    );
    h.take();
    let key = h.n().groups(&AlertFilter::default())[0].key.clone();
    assert!(key.contains("DbDown"), "{key}");
    let ack = h
        .n()
        .ack(AckRequest {
            target: AckTarget::Group(key.clone()),
            by: "bob".into(),
            comment: "for 20m".into(),
            expires_at: Some(T0 + 25 * M),
        })
        .unwrap();
    let history = h.n().history(&HistoryQuery::default());
    for want in ["fired", "notified", "silence", "acked"] {
        let kinds: Vec<String> = history
            .iter()
            .map(|e| serde_json::to_value(&e.kind).unwrap()["type"].to_string())
            .collect();
        assert!(
            kinds.contains(&format!("\"{want}\"")),
            "{want} in {kinds:?}"
        );
    }

    // Crash (drop without a clean shutdown) and restart.
    h.start();
    assert_eq!(h.n().silences(), vec![sil.clone()]);
    assert_eq!(h.n().acks(), vec![ack.clone()]);
    assert_eq!(h.n().history(&HistoryQuery::default()), history);

    // Prometheus re-sends its alerts. The silence still mutes Noisy; the
    // ack still holds L2 (due at 15m30s) until it expires at 25m.
    h.send(6 * M, vec![crit("1"), alert(&noisy, 0)]);
    let st = h.n().alerts(&AlertFilter::default());
    let n = st
        .iter()
        .find(|s| s.alert.labels.get("alertname") == Some("Noisy"))
        .unwrap();
    assert_eq!(n.silenced_by, vec![sil.id.clone()]);
    let sent = h.run(6 * M, 24 * M + 30 * S, 30 * S);
    assert!(sent.is_empty(), "{sent:?}");
    assert!(h.n().groups(&AlertFilter::default())[0].acked);
    // The ack expires: L2 at once, L3 after its timeout. The silence ends
    // at 2h and Noisy goes out at its group's next flush: Noisy's 5m30s
    // flush fell in the restart gap and ran at 6m, so its ticks are now
    // 1m + k*5m.
    let sent = h.run(25 * M, 2 * H + 5 * M, 30 * S);
    assert_eq!(
        receivers_of(&sent),
        vec![(25 * M, "lead"), (55 * M, "cto"), (2 * H + M, "slack")]
    );
    assert_eq!(sent[2].2, 1);
    assert!(h.n().acks().is_empty());
    let after = h.n().history(&HistoryQuery::default());
    assert_eq!(after[..history.len()], history[..], "old events kept");
    assert!(after[history.len()..].iter().any(|e| matches!(
        &e.kind,
        HistoryKind::Escalated { level: 2, group_key, .. } if *group_key == key
    )));
}

#[test]
fn failing_receiver_is_retried_and_counted() {
    let h = Harness::new(BASIC);
    h.rec.fail.store(2, Ordering::SeqCst);
    h.send(0, vec![alert(&[("alertname", "A")], 0)]);
    let r = h.at(30 * S);
    assert_eq!((r.sent, r.failed), (1, 0));
    assert_eq!(h.rec.attempts.load(Ordering::SeqCst), 3);
    assert_eq!(h.clock.slept_ms(), 1000 + 2000, "exponential backoff");
    let mut m = String::new();
    h.n().write_metrics(&mut m);
    assert!(
        m.contains(r#"vigil_notifications_total{integration="fake",receiver="team"} 3"#),
        "{m}"
    );
    assert!(m.contains(r#"vigil_notifications_failed_total{integration="fake",receiver="team"} 2"#));
    assert!(m.contains(
        r#"vigil_notification_latency_seconds_count{integration="fake",receiver="team"} 3"#
    ));
    // All attempts fail: counted, recorded, and retried at the next flush
    // because the notification log was not written.
    h.take();
    h.rec.fail.store(100, Ordering::SeqCst);
    h.send(M, vec![alert(&[("alertname", "A"), ("i", "2")], M)]);
    let r = h.at(5 * M + 30 * S);
    assert_eq!((r.sent, r.failed), (0, 1));
    let hist = h.n().history(&HistoryQuery::default());
    assert!(hist
        .iter()
        .any(|e| matches!(e.kind, HistoryKind::NotifyFailed { .. })));
    h.rec.fail.store(0, Ordering::SeqCst);
    assert_eq!(h.at(10 * M + 30 * S).sent, 1);
}

#[test]
fn restart_does_not_resend_and_reload_keeps_state() {
    let mut h = Harness::new(BASIC);
    h.send(0, vec![alert(&[("alertname", "A")], 0)]);
    assert_eq!(h.at(30 * S).sent, 1);
    h.start();
    let sent = h.run(M, 2 * H, 30 * S);
    assert!(sent.is_empty(), "{sent:?}");
    // Reload with a different repeat interval: state kept, no resend.
    h.n()
        .apply_config(config(
            &BASIC.replace("repeat_interval: 4h", "repeat_interval: 3h"),
        ))
        .unwrap();
    let sent = h.run(2 * H + 30 * S, 3 * H, 5 * M);
    assert!(sent.is_empty());
    let sent = h.run(3 * H + 5 * M + 30 * S, 3 * H + 10 * M + 30 * S, 5 * M);
    assert_eq!(sent.len(), 1, "repeat under the new interval");
    // A bad config is refused and the old one stays.
    assert!(h
        .n()
        .apply_config(config("route: {receiver: nope}\nreceivers: [{name: a}]"))
        .is_err());
    assert_eq!(h.n().receivers(), vec!["team".to_string()]);
}

#[test]
fn torn_state_file_tail_is_cut_off() {
    let mut h = Harness::new(BASIC);
    h.send(0, vec![alert(&[("alertname", "A")], 0)]);
    h.at(30 * S);
    let path = h.dir.path().join("notify.state");
    let mut b = std::fs::read(&path).unwrap();
    b.extend_from_slice(&[200, 0, 0, 0, 1, 2, 3, 4, b'{']);
    std::fs::write(&path, &b).unwrap();
    h.start();
    assert!(h.n().open_report().dropped_bytes > 0);
    assert_eq!(h.n().alerts(&AlertFilter::default()).len(), 1);
    assert!(h.run(M, 30 * M, M).is_empty(), "nflog survived");
}

#[test]
fn receive_validates_and_defaults() {
    let h = Harness::new(BASIC);
    let mut bad = alert(&[("alertname", "A")], 10 * M);
    bad.ends_at = T0;
    let empty = Alert {
        labels: Labels::empty(),
        ..alert(&[], 0)
    };
    let mut no_times = alert(&[("alertname", "B")], 0);
    no_times.starts_at = 0;
    no_times.ends_at = 0;
    h.clock.set(T0 + M);
    let err = h.n().receive(vec![bad, empty, no_times]).unwrap_err();
    assert_eq!(err.refused.len(), 2);
    let st = h.n().alerts(&AlertFilter::default());
    assert_eq!(st.len(), 1);
    assert_eq!(st[0].alert.starts_at, T0 + M);
    assert_eq!(st[0].alert.ends_at, T0 + M + 5 * M, "resolve_timeout");
    assert_eq!(st[0].alert.updated_at, T0 + M);
    // After resolve_timeout without an update the alert resolves.
    h.clock.set(T0 + 7 * M);
    assert!(h.n().alerts(&AlertFilter::default()).is_empty());
    let hist = h.n().history(&HistoryQuery {
        fingerprint: Some(st[0].fingerprint),
        ..HistoryQuery::default()
    });
    assert!(matches!(hist[0].kind, HistoryKind::Fired { .. }));
}

/// Extreme and odd API input is refused or handled, never a panic.
#[test]
fn extreme_input_does_not_panic() {
    let h = Harness::new(ESCALATING);
    let times = [i64::MIN, -1, 0, 1, T0, i64::MAX - 1, i64::MAX];
    let mut alerts = Vec::new();
    for (i, s) in times.iter().enumerate() {
        for e in times {
            alerts.push(Alert {
                labels: Labels::from_pairs([
                    ("alertname", format!("X{i}")),
                    ("severity", "critical".to_string()),
                    ("\u{1F600}", "\"\n\\".to_string()),
                ]),
                annotations: BTreeMap::from([("a".to_string(), "\u{0}".to_string())]),
                starts_at: *s,
                ends_at: e,
                generator_url: String::new(),
                updated_at: i64::MIN,
            });
        }
    }
    let _ = h.n().receive(alerts);
    for t in [0, 30 * S, H, 1000 * H] {
        h.at(t);
    }
    for t in times {
        h.clock.set(t);
        let _ = h.n().alerts(&AlertFilter::default());
        let _ = h.n().groups(&AlertFilter::default());
        let _ = h.rt.block_on(h.n().tick(t));
        let _ = h.n().next_due();
        let _ = h.n().add_silence(SilenceRequest {
            id: None,
            matchers: parse_matchers("a=b").unwrap(),
            starts_at: t,
            ends_at: i64::MAX,
            created_by: String::new(),
            comment: String::new(),
        });
        let _ = h.n().ack(AckRequest {
            target: AckTarget::Alert(0),
            by: "x".into(),
            comment: String::new(),
            expires_at: Some(t),
        });
        let _ = h.n().ack_with_token("", "", String::new(), String::new());
        let _ = h.n().history(&HistoryQuery {
            limit: usize::MAX,
            ..HistoryQuery::default()
        });
    }
    let mut m = String::new();
    h.n().write_metrics(&mut m);
}

/// `run` ticks on the clock and stops on shutdown.
#[test]
fn run_sends_due_notifications_until_shutdown() {
    let h = Harness::new("route: {receiver: team, group_wait: 0s}\nreceivers: [{name: team}]");
    let dir = tempfile::tempdir().unwrap();
    let n = Arc::new(
        Notifier::with_options(
            config(&h.yaml),
            dir.path(),
            h.clock.clone(),
            h.opts.clone(),
            h.factory(),
        )
        .unwrap(),
    );
    h.clock.set(T0);
    n.receive(vec![alert(&[("alertname", "A")], 0)]).unwrap();
    let rec = h.rec.clone();
    let shutdown = std::future::poll_fn(move |_| {
        if rec.sent.lock().is_empty() {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    });
    h.rt.block_on(n.clone().run(shutdown));
    assert_eq!(h.take().len(), 1);
}
