use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("prometheus.yml"))
}

fn err(text: &str) -> (Option<usize>, String) {
    match parse(text) {
        Ok(c) => panic!("accepted: {c:?}"),
        Err(ConfigError::Invalid { line, reason, .. }) => (line, reason),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn empty_file_is_prometheus_defaults() {
    let c = parse("").unwrap();
    assert_eq!(c.global, GlobalConfig::default());
    assert_eq!(c.global.scrape_interval, 60_000);
    assert_eq!(c.global.scrape_timeout, 10_000);
    assert_eq!(c.storage, StorageConfig::default());
}

#[test]
fn global_and_storage_sections() {
    let c = parse(
        "global:\n  scrape_interval: 15s\n  evaluation_interval: 30s\n  external_labels:\n    \
         cluster: eu1\n    replica: a\nstorage:\n  tsdb:\n    out_of_order_time_window: 30m\n    \
         retention:\n      time: 30d\n      size: 10GB\n",
    )
    .unwrap();
    assert_eq!(c.global.scrape_interval, 15_000);
    assert_eq!(c.global.scrape_timeout, 10_000);
    assert_eq!(c.global.evaluation_interval, 30_000);
    assert_eq!(c.global.external_labels.get("cluster"), Some("eu1"));
    assert_eq!(c.global.external_labels.len(), 2);
    assert_eq!(c.storage.out_of_order_time_window, Some(1_800_000));
    assert_eq!(c.storage.retention_time, Some(30 * 86_400_000));
    assert_eq!(c.storage.retention_size, Some(10 << 30));
}

#[test]
fn retention_rules_by_selector() {
    let c = parse(
        "storage:\n  tsdb:\n    retention:\n      time: 90d\n    retention_rules:\n    \
         - matchers: ['{__name__=~\"debug_.*\"}', 'trace_spans_total']\n      retention: 7d\n    \
         - matchers: ['{job=\"batch\", env!=\"prod\"}']\n      retention: 36h\n",
    )
    .unwrap();
    let rules = c.storage.retention_rules.rules();
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[0].retention(), 7 * 86_400_000);
    assert_eq!(rules[0].selectors().len(), 2);
    assert_eq!(rules[1].retention(), 36 * 3_600_000);
    let debug = vigil_model::labels!("__name__" => "debug_x", "job" => "batch");
    assert_eq!(c.storage.retention_rules.rule_for(&debug), Some(0));
    let batch = vigil_model::labels!("__name__" => "x", "job" => "batch", "env" => "dev");
    assert_eq!(c.storage.retention_rules.rule_for(&batch), Some(1));
    let other = vigil_model::labels!("__name__" => "x", "job" => "batch", "env" => "prod");
    assert_eq!(c.storage.retention_rules.rule_for(&other), None);
}

#[test]
fn bad_retention_rules_are_refused_with_their_line() {
    let head = "storage:\n  tsdb:\n    retention_rules:\n";
    let (line, reason) = err(&format!(
        "{head}    - matchers: ['up']\n      retention: 1d\n    - matchers: ['{{job=~\"a\"']\n      retention: 1d\n"
    ));
    assert_eq!(line, Some(6));
    assert!(reason.contains("retention_rules[1]: matcher"), "{reason}");
    let (line, reason) = err(&format!(
        "{head}    - matchers: ['{{job=~\".*\"}}']\n      retention: 1d\n"
    ));
    assert_eq!(line, Some(4));
    assert!(reason.contains("retention_rules[0]"), "{reason}");
    let (_, reason) = err(&format!("{head}    - matchers: []\n      retention: 1d\n"));
    assert!(reason.contains("at least one selector"), "{reason}");
    let (_, reason) = err(&format!(
        "{head}    - matchers: ['up']\n      retention: 0s\n"
    ));
    assert!(reason.contains("retention must be positive"), "{reason}");
    let (line, reason) = err(&format!("{head}    - matchers: ['up']\n"));
    assert_eq!(line, Some(4));
    assert!(reason.contains("retention"), "{reason}");
    let (line, reason) = err(&format!(
        "{head}    - matchers: ['up']\n      retention: 1d\n      keep: forever\n"
    ));
    assert_eq!(line, Some(6));
    assert!(reason.contains("keep"), "{reason}");
}

#[test]
fn a_short_interval_shortens_the_default_timeout() {
    let c = parse("global:\n  scrape_interval: 5s\n").unwrap();
    assert_eq!(c.global.scrape_timeout, 5_000);
    let (line, reason) = err("global:\n  scrape_interval: 5s\n  scrape_timeout: 10s\n");
    assert_eq!(line, Some(3));
    assert!(reason.contains("greater than"), "{reason}");
}

#[test]
fn unknown_keys_are_errors_with_key_and_line() {
    let (line, reason) = err("global:\n  scrape_interval: 15s\n  scrape_intervall: 1m\n");
    assert_eq!(line, Some(3));
    assert!(reason.contains("scrape_intervall"), "{reason}");
    let (line, reason) = err("global: {}\nfoo: bar\n");
    assert_eq!(line, Some(2));
    assert!(reason.contains("foo"), "{reason}");
    let (line, reason) = err("storage:\n  tsdb:\n    out_of_order: 1m\n");
    assert_eq!(line, Some(3));
    assert!(reason.contains("out_of_order"), "{reason}");
}

#[test]
fn bad_values_name_the_problem_and_line() {
    let (line, reason) = err("global:\n  scrape_interval: 15 s\n");
    assert_eq!(line, Some(2));
    assert!(reason.contains("15 s"), "{reason}");
    let (line, reason) = err("storage:\n  tsdb:\n    retention:\n      size: lots\n");
    assert_eq!(line, Some(4));
    assert!(reason.contains("lots"), "{reason}");
    let (line, reason) = err("global:\n  external_labels:\n    __x: y\n");
    assert_eq!(line, Some(3));
    assert!(reason.contains("__x"), "{reason}");
    let (_, reason) = err("global: [1, 2]\n");
    assert!(!reason.is_empty());
    let (_, reason) = err("{{{{ not yaml");
    assert!(!reason.is_empty());
}

#[test]
fn sections_not_run_yet_are_errors_unless_empty() {
    let (l, reason) = err("remote_read:\n  - url: http://x/api/v1/read\n");
    assert!(
        reason.contains("remote_read") && reason.contains("not supported yet"),
        "{reason}"
    );
    let l = l.expect("a line");
    assert!((1..=4).contains(&l), "remote_read: line {l}");
    let c = parse("rule_files: []\nremote_write: []\n").unwrap();
    assert_eq!(c.global, GlobalConfig::default());
}

#[test]
fn remote_write_section() {
    let c = parse(
        "remote_write:\n  - url: http://vm:8428/api/v1/write\n    name: vm\n    remote_timeout: 10s\n    \
         headers: {X-Scope-OrgID: team}\n    write_relabel_configs:\n      - source_labels: [__name__]\n        \
         regex: 'debug_.*'\n        action: drop\n    queue_config: {max_shards: 8}\n",
    )
    .unwrap();
    assert_eq!(c.remote_write.len(), 1);
    let rw = &c.remote_write[0];
    assert_eq!(rw.name, "vm");
    assert_eq!(rw.remote_timeout.0, 10_000);
    assert_eq!(rw.queue_config.max_shards, 8);
    assert_eq!(rw.queue_config.capacity, 10_000);
    assert_eq!(rw.write_relabel_configs.len(), 1);
    // Errors name the section and its line.
    let (l, reason) = err("global: {}\nremote_write:\n  - url: ftp://x/\n");
    assert!(
        reason.contains("remote_write") && reason.contains("scheme"),
        "{reason}"
    );
    assert_eq!(l, Some(2));
    let (_, reason) = err("remote_write:\n  - url: http://x/\n    bogus: 1\n");
    assert!(reason.contains("bogus"), "{reason}");
}

#[test]
fn errors_print_file_line_and_reason() {
    let e = parse("global:\n  bogus: 1\n").unwrap_err();
    let s = e.to_string();
    assert!(s.starts_with("prometheus.yml:2:"), "{s}");
    assert!(s.contains("bogus"), "{s}");
    let e = Config::load(Path::new("/nonexistent/vigil.yml")).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }));
}

#[test]
fn embedded_default_parses() {
    let text = default_config_text("127.0.0.1:9090");
    let c = Config::parse(&text, Path::new("<embedded default>")).unwrap();
    assert_eq!(c.global.scrape_interval, 15_000);
    assert_eq!(c.scrape_configs.len(), 1);
    assert_eq!(c.scrape_configs[0].job_name, "vigil");
    assert_eq!(Config::embedded_default("127.0.0.1:9090"), c);
}

#[test]
fn scrape_configs_are_read_and_checked() {
    let c = parse(
        "global:\n  scrape_interval: 10s\nscrape_configs:\n  - job_name: node\n    \
         static_configs:\n      - targets: ['localhost:9100']\n        labels:\n          \
         env: prod\n  - job_name: app\n    scrape_interval: 5s\n    metrics_path: /api/metrics\n    \
         static_configs:\n      - targets: ['localhost:3000']\n",
    )
    .unwrap();
    assert_eq!(c.scrape_configs.len(), 2);
    assert_eq!(c.scrape_configs[1].metrics_path, "/api/metrics");

    // A duplicate job is reported at its second definition.
    let (line, reason) = err(
        "scrape_configs:\n  - job_name: a\n    static_configs: [{targets: ['x:1']}]\n  \
         - job_name: a\n    static_configs: [{targets: ['x:2']}]\n",
    );
    assert_eq!(line, Some(4), "{reason}");
    assert!(reason.contains("\"a\""), "{reason}");
    // An unknown key inside a scrape config names it and its line.
    let (line, reason) = err("scrape_configs:\n  - job_name: a\n    scrape_intervl: 5s\n");
    assert_eq!(line, Some(3));
    assert!(reason.contains("scrape_intervl"), "{reason}");
    // A timeout over the interval.
    let (line, reason) = err(
        "scrape_configs:\n  - job_name: slow\n    scrape_interval: 5s\n    scrape_timeout: 10s\n",
    );
    assert_eq!(line, Some(2));
    assert!(reason.contains("greater than"), "{reason}");
}

#[test]
fn rule_files_and_alertmanagers() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("rules")).unwrap();
    std::fs::write(d.path().join("rules/a.yml"), "groups: []\n").unwrap();
    std::fs::write(d.path().join("rules/b.yml"), "groups: []\n").unwrap();
    let cfg = d.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        "rule_files:\n  - rules/*.yml\n  - missing.yml\nalerting:\n  alertmanagers:\n    \
         - static_configs:\n        - targets: ['127.0.0.1:9093']\n      path_prefix: /am\n",
    )
    .unwrap();
    let c = Config::load(&cfg).unwrap();
    assert_eq!(c.rule_files, ["rules/*.yml", "missing.yml"]);
    assert_eq!(
        c.rule_file_paths,
        [d.path().join("rules/a.yml"), d.path().join("rules/b.yml")]
    );
    let am = &c.alerting.alertmanagers[0];
    assert_eq!(am.timeout, 10_000);
    assert_eq!(
        am.url(&am.targets[0]),
        "http://127.0.0.1:9093/am/api/v2/alerts"
    );
    let (line, reason) = err("alerting:\n  alertmanagers:\n  - api_version: v1\n");
    assert_eq!(line, Some(3));
    assert!(reason.contains("v1"), "{reason}");
    let (line, reason) = err("alerting:\n  alert_relabel_configs: []\n");
    assert_eq!(line, Some(2));
    assert!(reason.contains("alert_relabel_configs"), "{reason}");
}

#[test]
fn notify_receiver_paths_are_relative_to_the_file_they_are_in() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("am")).unwrap();
    let receivers = "route: {receiver: team}
receivers:
  - name: team
    webhook_configs:
      - url_file: secrets/hook.url
        http_config:
          bearer_token_file: hook.token
          tls_config: {ca_file: ca.pem}
      - url_file: /etc/am/hook.url
        http_config:
          basic_auth: {username: u, password_file: /etc/am/basic.pass}
    slack_configs:
      - api_url_file: slack.url
    email_configs:
      - to: a@example.com
        from: b@example.com
        smarthost: smtp:587
        auth_password_file: smtp.pass
        tls_config: {ca_file: /etc/ssl/smtp-ca.pem}
    sms_configs:
      - preset: twilio
        account_sid: AC1
        auth_token_file: ../twilio.token
        to: ['+1']
";
    std::fs::write(d.path().join("am/alertmanager.yml"), receivers).unwrap();
    let cfg = d.path().join("vigil.yml");
    let check = |base: &Path, n: &NotifySection| {
        let r = &n.config.receivers[0];
        let w = &r.webhook_configs[0];
        assert_eq!(w.url_file, Some(base.join("secrets/hook.url")));
        let h = w.http_config.as_ref().unwrap();
        assert_eq!(h.bearer_token_file, Some(base.join("hook.token")));
        let tls = h.tls_config.as_ref().unwrap();
        assert_eq!(tls.ca_file, Some(base.join("ca.pem")));
        // Absolute paths are left alone.
        let w = &r.webhook_configs[1];
        assert_eq!(w.url_file, Some(PathBuf::from("/etc/am/hook.url")));
        let basic = w.http_config.as_ref().unwrap().basic_auth.as_ref();
        assert_eq!(
            basic.unwrap().password_file,
            Some(PathBuf::from("/etc/am/basic.pass"))
        );
        let e = &r.email_configs[0];
        assert_eq!(e.auth_password_file, Some(base.join("smtp.pass")));
        let tls = e.tls_config.as_ref().unwrap();
        assert_eq!(tls.ca_file, Some(PathBuf::from("/etc/ssl/smtp-ca.pem")));
        assert_eq!(
            r.slack_configs[0].api_url_file,
            Some(base.join("slack.url"))
        );
        assert_eq!(
            r.sms_configs[0].auth_token_file,
            Some(base.join("../twilio.token"))
        );
    };

    // From `notify: {file: ...}`: relative to that file's directory.
    std::fs::write(&cfg, "notify: {file: am/alertmanager.yml}\n").unwrap();
    let n = Config::load(&cfg).unwrap().notify.unwrap();
    check(&d.path().join("am"), &n);
    assert_eq!(n.text, receivers, "the text as written, for /api/v2/status");

    // Inline: relative to the configuration file's directory.
    let inline: String = receivers.lines().map(|l| format!("  {l}\n")).collect();
    std::fs::write(&cfg, format!("notify:\n{inline}")).unwrap();
    let n = Config::load(&cfg).unwrap().notify.unwrap();
    check(d.path(), &n);
}

#[test]
fn notify_file_is_read_relative_to_the_config_file() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("am")).unwrap();
    let am = "global:\n  slack_api_url_file: slack.url\nroute: {receiver: team}\n\
              receivers: [{name: team}]\ntemplates: ['*.tmpl', /etc/am/*.tmpl]\n";
    std::fs::write(d.path().join("am/alertmanager.yml"), am).unwrap();
    let cfg = d.path().join("vigil.yml");
    std::fs::write(&cfg, "global: {}\nnotify:\n  file: am/alertmanager.yml\n").unwrap();
    let n = Config::load(&cfg)
        .unwrap()
        .notify
        .expect("a notify section");
    assert_eq!(n.text, am, "the file's text, for /api/v2/status");
    assert_eq!(n.config.receivers[0].name, "team");
    // Relative paths in the file are relative to its own directory, as
    // Alertmanager has them.
    let am_dir = d.path().join("am");
    assert_eq!(
        n.config.templates,
        [
            am_dir.join("*.tmpl").to_string_lossy().into_owned(),
            "/etc/am/*.tmpl".to_string()
        ]
    );
    assert_eq!(
        n.config.global.slack_api_url_file.as_deref(),
        Some(am_dir.join("slack.url").to_str().unwrap())
    );
    // Inline, they are relative to the configuration file's directory.
    std::fs::write(
        &cfg,
        "notify:\n  route: {receiver: team}\n  receivers: [{name: team}]\n  templates: ['*.tmpl']\n",
    )
    .unwrap();
    let n = Config::load(&cfg).unwrap().notify.unwrap();
    assert_eq!(
        n.config.templates,
        [d.path().join("*.tmpl").to_string_lossy().into_owned()]
    );

    // A missing file names the section's line, the path it was looked
    // for at and why.
    std::fs::write(&cfg, "global: {}\nnotify: {file: am/missing.yml}\n").unwrap();
    let e = Config::load(&cfg).unwrap_err().to_string();
    let missing = am_dir.join("missing.yml");
    assert!(
        e.starts_with(&format!(
            "{}:2: notify.file {}: ",
            cfg.display(),
            missing.display()
        )),
        "{e}"
    );
    assert!(e.contains("No such file"), "{e}");
    // An invalid file names itself, the line and the key.
    std::fs::write(
        d.path().join("am/bad.yml"),
        "route: {receiver: team}\nreceivers: [{name: team}]\nrecievers: []\n",
    )
    .unwrap();
    std::fs::write(&cfg, "notify: {file: am/bad.yml}\n").unwrap();
    let e = Config::load(&cfg).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            "{}:1: {}:3: ",
            cfg.display(),
            am_dir.join("bad.yml").display()
        )),
        "{e}"
    );
    assert!(e.contains("recievers"), "{e}");
    // A file that parses but does not hold together: the route's receiver
    // is not defined.
    std::fs::write(
        d.path().join("am/bad.yml"),
        "route: {receiver: nobody}\nreceivers: [{name: team}]\n",
    )
    .unwrap();
    let e = Config::load(&cfg).unwrap_err().to_string();
    assert!(e.contains("notify: ") && e.contains("nobody"), "{e}");
    let (line, reason) = err("notify: {file: [a, b]}\n");
    assert_eq!(line, Some(1));
    assert_eq!(reason, "notify.file must be a path");
}
