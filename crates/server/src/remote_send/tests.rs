//! The sender against a local HTTP sink that answers as scripted: delivery,
//! restart, retries, 4xx drops, the 2.0 fallback, shards, WAL holds.
//!
//! No test asserts on timing: each waits (up to a generous deadline) for a
//! state the sender must reach.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use parking_lot::Mutex;
use prost::Message;
use vigil_model::{labels, Appender, Labels, Value};
use vigil_tsdb::{Db, Options};

use super::*;
use crate::remote_write::{v2, WriteRequest};

#[derive(Debug, Default)]
struct Sink {
    /// Series text -> samples in arrival order.
    got: BTreeMap<String, Vec<(i64, f64)>>,
    /// Statuses to answer with, in order; 204 when empty.
    script: VecDeque<u16>,
    /// Answer 415 to 2.0 requests.
    refuse_v2: bool,
    requests: u64,
    v2_requests: u64,
    down: bool,
}

type SinkRef = Arc<Mutex<Sink>>;

async fn receive(State(sink): State<SinkRef>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let is_v2 = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.contains("io.prometheus.write.v2.Request"));
    let mut s = sink.lock();
    s.requests += 1;
    if s.down {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    if is_v2 && s.refuse_v2 {
        return StatusCode::UNSUPPORTED_MEDIA_TYPE;
    }
    if let Some(code) = s.script.pop_front() {
        let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if !code.is_success() {
            return code;
        }
    }
    let Ok(raw) = snap::raw::Decoder::new().decompress_vec(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    if is_v2 {
        s.v2_requests += 1;
        let Ok(req) = v2::Request::decode(raw.as_slice()) else {
            return StatusCode::BAD_REQUEST;
        };
        for ts in req.timeseries {
            let pairs: Vec<(&str, &str)> = ts
                .labels_refs
                .chunks(2)
                .map(|p| (&*req.symbols[p[0] as usize], &*req.symbols[p[1] as usize]))
                .collect();
            let key = Labels::from_pairs(pairs).to_string();
            let e = s.got.entry(key).or_default();
            e.extend(ts.samples.iter().map(|x| (x.timestamp, x.value)));
        }
    } else {
        let Ok(req) = WriteRequest::decode(raw.as_slice()) else {
            return StatusCode::BAD_REQUEST;
        };
        for ts in req.timeseries {
            let key = Labels::from_pairs(
                ts.labels
                    .iter()
                    .map(|l| (l.name.as_str(), l.value.as_str())),
            )
            .to_string();
            let e = s.got.entry(key).or_default();
            e.extend(ts.samples.iter().map(|x| (x.timestamp, x.value)));
        }
    }
    StatusCode::NO_CONTENT
}

async fn start_sink() -> (SinkRef, String) {
    let sink: SinkRef = Arc::default();
    let app = axum::Router::new()
        .route("/write", axum::routing::post(receive))
        .with_state(sink.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (sink, format!("http://{addr}/write"))
}

fn config(url: &str) -> RemoteWriteConfig {
    let mut c: RemoteWriteConfig = serde_yaml_ng::from_str(&format!(
        "url: {url}\nqueue_config:\n  batch_send_deadline: 20ms\n  min_backoff: 5ms\n  max_backoff: 50ms\n  max_samples_per_send: 50\n"
    ))
    .unwrap();
    c.name = "test".into();
    c
}

fn open_db(dir: &std::path::Path) -> Arc<Db> {
    let mut opts = Options::default();
    opts.head.wal_segment_size = 4096;
    Arc::new(Db::open(dir, opts).unwrap())
}

/// Appends `n` samples for each of `series` series from `t0`, one commit
/// per timestamp.
async fn ingest(db: &Arc<Db>, series: usize, t0: i64, n: i64) {
    let db = db.clone();
    tokio::task::spawn_blocking(move || {
        for i in 0..n {
            let mut app = db.appender();
            for s in 0..series {
                let l = labels!("__name__" => "m", "s" => &s.to_string());
                let t = t0 + i * 1000;
                app.append(None, &l, t, Value::Float(value(s, t))).unwrap();
            }
            app.commit().unwrap();
        }
    })
    .await
    .unwrap();
}

/// The value of series `s` at `t`.
fn value(s: usize, t: i64) -> f64 {
    (s as i64 * 1_000_000 + (t - T0) / 1000) as f64
}

/// What the sink must have: every sample, per series, once (duplicates
/// from a resend after a restart are removed first).
fn expected(series: usize, t0: i64, n: i64) -> BTreeMap<String, Vec<(i64, f64)>> {
    let mut out = BTreeMap::new();
    for s in 0..series {
        let l = labels!("__name__" => "m", "s" => &s.to_string());
        out.insert(
            l.to_string(),
            (0..n)
                .map(|i| (t0 + i * 1000, value(s, t0 + i * 1000)))
                .collect(),
        );
    }
    out
}

fn dedup(got: &BTreeMap<String, Vec<(i64, f64)>>) -> BTreeMap<String, Vec<(i64, f64)>> {
    got.iter()
        .map(|(k, v)| {
            let mut v = v.clone();
            v.sort_by_key(|x| x.0);
            v.dedup_by_key(|x| x.0);
            (k.clone(), v)
        })
        .collect()
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..3000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

fn metrics(m: &RemoteWriteManager) -> String {
    let mut out = String::new();
    m.write_metrics(&mut out);
    out
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(&format!("vigil_remote_storage_{name}{{")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

const T0: i64 = 1_700_000_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_everything_in_order_and_resumes_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (sink, url) = start_sink().await;
    let db = open_db(dir.path());
    let m = RemoteWriteManager::new(db.clone()).unwrap();
    m.apply(&[config(&url)], &Labels::empty()).await.unwrap();
    ingest(&db, 5, T0, 40).await;
    let want = expected(5, T0, 40);
    wait_for("first delivery", || sink.lock().got == want).await;
    // The sender counts a batch once it has read the sink's reply.
    wait_for("the counters", || {
        let text = metrics(&m);
        metric(&text, "samples_total") == 200.0 && metric(&text, "samples_pending") == 0.0
    })
    .await;
    let text = metrics(&m);
    assert_eq!(metric(&text, "samples_total"), 200.0);
    assert_eq!(metric(&text, "samples_pending"), 0.0);
    assert_eq!(
        metric(&text, "queue_highest_sent_timestamp_seconds"),
        (T0 + 39_000) as f64 / 1000.0
    );
    m.stop().await;

    // Written while no queue runs: sent after the "restart".
    ingest(&db, 5, T0 + 40_000, 20).await;
    drop(m);
    let db2 = db.clone();
    drop(db);
    let m = RemoteWriteManager::new(db2.clone()).unwrap();
    m.apply(&[config(&url)], &Labels::empty()).await.unwrap();
    let want = expected(5, T0, 60);
    wait_for("delivery after restart", || dedup(&sink.lock().got) == want).await;
    m.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_a_restart_of_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let (sink, url) = start_sink().await;
    {
        let db = open_db(dir.path());
        let m = RemoteWriteManager::new(db.clone()).unwrap();
        m.apply(&[config(&url)], &Labels::empty()).await.unwrap();
        sink.lock().down = true;
        ingest(&db, 3, T0, 30).await;
        wait_for("retries", || sink.lock().requests > 2).await;
        m.stop().await;
        drop(m);
        Arc::try_unwrap(db).unwrap().close().unwrap();
    }
    sink.lock().down = false;
    let db = open_db(dir.path());
    let m = RemoteWriteManager::new(db.clone()).unwrap();
    m.apply(&[config(&url)], &Labels::empty()).await.unwrap();
    ingest(&db, 3, T0 + 30_000, 10).await;
    let want = expected(3, T0, 40);
    wait_for("delivery across the restart", || {
        dedup(&sink.lock().got) == want
    })
    .await;
    m.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_5xx_and_429_and_drops_4xx() {
    let dir = tempfile::tempdir().unwrap();
    let (sink, url) = start_sink().await;
    let db = open_db(dir.path());
    let m = RemoteWriteManager::new(db.clone()).unwrap();
    let mut c = config(&url);
    c.queue_config.max_samples_per_send = 1000;
    c.queue_config.batch_send_deadline = vigil_scrape::config::PromDuration(10);
    m.apply(&[c], &Labels::empty()).await.unwrap();
    sink.lock().script.extend([503, 500, 429]);
    ingest(&db, 1, T0, 1).await;
    wait_for("delivery after retries", || {
        sink.lock().got == expected(1, T0, 1)
    })
    .await;
    let text = metrics(&m);
    // Three scripted refusals; a pooled connection the sink closed can add
    // a retry of its own.
    assert!(metric(&text, "samples_retried_total") >= 3.0, "{text}");
    assert_eq!(metric(&text, "samples_failed_total"), 0.0);

    // A 400 drops the batch (counted); later samples still go.
    sink.lock().script.push_back(400);
    ingest(&db, 1, T0 + 1000, 1).await;
    wait_for("the drop", || {
        metric(&metrics(&m), "samples_failed_total") == 1.0
    })
    .await;
    ingest(&db, 1, T0 + 2000, 1).await;
    wait_for("the next sample", || {
        sink.lock().got.values().next().map(Vec::len) == Some(2)
    })
    .await;
    let got = sink.lock().got.clone();
    assert_eq!(
        got.values().next().unwrap(),
        &vec![(T0, 0.0), (T0 + 2000, 2.0)]
    );
    // The sink has the sample before the sender has read its reply and
    // lowered the gauge, so wait for the gauge rather than read it once.
    wait_for("nothing pending", || {
        metric(&metrics(&m), "samples_pending") == 0.0
    })
    .await;
    m.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_429_retry_off_a_429_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (sink, url) = start_sink().await;
    let db = open_db(dir.path());
    let m = RemoteWriteManager::new(db.clone()).unwrap();
    let mut c = config(&url);
    c.queue_config.retry_on_http_429 = false;
    m.apply(&[c], &Labels::empty()).await.unwrap();
    sink.lock().script.push_back(429);
    ingest(&db, 1, T0, 1).await;
    wait_for("the drop", || {
        metric(&metrics(&m), "samples_failed_total") == 1.0
    })
    .await;
    assert_eq!(metric(&metrics(&m), "samples_retried_total"), 0.0);
    m.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_2_0_and_falls_back_to_1_0_on_415() {
    let dir = tempfile::tempdir().unwrap();
    let (sink, url) = start_sink().await;
    let db = open_db(dir.path());
    let m = RemoteWriteManager::new(db.clone()).unwrap();
    let mut c = config(&url);
    c.protobuf_message = ProtobufMessage::V2;
    m.apply(&[c.clone()], &Labels::empty()).await.unwrap();
    ingest(&db, 4, T0, 10).await;
    wait_for("2.0 delivery", || sink.lock().got == expected(4, T0, 10)).await;
    assert!(sink.lock().v2_requests > 0);

    // A receiver that only speaks 1.0.
    let (old, url2) = start_sink().await;
    old.lock().refuse_v2 = true;
    c.url = url2;
    m.apply(&[c], &Labels::empty()).await.unwrap();
    ingest(&db, 4, T0 + 10_000, 10).await;
    wait_for("1.0 delivery", || {
        dedup(&old.lock().got)
            .values()
            .all(|v| v.last().map(|x| x.0) == Some(T0 + 19_000))
            && old.lock().got.len() == 4
    })
    .await;
    assert_eq!(old.lock().v2_requests, 0);
    m.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_keep_each_series_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (sink, url) = start_sink().await;
    let db = open_db(dir.path());
    let m = RemoteWriteManager::new(db.clone()).unwrap();
    let mut c = config(&url);
    c.queue_config.min_shards = 4;
    c.queue_config.max_shards = 4;
    c.queue_config.max_samples_per_send = 7;
    m.apply(&[c], &Labels::empty()).await.unwrap();
    wait_for("4 shards", || metric(&metrics(&m), "shards") == 4.0).await;
    ingest(&db, 20, T0, 30).await;
    // Exactly, not deduplicated: no sample twice, each series in order.
    wait_for("sharded delivery", || {
        sink.lock().got == expected(20, T0, 30)
    })
    .await;
    m.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relabeling_and_external_labels() {
    let dir = tempfile::tempdir().unwrap();
    let (sink, url) = start_sink().await;
    let db = open_db(dir.path());
    let m = RemoteWriteManager::new(db.clone()).unwrap();
    let mut c = config(&url);
    c.write_relabel_configs =
        serde_yaml_ng::from_str("- source_labels: [s]\n  regex: '1'\n  action: drop\n").unwrap();
    m.apply(&[c], &labels!("site" => "x", "s" => "ignored"))
        .await
        .unwrap();
    ingest(&db, 3, T0, 2).await;
    wait_for("delivery", || sink.lock().got.len() == 2).await;
    let keys: Vec<String> = sink.lock().got.keys().cloned().collect();
    assert_eq!(
        keys,
        vec![
            labels!("__name__" => "m", "s" => "0", "site" => "x").to_string(),
            labels!("__name__" => "m", "s" => "2", "site" => "x").to_string(),
        ]
    );
    wait_for("drop count", || {
        metric(&metrics(&m), "samples_dropped_relabel_total") == 2.0
    })
    .await;
    m.stop().await;
}

/// A queue stopped before anything was acknowledged resumes where it
/// started, not at the newest segment of the next run (a restart within a
/// second of a new queue's start used to skip everything it had not sent).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_queue_stopped_at_once_keeps_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let (sink, url) = start_sink().await;
    {
        let db = open_db(dir.path());
        let m = RemoteWriteManager::new(db.clone()).unwrap();
        sink.lock().down = true;
        m.apply(&[config(&url)], &Labels::empty()).await.unwrap();
        ingest(&db, 2, T0, 3).await;
        m.stop().await;
        drop(m);
        Arc::try_unwrap(db).unwrap().close().unwrap();
    }
    sink.lock().down = false;
    let db = open_db(dir.path());
    let m = RemoteWriteManager::new(db.clone()).unwrap();
    m.apply(&[config(&url)], &Labels::empty()).await.unwrap();
    let want = expected(2, T0, 3);
    wait_for("everything", || dedup(&sink.lock().got) == want).await;
    m.stop().await;
}

/// The durability the WAL hold gives: with the receiver down, the head is
/// flushed into a block (which checkpoints and truncates the WAL); the
/// segments the queue still needs stay, and everything arrives once the
/// receiver is back, including after a restart of vigil in between.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wal_truncation_during_an_outage_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (sink, url) = start_sink().await;
    {
        let db = open_db(dir.path());
        let m = RemoteWriteManager::new(db.clone()).unwrap();
        m.apply(&[config(&url)], &Labels::empty()).await.unwrap();
        wait_for("the queue to start", || {
            metric(&metrics(&m), "shards") == 1.0
        })
        .await;
        sink.lock().down = true;
        ingest(&db, 10, T0, 200).await;
        assert!(db.head().wal().current_segment() > 2);
        let d = db.clone();
        tokio::task::spawn_blocking(move || d.flush().unwrap())
            .await
            .unwrap();
        // The checkpoint happened, and the held segments are still there.
        let wal_dir = db.head().wal().dir().to_path_buf();
        assert!(vigil_tsdb::wal::last_checkpoint(&wal_dir)
            .unwrap()
            .is_some());
        assert_eq!(vigil_tsdb::wal::segments(&wal_dir).unwrap()[0], 0);
        m.stop().await;
        drop(m);
        Arc::try_unwrap(db).unwrap().close().unwrap();
    }
    sink.lock().down = false;
    let db = open_db(dir.path());
    let m = RemoteWriteManager::new(db.clone()).unwrap();
    m.apply(&[config(&url)], &Labels::empty()).await.unwrap();
    ingest(&db, 10, T0 + 200_000, 5).await;
    let want = expected(10, T0, 205);
    wait_for("everything", || dedup(&sink.lock().got) == want).await;
    wait_for("the hold to move on", || {
        metric(&metrics(&m), "samples_pending") == 0.0
    })
    .await;
    assert_eq!(metric(&metrics(&m), "samples_unknown_series_total"), 0.0);
    m.stop().await;
}

#[test]
fn config_validation() {
    let ok = |y: &str| -> Result<(), String> {
        let c: Vec<RemoteWriteConfig> = serde_yaml_ng::from_str(y).map_err(|e| e.to_string())?;
        config::validate_remote_writes(&c)
    };
    ok("- url: http://a/api/v1/write\n").unwrap();
    ok("- url: http://a/w\n  protobuf_message: io.prometheus.write.v2.Request\n  headers: {X-Scope-OrgID: t1}\n  basic_auth: {username: u, password: p}\n  queue_config: {max_shards: 4, min_shards: 2, capacity: 100}\n").unwrap();
    for (bad, why) in [
        ("- url: ftp://a/w\n", "scheme"),
        ("- url: 'not a url'\n", "invalid url"),
        (
            "- url: http://a/w\n  headers: {Content-Type: x}\n",
            "reserved header",
        ),
        (
            "- url: http://a/w\n  queue_config: {min_shards: 5, max_shards: 2}\n",
            "min_shards",
        ),
        (
            "- url: http://a/w\n  queue_config: {max_samples_per_send: 0}\n",
            "max_samples_per_send",
        ),
        (
            "- url: http://a/w\n  basic_auth: {username: u}\n  authorization: {credentials: x}\n",
            "at most one",
        ),
        ("- url: http://a/w\n- url: http://a/w\n", "without a name"),
        (
            "- url: http://a/w\n  name: x\n- url: http://b/w\n  name: x\n",
            "duplicate",
        ),
        (
            "- url: http://a/w\n  protobuf_message: foo\n",
            "unknown variant",
        ),
        (
            "- url: http://a/w\n  queue_config: {nope: 1}\n",
            "unknown field",
        ),
    ] {
        let e = ok(bad).unwrap_err();
        assert!(e.contains(why), "{bad}: {e}");
    }
}
