//! Rule groups evaluated with a manual clock over the in-memory store and
//! the real PromQL engine.

use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;
use vigil_model::{Appendable, Appender, Labels, MemStorage, Value};
use vigil_promql::{Engine, EngineOptions};
use vigil_rules::group::GroupEnv;
use vigil_rules::{
    parse_rule_file, AlertState, EngineQuery, Group, OutgoingAlert, QueryFunc, Rule,
};

/// The ready-made query function over the in-memory store.
type Q = EngineQuery<Arc<MemStorage>>;

#[derive(Default)]
struct Sink(Mutex<Vec<Vec<OutgoingAlert>>>);

impl vigil_rules::AlertSink for Sink {
    fn send(&self, alerts: Vec<OutgoingAlert>) {
        self.0.lock().push(alerts);
    }
}

struct World {
    store: Arc<MemStorage>,
    q: Q,
    sink: Sink,
    ext: Labels,
    /// What the group adds to stored series: the external labels, as
    /// vigil's rule manager does by default.
    stored: Labels,
}

impl World {
    fn new() -> World {
        let store = Arc::new(MemStorage::new());
        World {
            q: EngineQuery::new(
                Arc::new(Engine::new(EngineOptions::default())),
                store.clone(),
            ),
            store,
            sink: Sink::default(),
            ext: Labels::from_pairs([("site", "eu")]),
            stored: Labels::from_pairs([("site", "eu")]),
        }
    }

    fn put(&self, labels: &[(&str, &str)], t: i64, v: f64) {
        let mut app = self.store.appender();
        app.append(
            None,
            &Labels::from_pairs(labels.iter().copied()),
            t,
            Value::Float(v),
        )
        .unwrap();
        app.commit().unwrap();
    }

    fn eval(&self, g: &mut Group, ts: i64) -> Vec<OutgoingAlert> {
        let env = GroupEnv {
            query: &self.q,
            storage: &*self.store,
            sink: &self.sink,
            external_labels: &self.ext,
            stored_labels: &self.stored,
            external_url: "http://vigil:9090",
            resend_delay: 60_000,
            outage_tolerance: 3_600_000,
        };
        g.eval(ts, &env)
    }

    fn instant(&self, q: &str, t: i64) -> Vec<(String, f64)> {
        let e = vigil_promql::parse(q).unwrap();
        let mut v: Vec<(String, f64)> = self
            .q
            .query(&e, t)
            .unwrap()
            .into_iter()
            .map(|s| (s.labels.to_string(), s.v))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

fn group(yaml: &str) -> Group {
    let f = parse_rule_file(yaml, Path::new("rules.yml")).unwrap();
    Group::new(&f.groups[0], Path::new("rules.yml"), 60_000).unwrap()
}

const MIN: i64 = 60_000;

#[test]
fn recording_rules_feed_later_rules_and_go_stale() {
    let w = World::new();
    let mut g = group(
        "groups:\n- name: g\n  labels: {team: core}\n  rules:\n  \
         - record: job:up:sum\n    expr: sum by (job) (up)\n    labels: {team: sre}\n  \
         - record: job:up:double\n    expr: job:up:sum * 2\n",
    );
    w.put(&[("__name__", "up"), ("job", "a"), ("i", "1")], 0, 1.0);
    w.put(&[("__name__", "up"), ("job", "a"), ("i", "2")], 0, 1.0);
    w.put(&[("__name__", "up"), ("job", "b"), ("i", "1")], 0, 1.0);
    w.eval(&mut g, 0);
    assert_eq!(
        w.instant("job:up:sum", 0),
        [
            (
                "{__name__=\"job:up:sum\", job=\"a\", site=\"eu\", team=\"sre\"}".to_string(),
                2.0
            ),
            (
                "{__name__=\"job:up:sum\", job=\"b\", site=\"eu\", team=\"sre\"}".to_string(),
                1.0
            )
        ]
    );
    // Stored with the external labels (issue #7), so a later rule reads
    // them too.
    // The second rule saw the first one's result of the same evaluation,
    // and the group's label overwrote the one it read.
    assert_eq!(
        w.instant("job:up:double", 0),
        [
            (
                "{__name__=\"job:up:double\", job=\"a\", site=\"eu\", team=\"core\"}".to_string(),
                4.0
            ),
            (
                "{__name__=\"job:up:double\", job=\"b\", site=\"eu\", team=\"core\"}".to_string(),
                2.0
            )
        ]
    );
    // Job b stops: its recorded series get a stale marker and vanish at
    // once instead of lingering for the lookback delta.
    w.put(&[("__name__", "up"), ("job", "a"), ("i", "1")], MIN, 1.0);
    w.put(
        &[("__name__", "up"), ("job", "b"), ("i", "1")],
        MIN,
        f64::from_bits(vigil_model::STALE_NAN_BITS),
    );
    w.eval(&mut g, MIN);
    let got = w.instant("job:up:sum", MIN);
    // (up{i="2"} is still within the lookback delta.)
    assert_eq!(
        got,
        [(
            "{__name__=\"job:up:sum\", job=\"a\", site=\"eu\", team=\"sre\"}".to_string(),
            2.0
        )]
    );
    assert!(matches!(g.rules[0], Rule::Recording(_)));
    assert_eq!(g.rules[0].status().health, vigil_rules::Health::Ok);
    assert_eq!(g.iterations, 2);
}

#[test]
fn alerts_go_pending_fire_resolve_and_are_sent() {
    let w = World::new();
    let mut g = group(
        "groups:\n- name: g\n  rules:\n  - alert: Down\n    expr: up == 0\n    for: 2m\n    \
         labels: {severity: page}\n    annotations:\n      \
         summary: '{{ $labels.instance }} is down ({{ $value }}) in {{ $externalLabels.site }}'\n",
    );
    let down = |t: i64| w.put(&[("__name__", "up"), ("instance", "h1")], t, 0.0);
    down(0);
    assert!(w.eval(&mut g, 0).is_empty(), "pending alerts are not sent");
    assert_eq!(
        w.instant("ALERTS", 0),
        [(
            "{__name__=\"ALERTS\", alertname=\"Down\", alertstate=\"pending\", instance=\"h1\", severity=\"page\", site=\"eu\"}".to_string(),
            1.0
        )]
    );
    assert_eq!(w.instant("ALERTS_FOR_STATE", 0)[0].1, 0.0);
    down(MIN);
    assert!(w.eval(&mut g, MIN).is_empty());
    down(2 * MIN);
    let sent = w.eval(&mut g, 2 * MIN);
    assert_eq!(sent.len(), 1, "fires after `for`");
    let a = &sent[0];
    assert_eq!(a.labels.get("site"), Some("eu"), "external labels added");
    assert_eq!(a.labels.get("alertname"), Some("Down"));
    assert_eq!(a.annotations["summary"], "h1 is down (0) in eu");
    assert_eq!(a.starts_at, 2 * MIN);
    assert_eq!(a.ends_at, 2 * MIN + 4 * MIN, "valid for four resend delays");
    assert!(a
        .generator_url
        .starts_with("http://vigil:9090/graph?g0.expr=up+%3D%3D+0"));
    assert_eq!(
        w.instant("{__name__=\"ALERTS\", alertstate=\"firing\"}", 2 * MIN)
            .len(),
        1
    );
    // Re-sent once a minute while firing.
    down(2 * MIN + 30_000);
    assert!(w.eval(&mut g, 2 * MIN + 30_000).is_empty());
    down(3 * MIN + 30_000);
    assert_eq!(w.eval(&mut g, 3 * MIN + 30_000).len(), 1);
    // Up again: resolved, sent at once with endsAt = resolution time.
    w.put(&[("__name__", "up"), ("instance", "h1")], 4 * MIN, 1.0);
    let sent = w.eval(&mut g, 4 * MIN);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].ends_at, 4 * MIN);
    assert!(sent[0].is_resolved(4 * MIN));
    // ALERTS goes stale when the alert resolves.
    assert!(w.instant("ALERTS", 4 * MIN).is_empty());
    let Rule::Alerting(r) = &g.rules[0] else {
        panic!()
    };
    assert_eq!(
        r.active.values().next().unwrap().state,
        AlertState::Inactive
    );
    assert_eq!(w.sink.0.lock().len(), 3);
}

#[test]
fn persisted_state_resumes_firing_without_a_new_notification() {
    let w = World::new();
    let yaml = "groups:\n- name: g\n  rules:\n  - alert: Down\n    expr: up == 0\n    for: 5m\n    keep_firing_for: 10m\n";
    let mut g = group(yaml);
    for m in 0..=5 {
        w.put(&[("__name__", "up"), ("instance", "h1")], m * MIN, 0.0);
        w.eval(&mut g, m * MIN);
    }
    assert_eq!(w.sink.0.lock().len(), 1, "fired once, at 5m");
    let saved = g.saved_state(5 * MIN);
    let json = serde_json::to_string(&saved).unwrap();

    // "Restart": a fresh group from the same file, state read back.
    let mut g2 = group(yaml);
    let saved: vigil_rules::group::SavedGroup = serde_json::from_str(&json).unwrap();
    assert_eq!(g2.restore(&saved, 5 * MIN + 20_000, 3_600_000), 1);
    w.put(
        &[("__name__", "up"), ("instance", "h1")],
        5 * MIN + 30_000,
        0.0,
    );
    let sent = w.eval(&mut g2, 5 * MIN + 30_000);
    assert!(
        sent.is_empty(),
        "no second firing notification after the restart: {sent:?}"
    );
    let Rule::Alerting(r) = &g2.rules[0] else {
        panic!()
    };
    let a = r.active.values().next().unwrap();
    assert_eq!(a.state, AlertState::Firing, "still firing");
    assert_eq!(a.active_at, 0);
    assert_eq!(a.fired_at, Some(5 * MIN));
    // The next resend, a resend delay after the last send before the
    // restart, keeps the original startsAt.
    w.put(
        &[("__name__", "up"), ("instance", "h1")],
        6 * MIN + 30_000,
        0.0,
    );
    let sent = w.eval(&mut g2, 6 * MIN + 30_000);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].starts_at, 5 * MIN);

    // keep_firing_for state survives too: the condition clears, then a
    // restart, and the alert still keeps firing until 10m after it cleared.
    w.put(&[("__name__", "up"), ("instance", "h1")], 9 * MIN, 1.0);
    w.eval(&mut g2, 9 * MIN);
    let json = serde_json::to_string(&g2.saved_state(9 * MIN)).unwrap();
    let mut g3 = group(yaml);
    g3.restore(&serde_json::from_str(&json).unwrap(), 9 * MIN, 3_600_000);
    w.put(&[("__name__", "up"), ("instance", "h1")], 15 * MIN, 1.0);
    w.eval(&mut g3, 15 * MIN);
    let Rule::Alerting(r) = &g3.rules[0] else {
        panic!()
    };
    let a = r.active.values().next().unwrap();
    assert_eq!(a.state, AlertState::Firing);
    assert_eq!(a.keep_firing_since, Some(9 * MIN));
    w.eval(&mut g3, 19 * MIN);
    let Rule::Alerting(r) = &g3.rules[0] else {
        panic!()
    };
    assert_eq!(
        r.active.values().next().unwrap().state,
        AlertState::Inactive
    );
}

#[test]
fn for_progress_is_restored_from_alerts_for_state() {
    let w = World::new();
    let yaml = "groups:\n- name: g\n  rules:\n  - alert: Down\n    expr: up == 0\n    for: 10m\n";
    let mut g = group(yaml);
    for m in 0..=4 {
        w.put(&[("__name__", "up"), ("instance", "h1")], m * MIN, 0.0);
        w.eval(&mut g, m * MIN);
    }
    // Restart without persisted state: the pending alert continues from
    // the activation time ALERTS_FOR_STATE recorded (0), not from now.
    let mut g2 = group(yaml);
    w.put(&[("__name__", "up"), ("instance", "h1")], 6 * MIN, 0.0);
    w.eval(&mut g2, 6 * MIN);
    g2.restore_from_series(&w.q, 6 * MIN, 3_600_000, &w.ext);
    let Rule::Alerting(r) = &g2.rules[0] else {
        panic!()
    };
    assert_eq!(r.active.values().next().unwrap().active_at, 0);
    w.put(&[("__name__", "up"), ("instance", "h1")], 10 * MIN, 0.0);
    assert_eq!(
        w.eval(&mut g2, 10 * MIN).len(),
        1,
        "fires 10m after the first activation"
    );
}

#[test]
fn groups_are_aligned_by_their_hash() {
    let g = group("groups:\n- name: g\n  interval: 30s\n  rules: []\n");
    let off = g.eval_timestamp(0).rem_euclid(30_000);
    for now in [1_700_000_000_000i64, 1_700_000_012_345, 1_700_000_029_999] {
        let ts = g.eval_timestamp(now);
        assert!(ts <= now && now - ts < 30_000);
        assert_eq!(ts.rem_euclid(30_000), off);
    }
}

#[test]
fn errors_are_recorded_per_rule() {
    let w = World::new();
    let mut g = group(
        "groups:\n- name: g\n  limit: 1\n  rules:\n  - record: r\n    expr: up\n  - record: ok\n    expr: vector(1)\n",
    );
    w.put(&[("__name__", "up"), ("i", "1")], 0, 1.0);
    w.put(&[("__name__", "up"), ("i", "2")], 0, 1.0);
    w.eval(&mut g, 0);
    let st = g.rules[0].status();
    assert_eq!(st.health, vigil_rules::Health::Err);
    assert_eq!(
        st.last_error.as_deref(),
        Some("exceeded limit of 1 with 2 series")
    );
    assert_eq!(g.rules[1].status().health, vigil_rules::Health::Ok);
}

#[test]
fn without_stored_external_labels_series_are_stored_as_prometheus_stores_them() {
    let mut w = World::new();
    w.stored = Labels::empty();
    let mut g = group(
        "groups:\n- name: g\n  rules:\n  - record: job:up:sum\n    expr: sum by (job) (up)\n  \
         - alert: Down\n    expr: up == 0\n",
    );
    w.put(&[("__name__", "up"), ("job", "a")], 0, 0.0);
    let sent = w.eval(&mut g, 0);
    assert_eq!(
        w.instant("job:up:sum", 0),
        [("{__name__=\"job:up:sum\", job=\"a\"}".to_string(), 0.0)]
    );
    assert_eq!(
        w.instant("ALERTS", 0),
        [(
            "{__name__=\"ALERTS\", alertname=\"Down\", alertstate=\"firing\", job=\"a\"}"
                .to_string(),
            1.0
        )]
    );
    // The alert still leaves with them.
    assert_eq!(sent[0].labels.get("site"), Some("eu"));
}

#[test]
fn for_progress_is_restored_when_series_carry_external_labels() {
    // The alert's own labels lack `site`; its ALERTS_FOR_STATE series has
    // it. And one alert already has a `site` of its own, which wins.
    let w = World::new();
    let yaml = "groups:\n- name: g\n  rules:\n  - alert: Down\n    expr: up == 0\n    for: 10m\n";
    let mut g = group(yaml);
    for m in 0..=4 {
        w.put(&[("__name__", "up"), ("instance", "h1")], m * MIN, 0.0);
        w.put(
            &[("__name__", "up"), ("instance", "h2"), ("site", "us")],
            m * MIN,
            0.0,
        );
        w.eval(&mut g, m * MIN);
    }
    assert_eq!(
        w.instant("ALERTS_FOR_STATE", 4 * MIN),
        [
            (
                "{__name__=\"ALERTS_FOR_STATE\", alertname=\"Down\", instance=\"h1\", site=\"eu\"}"
                    .to_string(),
                0.0
            ),
            (
                "{__name__=\"ALERTS_FOR_STATE\", alertname=\"Down\", instance=\"h2\", site=\"us\"}"
                    .to_string(),
                0.0
            )
        ]
    );
    let mut g2 = group(yaml);
    for i in ["h1", "h2"] {
        let mut l = vec![("__name__", "up"), ("instance", i)];
        if i == "h2" {
            l.push(("site", "us"));
        }
        w.put(&l, 6 * MIN, 0.0);
    }
    w.eval(&mut g2, 6 * MIN);
    g2.restore_from_series(&w.q, 6 * MIN, 3_600_000, &w.stored);
    let Rule::Alerting(r) = &g2.rules[0] else {
        panic!()
    };
    assert_eq!(r.active.len(), 2);
    assert!(r.active.values().all(|a| a.active_at == 0));
}
