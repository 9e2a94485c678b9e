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
use vigil_scrape::{GlobalDefaults, ScrapeConfig, ScrapeManager, TargetHealth};

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

    // Once the body is good again the target is up; when it breaks again,
    // its series are marked stale.
    exp.set(|r| r.body = b"a 1\n".to_vec());
    wait_until("up again", || values(&storage, "up").contains(&1.0)).await;
    exp.set(|r| r.body = b"a 1\n}\n".to_vec());
    wait_until("stale after a failed scrape", || {
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
async fn reload_keeps_unchanged_loops_and_stop_marks_everything_stale() {
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

    m.stop().await;
    assert!(last_is_stale(&storage, "temperature"));
    assert!(last_is_stale(&storage, "requests_total"));
    assert!(last_is_stale(&storage, "up"));
    assert!(m.targets().is_empty());
}
