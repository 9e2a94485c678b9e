//! End-to-end scrapes: a small HTTP exporter on 127.0.0.1 that the test
//! controls, a ScrapeManager appending to a MemStorage, and checks of what
//! lands in storage and in the target status.

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Response;
use axum::routing::get;
use axum::Router;
use parking_lot::Mutex;
use vigil_model::storage::{Queryable, SampleIterator, ValueType};
use vigil_model::{is_stale, Labels, Matcher, MemStorage};
use vigil_scrape::config::PromDuration;
use vigil_scrape::discovery::FileSdConfig;
use vigil_scrape::{GlobalDefaults, ScrapeConfig, ScrapeManager, ScrapeOptions, TargetHealth};

#[derive(Clone)]
struct Reply {
    body: Vec<u8>,
    content_type: Option<&'static str>,
    status: u16,
    delay: Duration,
    gzip: bool,
}

impl Reply {
    fn text(body: &str) -> Reply {
        Reply {
            body: body.as_bytes().to_vec(),
            content_type: Some("text/plain; version=0.0.4; charset=utf-8"),
            status: 200,
            delay: Duration::ZERO,
            gzip: false,
        }
    }
}

/// A test exporter whose reply the test changes at will.
struct Exporter {
    addr: String,
    reply: Arc<Mutex<Reply>>,
    hits: Arc<Mutex<Vec<axum::http::HeaderMap>>>,
}

impl Exporter {
    async fn start(reply: Reply) -> Exporter {
        let reply = Arc::new(Mutex::new(reply));
        let hits = Arc::new(Mutex::new(Vec::new()));
        let (r, h) = (Arc::clone(&reply), Arc::clone(&hits));
        let app = Router::new().route(
            "/metrics",
            get(move |headers: axum::http::HeaderMap| {
                let r = Arc::clone(&r);
                let h = Arc::clone(&h);
                async move {
                    h.lock().push(headers);
                    let rep = r.lock().clone();
                    if !rep.delay.is_zero() {
                        tokio::time::sleep(rep.delay).await;
                    }
                    let mut b = Response::builder().status(rep.status);
                    if let Some(ct) = rep.content_type {
                        b = b.header("content-type", ct);
                    }
                    let body = if rep.gzip {
                        b = b.header("content-encoding", "gzip");
                        let mut enc = flate2::write::GzEncoder::new(
                            Vec::new(),
                            flate2::Compression::default(),
                        );
                        enc.write_all(&rep.body).unwrap();
                        enc.finish().unwrap()
                    } else {
                        rep.body
                    };
                    b.body(Body::from(body)).unwrap()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Exporter { addr, reply, hits }
    }

    fn set(&self, f: impl FnOnce(&mut Reply)) {
        f(&mut self.reply.lock());
    }
}

fn job(name: &str, addr: &str, interval_ms: i64) -> ScrapeConfig {
    let mut c = ScrapeConfig::new(name, vec![addr.to_string()]);
    c.scrape_interval = Some(PromDuration(interval_ms));
    c
}

/// Every series named `name`, with its samples as (t, v).
fn series(s: &MemStorage, name: &str) -> Vec<(Labels, Vec<(i64, f64)>)> {
    let q = s.querier(i64::MIN / 2, i64::MAX / 2).unwrap();
    let set = q
        .select(true, None, &[Matcher::equal("__name__", name)])
        .unwrap();
    set.series
        .iter()
        .map(|ser| {
            let mut it = ser.iter();
            let mut v = Vec::new();
            while it.next() == ValueType::Float {
                v.push(it.at());
            }
            (ser.labels().clone(), v)
        })
        .collect()
}

fn values(s: &MemStorage, name: &str) -> Vec<f64> {
    series(s, name)
        .into_iter()
        .next()
        .map(|(_, v)| v.into_iter().map(|x| x.1).collect())
        .unwrap_or_default()
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn last_is_stale(s: &MemStorage, name: &str) -> bool {
    series(s, name)
        .iter()
        .all(|(_, v)| v.last().is_some_and(|x| is_stale(x.1)))
        && !series(s, name).is_empty()
}

const BODY: &str = "# HELP requests_total Requests.\n# TYPE requests_total counter\nrequests_total{code=\"200\"} 10\nrequests_total{code=\"500\"} 2\ntemperature 21.5\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapes_values_reports_and_marks_vanished_series_stale() {
    let exp = Exporter::start(Reply::text(BODY)).await;
    let storage = Arc::new(MemStorage::new());
    let m = ScrapeManager::new(Arc::clone(&storage), Default::default());
    m.apply(&[job("node", &exp.addr, 100)], &GlobalDefaults::default())
        .await
        .unwrap();

    wait_until("two scrapes", || values(&storage, "up").len() >= 2).await;
    let reqs = series(&storage, "requests_total");
    assert_eq!(reqs.len(), 2);
    assert_eq!(
        reqs[0].0,
        vigil_model::labels!("__name__" => "requests_total", "code" => "200", "instance" => exp.addr.as_str(), "job" => "node")
    );
    assert!(reqs[0].1.iter().all(|x| x.1 == 10.0));
    assert_eq!(values(&storage, "up")[0], 1.0);
    assert_eq!(values(&storage, "scrape_samples_scraped")[0], 3.0);
    assert_eq!(
        values(&storage, "scrape_samples_post_metric_relabeling")[0],
        3.0
    );
    let added = values(&storage, "scrape_series_added");
    assert_eq!(added[0], 3.0);
    assert_eq!(added[1], 0.0);
    assert!(values(&storage, "scrape_duration_seconds")[0] >= 0.0);
    let up = &series(&storage, "up")[0].0;
    assert_eq!(up.get("job"), Some("node"));
    assert_eq!(up.get("instance"), Some(exp.addr.as_str()));

    let st = m.targets();
    assert_eq!(st.len(), 1);
    assert_eq!(st[0].health, TargetHealth::Up);
    assert_eq!(st[0].scrape_url, format!("http://{}/metrics", exp.addr));
    assert!(st[0].last_scrape.is_some() && st[0].last_error.is_none());
    let meta = m.metadata();
    let fams: Vec<_> = meta[0].metrics.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(fams, vec!["requests_total"]);
    assert_eq!(meta[0].metrics[0].1.help, "Requests.");

    // The exporter stops exposing one series: it gets a stale marker, the
    // others go on.
    exp.set(|r| r.body = b"requests_total{code=\"200\"} 11\ntemperature 22\n".to_vec());
    wait_until("stale marker for the vanished series", || {
        series(&storage, "requests_total")
            .iter()
            .any(|(l, v)| l.get("code") == Some("500") && v.last().is_some_and(|x| is_stale(x.1)))
    })
    .await;
    wait_until("new values", || {
        values(&storage, "temperature").contains(&22.0)
    })
    .await;
    assert!(!last_is_stale(&storage, "temperature"));

    // The Accept header is Prometheus's.
    let h = exp.hits.lock()[0].clone();
    assert!(h["accept"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text;version=1.0.0"));
    assert!(h.contains_key("x-prometheus-scrape-timeout-seconds"));

    // The target goes away: after two more intervals every series of it,
    // `up` included, is marked stale.
    m.apply(&[], &GlobalDefaults::default()).await.unwrap();
    assert!(m.targets().is_empty());
    wait_until("end-of-run stale markers", || {
        last_is_stale(&storage, "temperature")
            && last_is_stale(&storage, "up")
            && last_is_stale(&storage, "scrape_series_added")
    })
    .await;
    m.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_body_fails_the_scrape_with_the_line_number() {
    let exp = Exporter::start(Reply::text("a 1\nb 2\nc{x=\"y\" 3\n")).await;
    let storage = Arc::new(MemStorage::new());
    let m = ScrapeManager::new(Arc::clone(&storage), Default::default());
    m.apply(&[job("bad", &exp.addr, 100)], &GlobalDefaults::default())
        .await
        .unwrap();
    wait_until("a scrape", || !values(&storage, "up").is_empty()).await;
    assert_eq!(values(&storage, "up")[0], 0.0);
    // Nothing of the failed scrape is stored.
    assert!(series(&storage, "a").is_empty());
    let st = &m.targets()[0];
    assert_eq!(st.health, TargetHealth::Down);
    let e = st.last_error.clone().unwrap();
    assert!(e.contains("line 3"), "{e}");

    // Once the body is good again the target is up. When it breaks again
    // after `a`, the series of the last good scrape go stale except `a`:
    // Prometheus's rolled-back append leaves the series it appended before
    // the error in the staleness set, and so does vigil.
    exp.set(|r| r.body = b"a 1\nb 2\n".to_vec());
    wait_until("up again", || values(&storage, "up").contains(&1.0)).await;
    exp.set(|r| r.body = b"a 1\n}\n".to_vec());
    wait_until("b stale after a failed scrape", || {
        last_is_stale(&storage, "b")
    })
    .await;
    let ups = values(&storage, "up").len();
    wait_until("two more failed scrapes", || {
        values(&storage, "up").len() >= ups + 2
    })
    .await;
    assert!(!last_is_stale(&storage, "a"), "{:?}", values(&storage, "a"));
    assert_eq!(*values(&storage, "up").last().unwrap(), 0.0);
    // A scrape that fails before any series (an HTTP error) is empty: now
    // `a` goes stale too.
    exp.set(|r| r.status = 500);
    wait_until("a stale after an empty failed scrape", || {
        last_is_stale(&storage, "a")
    })
    .await;
    m.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_status_codes_and_body_limits_fail_scrapes() {
    let slow = Exporter::start(Reply::text(BODY)).await;
    slow.set(|r| r.delay = Duration::from_millis(600));
    let err500 = Exporter::start(Reply::text(BODY)).await;
    err500.set(|r| r.status = 500);
    let big = Exporter::start(Reply::text(BODY)).await;
    let mut j1 = job("slow", &slow.addr, 200);
    j1.scrape_timeout = Some(PromDuration(100));
    let j2 = job("err", &err500.addr, 100);
    let mut j3 = job("big", &big.addr, 100);
    j3.body_size_limit = vigil_scrape::config::ByteSize(16);

    let storage = Arc::new(MemStorage::new());
    let m = ScrapeManager::new(Arc::clone(&storage), Default::default());
    m.apply(&[j1, j2, j3], &GlobalDefaults::default())
        .await
        .unwrap();
    wait_until("all three scraped", || {
        m.targets()
            .iter()
            .all(|t| t.health != TargetHealth::Unknown)
    })
    .await;
    for t in m.targets() {
        assert_eq!(t.health, TargetHealth::Down, "{t:?}");
        let e = t.last_error.unwrap();
        match t.job.as_str() {
            "slow" => assert!(e.contains("deadline exceeded"), "{e}"),
            "err" => assert!(e.contains("500"), "{e}"),
            "big" => assert!(e.contains("body size limit"), "{e}"),
            j => panic!("{j}"),
        }
    }
    assert!(values(&storage, "up").iter().all(|&v| v == 0.0));
    assert!(series(&storage, "requests_total").is_empty());
    m.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openmetrics_gzip_labels_limits_and_relabeling() {
    let om = "# TYPE requests counter\nrequests_total{job=\"app\",instance=\"x\"} 5 # {trace_id=\"abc\"} 1\nrequests_created{job=\"app\",instance=\"x\"} 1700000000\nold 1 1.5\n# EOF\n";
    let exp = Exporter::start(Reply {
        body: om.as_bytes().to_vec(),
        content_type: Some("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        status: 200,
        delay: Duration::ZERO,
        gzip: true,
    })
    .await;
    let mut plain = job("plain", &exp.addr, 100);
    plain.metric_relabel_configs =
        serde_yaml_ng::from_str("- {source_labels: [__name__], regex: old, action: drop}").unwrap();
    let mut honor = job("honor", &exp.addr, 100);
    honor.honor_labels = true;
    honor.honor_timestamps = false;

    let storage = Arc::new(MemStorage::new());
    let m = ScrapeManager::new(Arc::clone(&storage), Default::default());
    m.apply(&[plain, honor], &GlobalDefaults::default())
        .await
        .unwrap();
    wait_until("both jobs scraped", || {
        values(&storage, "up").len() >= 2 && series(&storage, "up").len() == 2
    })
    .await;
    for t in m.targets() {
        assert_eq!(t.health, TargetHealth::Up, "{t:?}");
    }
    let reqs = series(&storage, "requests_total");
    let labels: Vec<_> = reqs.iter().map(|(l, _)| l.clone()).collect();
    // Without honor_labels the exposed job/instance become exported_*.
    assert!(labels.contains(&vigil_model::labels!(
        "__name__" => "requests_total",
        "exported_instance" => "x",
        "exported_job" => "app",
        "instance" => exp.addr.as_str(),
        "job" => "plain"
    )));
    // With honor_labels the exposed ones win.
    assert!(labels.contains(&vigil_model::labels!(
        "__name__" => "requests_total",
        "instance" => "x",
        "job" => "app"
    )));
    // _created is an ordinary series, as in Prometheus by default.
    assert_eq!(series(&storage, "requests_created").len(), 2);
    // `old` was dropped by metric relabeling for one job; the other stores
    // it at the scrape time (honor_timestamps: false), not at 1.5s.
    let old = series(&storage, "old");
    assert_eq!(old.len(), 1);
    assert_eq!(old[0].0.get("job"), Some("honor"));
    assert!(old[0].1[0].0 > 1_600_000_000_000);
    let post: Vec<_> = series(&storage, "scrape_samples_post_metric_relabeling")
        .into_iter()
        .map(|(l, v)| (l.get("job").unwrap().to_string(), v[0].1))
        .collect();
    assert!(post.contains(&("plain".to_string(), 2.0)));
    assert!(post.contains(&("honor".to_string(), 3.0)));
    m.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_limit_fails_the_scrape() {
    let exp = Exporter::start(Reply::text(BODY)).await;
    let mut j = job("limited", &exp.addr, 100);
    j.sample_limit = 2;
    let storage = Arc::new(MemStorage::new());
    let m = ScrapeManager::new(Arc::clone(&storage), Default::default());
    m.apply(&[j], &GlobalDefaults::default()).await.unwrap();
    wait_until("a scrape", || !values(&storage, "up").is_empty()).await;
    assert_eq!(values(&storage, "up")[0], 0.0);
    assert_eq!(values(&storage, "scrape_samples_scraped")[0], 3.0);
    assert!(m.targets()[0]
        .last_error
        .as_deref()
        .unwrap()
        .contains("sample limit exceeded"));
    assert!(series(&storage, "temperature").is_empty());
    m.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_keeps_unchanged_loops_and_stop_writes_no_stale_markers() {
    let exp = Exporter::start(Reply::text(BODY)).await;
    let storage = Arc::new(MemStorage::new());
    let m = ScrapeManager::new(Arc::clone(&storage), Default::default());
    let jobs = vec![job("a", &exp.addr, 100)];
    m.apply(&jobs, &GlobalDefaults::default()).await.unwrap();
    wait_until("a scrape", || values(&storage, "up").len() >= 2).await;
    // Same config again: the loop keeps running and nothing goes stale.
    m.apply(&jobs, &GlobalDefaults::default()).await.unwrap();
    let before = values(&storage, "up").len();
    wait_until("more scrapes", || {
        values(&storage, "up").len() >= before + 2
    })
    .await;
    assert!(values(&storage, "temperature").iter().all(|v| !v.is_nan()));
    assert_eq!(
        values(&storage, "scrape_series_added").iter().sum::<f64>(),
        3.0
    );

    // A changed interval restarts the loop with the old cache: still no
    // stale markers, and no series counted as new again.
    let mut changed = jobs.clone();
    changed[0].scrape_interval = Some(PromDuration(120));
    m.apply(&changed, &GlobalDefaults::default()).await.unwrap();
    let before = values(&storage, "up").len();
    wait_until("scrapes after reload", || {
        values(&storage, "up").len() >= before + 4
    })
    .await;
    assert!(values(&storage, "temperature").iter().all(|v| !v.is_nan()));
    assert_eq!(
        values(&storage, "scrape_series_added").iter().sum::<f64>(),
        3.0
    );

    // An invalid config is refused and the running one stays.
    let mut bad = changed.clone();
    bad[0].scrape_timeout = Some(PromDuration(1_000));
    assert!(m.apply(&bad, &GlobalDefaults::default()).await.is_err());
    assert_eq!(m.targets().len(), 1);

    // Shutdown writes no stale markers, as Prometheus: a restart must not
    // leave them in the data.
    let samples = |s: &MemStorage| -> usize {
        ["temperature", "requests_total", "up", "scrape_series_added"]
            .iter()
            .map(|n| series(s, n).iter().map(|x| x.1.len()).sum::<usize>())
            .sum()
    };
    m.stop().await;
    let after_stop = samples(&storage);
    for name in ["temperature", "requests_total", "up", "scrape_series_added"] {
        for (l, v) in series(&storage, name) {
            assert!(v.iter().all(|x| !is_stale(x.1)), "stale marker in {l}");
        }
    }
    assert!(m.targets().is_empty());
    // Every loop has ended: nothing is written after stop returns.
    tokio::task::yield_now().await;
    assert_eq!(samples(&storage), after_stop);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_while_a_removed_target_waits_writes_no_stale_markers() {
    // A target removed by a reload waits two intervals before its stale
    // markers; a shutdown meanwhile cancels them, as in Prometheus.
    let exp = Exporter::start(Reply::text(BODY)).await;
    let storage = Arc::new(MemStorage::new());
    let m = ScrapeManager::new(Arc::clone(&storage), Default::default());
    m.apply(&[job("a", &exp.addr, 2_000)], &GlobalDefaults::default())
        .await
        .unwrap();
    wait_until("a scrape", || !values(&storage, "up").is_empty()).await;
    m.apply(&[], &GlobalDefaults::default()).await.unwrap();
    m.stop().await;
    assert!(values(&storage, "up").iter().all(|v| !is_stale(*v)));
    assert!(values(&storage, "temperature")
        .iter()
        .all(|v| !is_stale(*v)));
}

fn sd_job(name: &str, patterns: &[String], interval_ms: i64, refresh_ms: i64) -> ScrapeConfig {
    let mut c = ScrapeConfig::new(name, vec![]);
    c.static_configs.clear();
    c.scrape_interval = Some(PromDuration(interval_ms));
    let mut sd = FileSdConfig::new(patterns.to_vec());
    sd.refresh_interval = PromDuration(refresh_ms);
    c.file_sd_configs = vec![sd];
    c
}

fn instances(m: &ScrapeManager<MemStorage>) -> Vec<String> {
    let mut v: Vec<String> = m
        .targets()
        .iter()
        .map(|t| t.labels.get("instance").unwrap_or("").to_string())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_sd_targets_come_and_go_without_a_restart() {
    let a = Exporter::start(Reply::text(BODY)).await;
    let b = Exporter::start(Reply::text("other_metric 1\n")).await;
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("a.json");
    let yaml = dir.path().join("b.yml");
    std::fs::write(
        &json,
        format!(
            r#"[{{"targets": ["{}"], "labels": {{"team": "x"}}}}]"#,
            a.addr
        ),
    )
    .unwrap();
    let storage = Arc::new(MemStorage::new());
    let opts = ScrapeOptions {
        file_sd_poll_interval: Duration::from_millis(50),
        ..Default::default()
    };
    let m = ScrapeManager::new(Arc::clone(&storage), opts);
    let pat = dir.path().join("*.json").to_string_lossy().into_owned();
    let ypat = dir.path().join("*.yml").to_string_lossy().into_owned();
    // A 1h refresh: only change detection can pick up edits here.
    let cfg = sd_job("sd", &[pat, ypat], 100, 3_600_000);
    m.apply(std::slice::from_ref(&cfg), &GlobalDefaults::default())
        .await
        .unwrap();
    // The files are read during apply: the target is there at once.
    let t = m.targets();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].labels.get("team"), Some("x"));
    assert_eq!(
        t[0].discovered_labels.get("__meta_filepath"),
        Some(json.to_string_lossy().as_ref())
    );
    assert_eq!(t[0].labels.get("__meta_filepath"), None);
    wait_until("a scrape", || !values(&storage, "temperature").is_empty()).await;

    // A YAML file appears: its target joins.
    std::fs::write(&yaml, format!("- targets: ['{}']\n", b.addr)).unwrap();
    wait_until("the second target", || instances(&m).len() == 2).await;
    wait_until("its scrape", || {
        !values(&storage, "other_metric").is_empty()
    })
    .await;

    // A broken file keeps its last good targets.
    std::fs::write(&json, "[{\"targets\": [").unwrap();
    std::fs::write(
        &yaml,
        format!("- targets: ['{}']\n  labels: {{v: '2'}}\n", b.addr),
    )
    .unwrap();
    wait_until("the YAML change", || {
        m.targets().iter().any(|t| t.labels.get("v") == Some("2"))
    })
    .await;
    assert_eq!(instances(&m), {
        let mut v = vec![a.addr.clone(), b.addr.clone()];
        v.sort();
        v
    });

    // The JSON file loses its target: it goes, and its series are marked
    // stale two intervals later (removal by discovery).
    std::fs::write(&json, "[]").unwrap();
    wait_until("the first target to go", || {
        instances(&m) == vec![b.addr.clone()]
    })
    .await;
    wait_until("stale markers of the removed target", || {
        last_is_stale(&storage, "temperature")
    })
    .await;
    assert!(series(&storage, "up")
        .iter()
        .any(|(l, v)| l.get("instance") == Some(a.addr.as_str())
            && v.last().is_some_and(|x| is_stale(x.1))));

    // A reload that changes the job reads the files again.
    let mut cfg2 = cfg.clone();
    cfg2.scrape_interval = Some(PromDuration(150));
    std::fs::write(&json, format!(r#"[{{"targets": ["{}"]}}]"#, a.addr)).unwrap();
    m.apply(&[cfg2], &GlobalDefaults::default()).await.unwrap();
    assert_eq!(instances(&m).len(), 2);
    m.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_sd_rereads_on_the_refresh_interval() {
    let a = Exporter::start(Reply::text(BODY)).await;
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("t.json");
    std::fs::write(&json, "[]").unwrap();
    // Change polling is off (an hour); the 100ms refresh must find the
    // target.
    let opts = ScrapeOptions {
        file_sd_poll_interval: Duration::from_secs(3600),
        ..Default::default()
    };
    let storage = Arc::new(MemStorage::new());
    let m = ScrapeManager::new(Arc::clone(&storage), opts);
    let cfg = sd_job("sd", &[json.to_string_lossy().into_owned()], 100, 100);
    m.apply(&[cfg], &GlobalDefaults::default()).await.unwrap();
    assert!(m.targets().is_empty());
    std::fs::write(&json, format!(r#"[{{"targets": ["{}"]}}]"#, a.addr)).unwrap();
    wait_until("the refreshed target", || m.targets().len() == 1).await;
    wait_until("a scrape", || !values(&storage, "temperature").is_empty()).await;
    m.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_follow_a_server_that_flips_between_healthy_and_failing() {
    use vigil_scrape::probe::{BodyRegex, ProbeConfig, ProbeManager};
    // The health endpoint answers {"status": "ok"} (200) or 503.
    let exp = Exporter::start(Reply::text("{\"status\": \"ok\"}")).await;
    let storage = Arc::new(MemStorage::new());
    let probes = ProbeManager::new(Arc::clone(&storage));
    let mut p = ProbeConfig::new("api", format!("http://{}/metrics", exp.addr));
    p.interval = Some(PromDuration(100));
    p.body_regex = Some(BodyRegex::new(r#""status":\s*"ok""#).unwrap());
    p.headers.insert("X-Probe".into(), "vigil".into());
    p.labels.insert("team".into(), "web".into());
    probes.apply(std::slice::from_ref(&p)).await.unwrap();

    wait_until("a successful probe", || {
        values(&storage, "probe_success").contains(&1.0)
    })
    .await;
    let ok = &series(&storage, "probe_success")[0].0;
    assert_eq!(
        ok,
        &vigil_model::labels!(
            "__name__" => "probe_success",
            "instance" => format!("http://{}/metrics", exp.addr).as_str(),
            "job" => "probe",
            "probe" => "api",
            "team" => "web"
        )
    );
    assert_eq!(values(&storage, "probe_http_status_code")[0], 200.0);
    assert_eq!(values(&storage, "probe_failed_total")[0], 0.0);
    assert_eq!(values(&storage, "probe_consecutive_failures")[0], 0.0);
    assert!(values(&storage, "probe_duration_seconds")[0] >= 0.0);
    assert_eq!(exp.hits.lock()[0]["x-probe"], "vigil");

    // It fails: three failures in a row are counted, with the status code.
    exp.set(|r| r.status = 503);
    wait_until("three failures in a row", || {
        values(&storage, "probe_consecutive_failures").contains(&3.0)
    })
    .await;
    assert!(values(&storage, "probe_http_status_code").contains(&503.0));
    assert!(values(&storage, "probe_success").contains(&0.0));
    let st = &probes.probes()[0];
    assert!(st.last_error.as_deref().unwrap().contains("503"), "{st:?}");

    // Healthy again: the run resets, the counter keeps its failures.
    exp.set(|r| r.status = 200);
    wait_until("recovery", || {
        values(&storage, "probe_consecutive_failures").last() == Some(&0.0)
    })
    .await;
    let failed = values(&storage, "probe_failed_total");
    assert!(failed.windows(2).all(|w| w[0] <= w[1]), "{failed:?}");
    assert!(*failed.last().unwrap() >= 3.0);

    // A 200 whose body does not match fails too.
    exp.set(|r| r.body = b"{\"status\": \"degraded\"}".to_vec());
    wait_until("a body mismatch", || {
        probes.probes()[0]
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("does not match"))
    })
    .await;

    // A reload that changes only the interval keeps the counters.
    let before = *values(&storage, "probe_failed_total").last().unwrap();
    let mut p2 = p.clone();
    p2.interval = Some(PromDuration(150));
    probes.apply(&[p2]).await.unwrap();
    let n = values(&storage, "probe_failed_total").len();
    wait_until("a probe after the reload", || {
        values(&storage, "probe_failed_total").len() > n
    })
    .await;
    assert!(values(&storage, "probe_failed_total")[n] >= before);

    // Removed by a reload: its series get stale markers.
    probes.apply(&[]).await.unwrap();
    for name in vigil_scrape::probe::PROBE_SERIES {
        assert!(last_is_stale(&storage, name), "{name}");
    }
    probes.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_timeouts_and_refused_connections_fail_and_stop_writes_no_stale_markers() {
    use vigil_scrape::probe::{ProbeConfig, ProbeManager};
    let slow = Exporter::start(Reply::text("ok")).await;
    slow.set(|r| r.delay = Duration::from_millis(500));
    // A port nothing listens on: bind, note the port, close.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let storage = Arc::new(MemStorage::new());
    let probes = ProbeManager::new(Arc::clone(&storage));
    let mut a = ProbeConfig::new("slow", format!("http://{}/metrics", slow.addr));
    a.interval = Some(PromDuration(200));
    a.timeout = Some(PromDuration(100));
    let mut b = ProbeConfig::new("closed", format!("http://{closed}/"));
    b.interval = Some(PromDuration(100));
    probes.apply(&[a, b]).await.unwrap();
    wait_until("both probed", || {
        probes.probes().iter().all(|p| p.success.is_some())
    })
    .await;
    for p in probes.probes() {
        assert_eq!(p.success, Some(false), "{p:?}");
        let e = p.last_error.unwrap();
        match p.name.as_str() {
            "slow" => assert!(e.contains("timed out"), "{e}"),
            _ => assert!(e.contains("request failed"), "{e}"),
        }
    }
    assert!(values(&storage, "probe_http_status_code")
        .iter()
        .all(|v| *v == 0.0));
    probes.stop().await;
    for name in vigil_scrape::probe::PROBE_SERIES {
        for (l, v) in series(&storage, name) {
            assert!(v.iter().all(|x| !is_stale(x.1)), "stale marker in {l}");
        }
    }
}

/// A certificate authority, and certificates it signed for the test's
/// exporter (127.0.0.1) and for the scraper (client authentication), as
/// PEM files in `dir`: (ca, server cert, server key, client cert, client key).
fn mutual_tls_files(dir: &std::path::Path) -> [std::path::PathBuf; 5] {
    use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf = |names: Vec<String>, usage: ExtendedKeyUsagePurpose| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names).unwrap();
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = leaf(
        vec!["127.0.0.1".to_string()],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let (client_cert, client_key) = leaf(vec![], ExtendedKeyUsagePurpose::ClientAuth);
    let files = [
        ("ca.pem", ca.pem()),
        ("server.pem", server_cert),
        ("server-key.pem", server_key),
        ("client.pem", client_cert),
        ("client-key.pem", client_key),
    ];
    files.map(|(name, pem)| {
        let path = dir.join(name);
        std::fs::write(&path, pem).unwrap();
        path
    })
}

/// An exporter on 127.0.0.1 over TLS that only talks to clients with a
/// certificate signed by `ca`: it answers every request with `BODY`.
async fn mutual_tls_exporter(
    ca: &std::path::Path,
    cert: &std::path::Path,
    key: &std::path::Path,
) -> String {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let chain = CertificateDer::pem_file_iter(cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, PrivateKeyDer::from_pem_file(key).unwrap())
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client without an accepted certificate fails here.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{BODY}",
                    BODY.len()
                );
                let _ = tls.write_all(reply.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_client_certificates_from_cert_file_and_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let [ca, server_cert, server_key, client_cert, client_key] = mutual_tls_files(dir.path());
    let addr = mutual_tls_exporter(&ca, &server_cert, &server_key).await;
    let https = |name: &str, with_cert: bool| {
        let mut j = job(name, &addr, 100);
        j.scheme = vigil_scrape::config::Scheme::Https;
        j.tls_config = Some(vigil_scrape::config::TlsConfig {
            ca_file: Some(ca.clone()),
            cert_file: with_cert.then(|| client_cert.clone()),
            key_file: with_cert.then(|| client_key.clone()),
            ..Default::default()
        });
        j
    };

    let storage = Arc::new(MemStorage::new());
    let m = ScrapeManager::new(Arc::clone(&storage), Default::default());
    m.apply(
        &[https("with_cert", true), https("without_cert", false)],
        &GlobalDefaults::default(),
    )
    .await
    .unwrap();
    wait_until("both scraped", || {
        m.targets()
            .iter()
            .all(|t| t.health != TargetHealth::Unknown)
    })
    .await;
    for t in m.targets() {
        match t.job.as_str() {
            "with_cert" => assert_eq!(t.health, TargetHealth::Up, "{t:?}"),
            "without_cert" => assert_eq!(t.health, TargetHealth::Down, "{t:?}"),
            j => panic!("{j}"),
        }
    }
    let temperature = series(&storage, "temperature");
    assert_eq!(temperature.len(), 1);
    assert_eq!(temperature[0].0.get("job"), Some("with_cert"));
    m.stop().await;

    // A key that is not the certificate's is refused when the config is
    // applied, and the running config stays.
    let m = ScrapeManager::new(Arc::clone(&storage), Default::default());
    let mut wrong = https("wrong_key", true);
    wrong.tls_config.as_mut().unwrap().key_file = Some(server_key.clone());
    let err = m
        .apply(&[wrong], &GlobalDefaults::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("server-key.pem"), "{err}");
    // A certificate without its key does not validate.
    let mut half = https("half", true);
    half.tls_config.as_mut().unwrap().key_file = None;
    let err = half.validate(&GlobalDefaults::default()).unwrap_err();
    assert!(err.to_string().contains("key_file"), "{err}");
    m.stop().await;
}
