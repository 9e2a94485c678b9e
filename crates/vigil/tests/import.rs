//! `vigil tsdb import` as a user runs it: OpenMetrics files (and stdin)
//! imported and read back sample for sample, malformed files refused with
//! line numbers and nothing left behind, and recording rules backfilled
//! from a running vigil.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use common::{import_openmetrics, serial, serve, vigil};
use vigil_model::{Labels, Matcher, Queryable, SampleIterator, ValueType};
use vigil_tsdb::{Db, Options};

const H: i64 = 3_600_000;

/// Every series and sample of a data directory, values as bits.
type Data = BTreeMap<Labels, Vec<(i64, u64)>>;

fn read_dir(dir: &Path) -> Data {
    let db = Db::open(
        dir,
        Options {
            retention_time: None,
            ..Options::default()
        },
    )
    .unwrap();
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    let set = q
        .select(
            true,
            None,
            &[Matcher::new(vigil_model::MatchOp::Regex, "__name__", ".+").unwrap()],
        )
        .unwrap();
    let mut out = Data::new();
    for s in &set.series {
        let mut it = s.iter();
        let mut v = Vec::new();
        while it.next() == ValueType::Float {
            let (t, x) = it.at();
            v.push((t, x.to_bits()));
        }
        assert!(it.err().is_none());
        out.insert(s.labels().clone(), v);
    }
    out
}

/// Names of the entries of a directory, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A value for series `s` at step `i`: integers, decimals, negatives,
/// large and tiny numbers, infinities and NaN.
fn value(s: usize, i: usize) -> f64 {
    match (s + i) % 11 {
        0 => (i * 3) as f64,
        1 => i as f64 * 0.1,
        2 => -(s as f64) - 0.25,
        3 => 1e300 / (i as f64 + 1.0),
        4 => 1.0 / (7.0 + i as f64),
        5 if i.is_multiple_of(97) => f64::INFINITY,
        6 if i.is_multiple_of(89) => f64::NEG_INFINITY,
        7 if i.is_multiple_of(83) => f64::NAN,
        _ => (s * 1000 + i) as f64,
    }
}

/// OpenMetrics text of `series` × `steps` samples, 15 s apart from
/// `start_s` (seconds), with the steps in a scrambled order so that the
/// file is out of order over its whole range; and the expected data.
fn generate(series: usize, steps: usize, start_s: i64) -> (String, Data) {
    let metrics = [
        "http_requests_total",
        "node_load1",
        "queue_depth",
        "temp_celsius",
    ];
    let mut text = String::with_capacity(series * steps * 60);
    let mut want = Data::new();
    for m in metrics {
        text.push_str(&format!("# HELP {m} generated\n# TYPE {m} gauge\n"));
    }
    let labels_of = |s: usize| {
        let m = metrics[s % metrics.len()];
        (
            format!(
                "{m}{{instance=\"host-{}\",job=\"gen\",zone=\"z{}\"}}",
                s / 4,
                s % 3
            ),
            Labels::from_pairs([
                ("__name__", m.to_string()),
                ("instance", format!("host-{}", s / 4)),
                ("job", "gen".to_string()),
                ("zone", format!("z{}", s % 3)),
            ]),
        )
    };
    let names: Vec<(String, Labels)> = (0..series).map(labels_of).collect();
    // 7919 is prime and does not divide `steps`: a permutation.
    for k in 0..steps {
        let i = (k * 7919) % steps;
        let ts = start_s + 15 * i as i64;
        for (s, (name, _)) in names.iter().enumerate() {
            let v = value(s, i);
            let vs = if v.is_nan() {
                "NaN".to_string()
            } else if v.is_infinite() {
                if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
            } else {
                format!("{v:?}")
            };
            text.push_str(name);
            text.push(' ');
            text.push_str(&vs);
            text.push(' ');
            text.push_str(&ts.to_string());
            text.push('\n');
        }
    }
    text.push_str("# EOF\n");
    for (s, (_, labels)) in names.iter().enumerate() {
        let v = (0..steps)
            .map(|i| {
                let x = value(s, i);
                // A scraped NaN is stored as Prometheus's "normal NaN".
                let bits = if x.is_nan() {
                    vigil_scrape::parse::NORMAL_NAN_BITS
                } else {
                    x.to_bits()
                };
                ((start_s + 15 * i as i64) * 1000, bits)
            })
            .collect();
        want.insert(labels.clone(), v);
    }
    (text, want)
}

#[test]
fn a_million_samples_out_of_order_read_back_exactly() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("metrics.om");
    // 1000 series x 1000 samples, 15 s apart: about 4h10m from an hour
    // boundary plus 30 min, so 2h blocks start mid-range.
    let start_s = 1_700_001_800;
    let (text, want) = generate(1000, 1000, start_s);
    std::fs::write(&file, &text).unwrap();
    let data = dir.path().join("data");
    let out = vigil()
        .args(["tsdb", "import", "openmetrics"])
        .arg(&file)
        .arg("--storage.tsdb.path")
        .arg(&data)
        // Several batches, merged at the end.
        .args(["--max-samples-in-memory", "300000"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("imported 1000000 samples of 1000 series into 3 block(s)"),
        "{stdout}"
    );
    // Blocks are aligned 2h ranges, one per range.
    let db = Db::open(&data, Options::default()).unwrap();
    let mut ranges: Vec<(i64, i64)> = db
        .blocks()
        .iter()
        .map(|b| (b.min_time, b.max_time))
        .collect();
    ranges.sort();
    let first = start_s * 1000 / (2 * H) * (2 * H);
    assert_eq!(
        ranges,
        vec![
            (first, first + 2 * H),
            (first + 2 * H, first + 4 * H),
            (first + 4 * H, first + 6 * H)
        ]
    );
    assert_eq!(
        db.blocks().iter().map(|b| b.stats.num_samples).sum::<u64>(),
        1_000_000
    );
    drop(db);
    // Sample for sample, bit for bit.
    let got = read_dir(&data);
    assert_eq!(got.len(), want.len());
    assert_eq!(got, want);
    // No staging directory or other leftover (the WAL and head directories
    // are the reading database's).
    let names = entries(&data);
    assert!(
        names
            .iter()
            .all(|e| ["LOCK", "wal", "chunks_head"].contains(&e.as_str()) || e.len() == 26),
        "{names:?}"
    );
}

#[test]
fn stdin_and_the_promtool_spelling_work() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("out");
    let mut child = vigil()
        .args(["tsdb", "create-blocks-from", "openmetrics", "-"])
        .arg(&data)
        .args(["--label", "source=backfill", "--quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            b"# TYPE up gauge\nup{job=\"a\"} 1 1700000000\nup{job=\"a\"} 0 1699990000.5\n# EOF\n",
        )
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = read_dir(&data);
    let l = Labels::from_pairs([("__name__", "up"), ("job", "a"), ("source", "backfill")]);
    assert_eq!(
        got[&l],
        vec![
            (1_699_990_000_500, 0f64.to_bits()),
            (1_700_000_000_000, 1f64.to_bits())
        ]
    );
}

#[test]
fn a_malformed_file_gives_line_numbers_and_leaves_nothing() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    // A data directory with an earlier import in it.
    let data = dir.path().join("data");
    let good = dir.path().join("good.om");
    std::fs::write(&good, "a{x=\"1\"} 1 1700000000\n# EOF\n").unwrap();
    let out = vigil()
        .args(["tsdb", "import", "openmetrics", "-q"])
        .arg(&good)
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success());
    // (Reading opens a database, which adds its WAL and head directories.)
    let before_data = read_dir(&data);
    let before = entries(&data);

    // Good lines around bad ones; a bad batch of blocks is already written
    // to staging (small memory limit) before the first bad line.
    let mut text = String::new();
    for i in 0..5000 {
        text.push_str(&format!(
            "ok{{i=\"{}\"}} {i} {}\n",
            i % 10,
            1_600_000_000 + i
        ));
    }
    text.push_str("no_timestamp 1\n"); // line 5001
    text.push_str("bad_value{a=\"b\"} one 1600000000\n"); // 5002
    text.push_str("dup{a=\"1\",a=\"2\"} 1 1600000000\n"); // 5003
    text.push_str("{} 1 1600000000\n"); // 5004
    text.push_str("ok 1 1600000000\n"); // 5005
    text.push_str("# EOF\n"); // 5006
    let bad = dir.path().join("bad.om");
    std::fs::write(&bad, &text).unwrap();
    let out = vigil()
        .args(["tsdb", "import", "openmetrics"])
        .arg(&bad)
        .arg("--storage.tsdb.path")
        .arg(&data)
        .args(["--max-samples-in-memory", "1000"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("4 bad lines"), "{err}");
    for want in [
        "line 5001: no_timestamp: no timestamp",
        "line 5002: invalid value near \"one 1600000000\"",
        "line 5003: dup{a=\"1\",a=\"2\"}: duplicate label name",
        "line 5004: series has no metric name",
        "nothing was written",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    assert_eq!(entries(&data), before);
    assert_eq!(read_dir(&data), before_data);

    // Into a directory that did not exist: it is not created.
    let fresh = dir.path().join("fresh");
    let out = vigil()
        .args(["tsdb", "import", "openmetrics"])
        .arg(&bad)
        .arg(&fresh)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!fresh.exists());

    // A truncated file (no # EOF) is refused as well.
    std::fs::write(&bad, "a 1 1700000000\nb 2 1700000000").unwrap();
    let out = vigil()
        .args(["tsdb", "import", "openmetrics"])
        .arg(&bad)
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 2: data does not end with # EOF"),
        "{err}"
    );
    assert_eq!(entries(&data), before);
}

/// `vigil tsdb import rules` against the vigil on `port` over `range`
/// (seconds) into `out`, with `extra` flags.
fn import_rules(
    port: u16,
    (start, end): (i64, i64),
    out: &Path,
    rules: &Path,
    extra: &[String],
) -> std::process::Output {
    vigil()
        .args(["tsdb", "import", "rules", "--quiet"])
        .arg(format!("--url=http://127.0.0.1:{port}"))
        .arg(format!("--start={start}"))
        .arg(format!("--end={end}"))
        .arg("--output-dir")
        .arg(out)
        .args(extra)
        .arg(rules)
        .output()
        .unwrap()
}

#[test]
fn recording_rules_are_backfilled_from_a_running_vigil() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    // Source data: m{job="a"} with values 1..4 and m{job="b"} with 10 and
    // 20, every 15 s over 6 hours.
    let t0: i64 = 1_699_999_200; // a 2h boundary, in seconds
    let mut text = String::new();
    for k in 0..(6 * 240) {
        let ts = t0 + 15 * k;
        for (job, vals) in [("a", &[1, 2, 3, 4][..]), ("b", &[10, 20][..])] {
            for (i, v) in vals.iter().enumerate() {
                text.push_str(&format!("m{{job=\"{job}\",i=\"{i}\"}} {v} {ts}\n"));
            }
        }
    }
    text.push_str("# EOF\n");
    let src = dir.path().join("src.om");
    std::fs::write(&src, text).unwrap();
    let served = dir.path().join("served");
    import_openmetrics(&src, &served);

    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 1m\n").unwrap();
    let rules = dir.path().join("rules.yml");
    std::fs::write(
        &rules,
        "groups:\n- name: backfill\n  interval: 1m\n  rules:\n  \
         - record: job:m:sum\n    expr: sum by (job) (m)\n    labels:\n      source: backfill\n  \
         - alert: Never\n    expr: m > 100\n",
    )
    .unwrap();
    // The server asks for a token (--web.config.file); the backfill sends
    // it from --http.bearer-token-file.
    let token = "backfill-token-0123456789";
    std::fs::write(dir.path().join("token"), format!("{token}\n")).unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        format!(
            "bearer_tokens:\n  - name: backfill\n    token: {token}\n    role: read\n\
             open_health_endpoints: true\n"
        ),
    )
    .unwrap();
    let (server, port) = serve(
        &served,
        &config,
        &[format!("--web.config.file={}", web.display())],
    );

    // Without the token: refused, and nothing is written.
    let refused = dir.path().join("refused");
    let out = import_rules(port, (t0 + 1800, t0 + 3600), &refused, &rules, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("401"), "{stderr}");
    assert!(!refused.exists() || read_dir(&refused).is_empty());

    let out_dir = dir.path().join("recorded");
    let (start, end) = (t0 + 1800, t0 + 5 * 3600 + 600); // 00:30 to 05:10
    let token_flag = format!(
        "--http.bearer-token-file={}",
        dir.path().join("token").display()
    );
    let out = import_rules(port, (start, end), &out_dir, &rules, &[token_flag]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("1 alerting rule(s) skipped"), "{stderr}");

    let got = read_dir(&out_dir);
    let want_sum = [("a", 10.0), ("b", 30.0)];
    assert_eq!(got.len(), 2, "{got:?}");
    for (job, sum) in want_sum {
        let l = Labels::from_pairs([
            ("__name__", "job:m:sum"),
            ("job", job),
            ("source", "backfill"),
        ]);
        let samples = &got[&l];
        // One evaluation a minute, aligned as the group's, over the range.
        let (first, last) = (samples[0].0, samples[samples.len() - 1].0);
        assert!(
            first >= start * 1000 && first < start * 1000 + 60_000,
            "{first}"
        );
        assert!(last <= end * 1000 && last > end * 1000 - 60_000, "{last}");
        assert_eq!(samples.len() as i64, (last - first) / 60_000 + 1);
        for w in samples.windows(2) {
            assert_eq!(w[1].0 - w[0].0, 60_000);
        }
        assert!(
            samples.iter().all(|&(_, v)| f64::from_bits(v) == sum),
            "{job}"
        );
    }
    // Aligned 2h blocks.
    let db = Db::open(&out_dir, Options::default()).unwrap();
    for b in db.blocks() {
        assert_eq!(b.min_time % (2 * H), 0);
        assert_eq!(b.max_time - b.min_time, 2 * H);
    }
    drop(db);

    // A server that does not answer: an error, and nothing is written.
    drop(server);
    let none = dir.path().join("none");
    let out = import_rules(port, (start, end), &none, &rules, &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("rule \"job:m:sum\""), "{stderr}");
    assert!(!none.exists());
}
