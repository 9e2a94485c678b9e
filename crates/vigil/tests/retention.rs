//! Retention by series through the binary: `storage.tsdb.retention_rules`
//! in the configuration file hides a governed series' expired samples from
//! queries, a reload applies new rules, and a bad file is refused with the
//! old rules kept.

mod common;

use common::{http, import_openmetrics, serve};

/// `count_over_time(<metric>[1d])` at `at` (seconds).
fn count(port: u16, metric: &str, at: i64) -> f64 {
    let (code, body) = http(
        port,
        "GET",
        &format!("/api/v1/query?query=count_over_time({metric}%5B1d%5D)&time={at}"),
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let result = v["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 1, "{body}");
    result[0]["value"][1].as_str().unwrap().parse().unwrap()
}

fn config(rules: &str) -> String {
    format!("global:\n  scrape_interval: 1m\nstorage:\n  tsdb:\n    retention_rules:\n{rules}")
}

#[test]
fn retention_rules_hide_expired_samples_and_follow_reloads() {
    let dir = tempfile::tempdir().unwrap();
    // debug_x and keep_x, one sample a minute over 10 hours.
    let t0: i64 = 1_699_999_200;
    let mut text = String::new();
    for k in 0..600 {
        let ts = t0 + 60 * k;
        text.push_str(&format!("debug_x 1 {ts}\nkeep_x 1 {ts}\n"));
    }
    text.push_str("# EOF\n");
    let src = dir.path().join("src.om");
    std::fs::write(&src, text).unwrap();
    let data = dir.path().join("data");
    import_openmetrics(&src, &data);

    let cfg = dir.path().join("prometheus.yml");
    let two_hours = "    - matchers: ['{__name__=~\"debug_.*\"}']\n      retention: 2h\n";
    std::fs::write(&cfg, config(two_hours)).unwrap();
    let (_server, port) = serve(&data, &cfg, &[]);
    let end = t0 + 60 * 599;
    // Retention counts back from the newest data: here the end of the
    // newest block, t0 + 10h (the head is empty). debug_x keeps its last
    // 2 hours, [t0 + 8h, t0 + 10h): 120 samples.
    assert_eq!(count(port, "keep_x", end), 600.0);
    assert_eq!(count(port, "debug_x", end), 120.0);

    // A bad file is refused and the rules in force stay.
    std::fs::write(
        &cfg,
        config("    - matchers: ['{__name__=~\"debug_.*\"']\n      retention: 1h\n"),
    )
    .unwrap();
    let (code, body) = http(port, "POST", "/-/reload").unwrap();
    assert_ne!(code, 200, "{body}");
    assert!(body.contains("retention_rules[0]"), "{body}");
    assert_eq!(count(port, "debug_x", end), 120.0);

    // A good one applies.
    std::fs::write(
        &cfg,
        config("    - matchers: ['debug_x']\n      retention: 1h\n"),
    )
    .unwrap();
    let (code, body) = http(port, "POST", "/-/reload").unwrap();
    assert_eq!(code, 200, "{body}");
    assert_eq!(count(port, "debug_x", end), 60.0);
    assert_eq!(count(port, "keep_x", end), 600.0);
}
