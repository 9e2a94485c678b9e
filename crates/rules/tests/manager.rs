//! `RuleManager` on a tokio runtime the test owns, with wall-clock
//! evaluations over the in-memory store and the real PromQL engine: groups
//! built in code, parsed from YAML and loaded from files, alerts through
//! sinks the caller provides.
//!
//! Intervals are 50 ms and every wait polls with a deadline, so the tests
//! take well under a second unless the machine is stalled.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use vigil_model::{labels, Appendable, Appender, Labels, MemStorage, Value};
use vigil_promql::{Engine, EngineOptions};
use vigil_rules::{
    parse_groups, AlertBuilder, EngineQuery, Group, GroupBuilder, ManagerOptions, OutgoingAlert,
    QueryFunc, RuleManager,
};

/// How long anything may take before the test gives up.
const DEADLINE: Duration = Duration::from_secs(10);
const EVERY: Duration = Duration::from_millis(50);

fn query(store: &Arc<MemStorage>) -> EngineQuery<Arc<MemStorage>> {
    EngineQuery::new(
        Arc::new(Engine::new(EngineOptions::default())),
        store.clone(),
    )
}

fn manager(
    store: &Arc<MemStorage>,
    sink: Arc<dyn vigil_rules::AlertSink>,
) -> RuleManager<MemStorage> {
    RuleManager::new(
        store.clone(),
        Arc::new(query(store)),
        sink,
        ManagerOptions {
            external_labels: Labels::from_pairs([("site", "eu")]),
            ..ManagerOptions::default()
        },
    )
}

/// Two queues, one of them full, sampled just now.
fn fill(store: &MemStorage) {
    let now = vigil_model::time::now_ms();
    let mut app = store.appender();
    for (queue, len) in [("a", 150.0), ("b", 20.0)] {
        app.append(
            None,
            &labels!("__name__" => "queue_length", "queue" => queue),
            now,
            Value::Float(len),
        )
        .unwrap();
    }
    app.commit().unwrap();
}

/// `expr` at the current wall-clock time, as `(labels, value)` pairs.
fn instant(store: &Arc<MemStorage>, expr: &str) -> Vec<(String, f64)> {
    let e = vigil_promql::parse(expr).unwrap();
    query(store)
        .query(&e, vigil_model::time::now_ms())
        .unwrap()
        .into_iter()
        .map(|s| (s.labels.to_string(), s.v))
        .collect()
}

/// Polls `check` every 10 ms until it returns something, or panics with
/// `what` at the deadline.
async fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < end, "{what}: nothing within {DEADLINE:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn iterations(rules: &RuleManager<MemStorage>, name: &str) -> u64 {
    rules
        .groups()
        .iter()
        .find(|g| g.name == name)
        .unwrap_or_else(|| panic!("no group {name}"))
        .iterations
}

fn alert_group() -> Group {
    GroupBuilder::new("queues")
        .interval(EVERY)
        .rule(
            AlertBuilder::new("QueueFull", "queue_length > 100")
                .label("severity", "page")
                .annotation("summary", "queue {{ $labels.queue }} holds {{ $value }}"),
        )
        .build()
        .unwrap()
}

fn record_group() -> Group {
    parse_groups(
        "groups:\n- name: totals\n  interval: 50ms\n  rules:\n  \
         - record: queue_length:sum\n    expr: sum(queue_length)\n",
        Path::new("app.rules.yml"),
        60_000,
    )
    .unwrap()
    .remove(0)
}

#[tokio::test]
async fn groups_from_code_run_on_the_callers_runtime_and_alert_through_its_channel() {
    let store = Arc::new(MemStorage::new());
    fill(&store);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<OutgoingAlert>>();
    let rules = manager(&store, Arc::new(tx));
    assert!(rules.groups().is_empty());
    rules
        .set_groups(vec![alert_group(), record_group()])
        .await
        .unwrap();
    let names: Vec<String> = rules.groups().into_iter().map(|g| g.name).collect();
    assert_eq!(names, ["queues", "totals"]);

    // The firing alert arrives through the caller's channel, labelled and
    // templated as a rule file's would be.
    let sent = tokio::time::timeout(DEADLINE, rx.recv())
        .await
        .expect("no alert from the manager")
        .expect("the manager dropped the sink");
    assert_eq!(sent.len(), 1, "{sent:?}");
    let a = &sent[0];
    assert_eq!(a.labels.get("alertname"), Some("QueueFull"));
    assert_eq!(a.labels.get("queue"), Some("a"));
    assert_eq!(a.labels.get("severity"), Some("page"));
    assert_eq!(a.labels.get("site"), Some("eu"), "external labels added");
    assert_eq!(a.annotations["summary"], "queue a holds 150");

    // The recording rule's output is in the storage, with the external
    // labels (stored by default).
    let recorded = wait_for("queue_length:sum in storage", || {
        Some(instant(&store, "queue_length:sum")).filter(|v| !v.is_empty())
    })
    .await;
    assert_eq!(
        recorded,
        [(
            "{__name__=\"queue_length:sum\", site=\"eu\"}".to_string(),
            170.0
        )]
    );

    // The groups keep being evaluated.
    let before = iterations(&rules, "totals");
    wait_for("a later evaluation", || {
        (iterations(&rules, "totals") > before).then_some(())
    })
    .await;

    // A reload with the same alert group and without the recording one:
    // the unchanged group keeps running with its state, the removed one
    // stops and its series go stale at once.
    let kept = iterations(&rules, "queues");
    rules.set_groups(vec![alert_group()]).await.unwrap();
    let groups = rules.groups();
    assert_eq!(groups.len(), 1);
    assert!(groups[0].iterations >= kept, "the group was restarted");
    assert!(instant(&store, "queue_length:sum").is_empty());
    // A restarted group would have lost its firing alert and sent it
    // again at its next evaluation; the kept one re-sends only after the
    // resend delay (a minute).
    let after = iterations(&rules, "queues");
    wait_for("an evaluation after the reload", || {
        (iterations(&rules, "queues") > after).then_some(())
    })
    .await;
    assert!(rx.try_recv().is_err(), "the alert was sent again");

    // Stopping ends the evaluations.
    rules.stop().await;
    let stopped = iterations(&rules, "queues");
    tokio::time::sleep(4 * EVERY).await;
    assert_eq!(iterations(&rules, "queues"), stopped);
}

#[tokio::test]
async fn files_and_groups_from_code_share_one_path_and_alerts_reach_a_callback() {
    let store = Arc::new(MemStorage::new());
    fill(&store);
    let got: Arc<Mutex<Vec<OutgoingAlert>>> = Arc::default();
    let sink = {
        let got = got.clone();
        move |alerts: Vec<OutgoingAlert>| got.lock().extend(alerts)
    };
    let rules = manager(&store, Arc::new(sink));

    // A rule file, loaded by `update`.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("queues.yml");
    let yaml = "groups:\n- name: queues\n  interval: 50ms\n  rules:\n  \
                - alert: QueueFull\n    expr: queue_length > 100\n";
    std::fs::write(&file, yaml).unwrap();
    rules
        .update(
            std::slice::from_ref(&file),
            60_000,
            Labels::from_pairs([("site", "us")]),
        )
        .await
        .unwrap();
    let alert = wait_for("an alert through the callback", || {
        got.lock().first().cloned()
    })
    .await;
    assert_eq!(alert.labels.get("alertname"), Some("QueueFull"));
    assert_eq!(
        alert.labels.get("site"),
        Some("us"),
        "update sets the external labels"
    );

    // The same group parsed from the same text and source is the same
    // group to `set_groups`: it keeps running, with its state, and the
    // external labels `update` set stay.
    let running = iterations(&rules, "queues");
    let same = parse_groups(yaml, &file, 60_000).unwrap();
    rules.set_groups(same).await.unwrap();
    assert!(iterations(&rules, "queues") >= running);
    let groups = rules.groups();
    let vigil_rules::Rule::Alerting(r) = &groups[0].rules[0] else {
        panic!("not an alerting rule")
    };
    assert_eq!(r.active.len(), 1, "the firing alert was kept");
    let after = iterations(&rules, "queues");
    wait_for("an evaluation after set_groups", || {
        (iterations(&rules, "queues") > after).then_some(())
    })
    .await;
    assert_eq!(got.lock().len(), 1, "the alert was sent again");

    // A group built in code next to it: both run.
    let mut both = parse_groups(yaml, &file, 60_000).unwrap();
    both.push(record_group());
    rules.set_groups(both).await.unwrap();
    let recorded = wait_for("queue_length:sum in storage", || {
        Some(instant(&store, "queue_length:sum")).filter(|v| !v.is_empty())
    })
    .await;
    assert_eq!(
        recorded,
        [(
            "{__name__=\"queue_length:sum\", site=\"us\"}".to_string(),
            170.0
        )]
    );
    rules.stop().await;
}

#[tokio::test]
async fn groups_with_the_same_source_and_name_are_refused_and_nothing_changes() {
    let store = Arc::new(MemStorage::new());
    let rules = manager(&store, Arc::new(|_: Vec<OutgoingAlert>| {}));
    rules.set_groups(vec![record_group()]).await.unwrap();
    let errors = rules
        .set_groups(vec![alert_group(), alert_group()])
        .await
        .unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0].to_string(),
        "group \"queues\": another group has the same source and name"
    );
    let names: Vec<String> = rules.groups().into_iter().map(|g| g.name).collect();
    assert_eq!(names, ["totals"], "the running groups are unchanged");
    // An empty set stops everything.
    rules.set_groups(Vec::new()).await.unwrap();
    assert!(rules.groups().is_empty());
}
