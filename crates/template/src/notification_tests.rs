//! Notification templates against Alertmanager's data model.

use std::collections::BTreeMap;

use super::{Data, RenderOptions, TemplateSet};

fn kv(pairs: &[(&str, &str)]) -> Data {
    Data::Kv(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn map(pairs: Vec<(&str, Data)>) -> Data {
    Data::Map(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

fn alert(status: &str, labels: &[(&str, &str)], summary: &str, ends: i64) -> Data {
    map(vec![
        ("Status", status.into()),
        ("Labels", kv(labels)),
        ("Annotations", kv(&[("summary", summary)])),
        ("StartsAt", Data::time_ms(1_700_000_000_000)),
        ("EndsAt", Data::Time(ends)),
        ("GeneratorURL", "http://prom/graph".into()),
        ("Fingerprint", "0123456789abcdef".into()),
    ])
}

/// Two alerts of a group by alertname: one firing, one resolved.
fn data() -> Data {
    map(vec![
        ("Receiver", "team-x".into()),
        ("Status", "firing".into()),
        (
            "Alerts",
            Data::List(vec![
                alert(
                    "firing",
                    &[
                        ("alertname", "HighLatency"),
                        ("severity", "critical"),
                        ("instance", "a:9090"),
                        ("job", "api"),
                    ],
                    "p99 above 1s",
                    Data::ZERO_TIME,
                ),
                alert(
                    "resolved",
                    &[
                        ("alertname", "HighLatency"),
                        ("severity", "critical"),
                        ("instance", "b:9090"),
                        ("job", "api"),
                    ],
                    "p99 above 1s",
                    1_700_000_600_000_000_000,
                ),
            ]),
        ),
        ("GroupLabels", kv(&[("alertname", "HighLatency")])),
        (
            "CommonLabels",
            kv(&[
                ("alertname", "HighLatency"),
                ("severity", "critical"),
                ("job", "api"),
            ]),
        ),
        ("CommonAnnotations", kv(&[("summary", "p99 above 1s")])),
        ("ExternalURL", "http://vigil:9090".into()),
        ("AckURL", "http://vigil:9090/ack/abc".into()),
    ])
}

fn render(text: &str) -> String {
    let set = TemplateSet::with_defaults();
    let opts = RenderOptions {
        now: Some(1_700_000_900.0),
        ..RenderOptions::default()
    };
    match set.render_with(text, &data(), &opts) {
        Ok(s) => s,
        Err(e) => panic!("{text}: {e}"),
    }
}

#[test]
fn subject_is_alertmanagers() {
    assert_eq!(
        render(r#"{{ template "__subject" . }}"#),
        "[FIRING:1] HighLatency (api critical)"
    );
    assert_eq!(
        render(r#"{{ template "email.default.subject" . }}"#),
        render(r#"{{ template "slack.default.title" . }}"#)
    );
}

#[test]
fn kv_methods_and_printing() {
    assert_eq!(
        render("{{ .CommonLabels.SortedPairs.Names | join \",\" }}"),
        "alertname,job,severity"
    );
    assert_eq!(
        render("{{ .CommonLabels.Values | join \" \" }}"),
        "HighLatency api critical"
    );
    assert_eq!(
        render("{{ (.CommonLabels.Remove .GroupLabels.Names).Names }}"),
        "[job severity]"
    );
    assert_eq!(
        render("{{ .CommonLabels }}"),
        "alertname=HighLatency, job=api, severity=critical"
    );
    assert_eq!(render("{{ .CommonLabels.severity }}"), "critical");
    assert_eq!(render("{{ .CommonLabels.missing }}|"), "|");
    assert_eq!(
        render("{{ range .GroupLabels.SortedPairs }}{{ .Name }}={{ .Value }};{{ end }}"),
        "alertname=HighLatency;"
    );
    assert_eq!(
        render("{{ range $k, $v := .CommonLabels }}{{ $k }}:{{ $v }} {{ end }}"),
        "alertname:HighLatency job:api severity:critical "
    );
    assert_eq!(
        render("{{ index .CommonLabels \"job\" }} {{ len .CommonLabels }}"),
        "api 3"
    );
}

#[test]
fn alerts_firing_resolved() {
    assert_eq!(
        render("{{ len .Alerts }} {{ len .Alerts.Firing }} {{ len .Alerts.Resolved }}"),
        "2 1 1"
    );
    assert_eq!(
        render("{{ range .Alerts.Firing }}{{ .Labels.instance }}{{ end }}"),
        "a:9090"
    );
    assert_eq!(
        render("{{ range .Alerts.Resolved }}{{ .Labels.instance }} {{ .Status }}{{ end }}"),
        "b:9090 resolved"
    );
    assert_eq!(
        render("{{ (index .Alerts 0).Labels.severity | toUpper }}"),
        "CRITICAL"
    );
}

#[test]
fn times() {
    assert_eq!(
        render("{{ (index .Alerts 0).StartsAt.Format \"2006-01-02T15:04:05Z07:00\" }}"),
        "2023-11-14T22:13:20Z"
    );
    assert_eq!(
        render("{{ (index .Alerts 0).StartsAt }}"),
        "2023-11-14 22:13:20 +0000 UTC"
    );
    // Firing alerts carry Go's zero time as EndsAt.
    assert_eq!(
        render("{{ (index .Alerts 0).EndsAt }} {{ (index .Alerts 0).EndsAt.IsZero }}"),
        "0001-01-01 00:00:00 +0000 UTC true"
    );
    assert_eq!(
        render("{{ (index .Alerts 1).EndsAt.Format \"15:04\" }}"),
        "22:23"
    );
    assert_eq!(
        render("{{ date \"2006-01-02 15:04 MST\" (index .Alerts 0).StartsAt }}"),
        "2023-11-14 22:13 UTC"
    );
    assert_eq!(render("{{ since (index .Alerts 0).StartsAt }}"), "15m0s");
    assert_eq!(
        render("{{ since (index .Alerts 0).StartsAt | humanizeDuration }}"),
        "15m 0s"
    );
    assert_eq!(render("{{ now.Unix }}"), "1700000900");
    if std::path::Path::new("/usr/share/zoneinfo/Europe/Berlin").exists() {
        assert_eq!(
            render(
                "{{ (index .Alerts 0).StartsAt | tz \"Europe/Berlin\" | date \"2006-01-02 15:04:05 -07:00 MST\" }}"
            ),
            "2023-11-14 23:13:20 +01:00 CET"
        );
        assert_eq!(
            render("{{ ((index .Alerts 0).StartsAt | tz \"Europe/Berlin\").Hour }}"),
            "23"
        );
    }
    let set = TemplateSet::new();
    let e = set
        .render("{{ now | tz \"Nowhere/Land\" }}", &Data::Nil)
        .unwrap_err();
    assert!(
        e.to_string().contains("unknown time zone Nowhere/Land"),
        "{e}"
    );
}

#[test]
fn alertmanager_functions() {
    assert_eq!(render("{{ \"  x y \" | trimSpace }}|"), "x y|");
    assert_eq!(render("{{ title \"hELLO wORLD\" }}"), "Hello World");
    assert_eq!(render("{{ stringSlice \"a\" \"b\" | join \"-\" }}"), "a-b");
    assert_eq!(
        render("{{ match \"^High\" .CommonLabels.alertname }}"),
        "true"
    );
    assert_eq!(
        render("{{ reReplaceAll \"(a):(\\\\d+)\" \"$2\" \"a:9090\" }}"),
        "9090"
    );
    assert_eq!(render("{{ safeHtml \"<b>\" }}"), "<b>");
    assert_eq!(render("{{ urlUnescape \"a%20b+c\" }}"), "a b c");
    assert_eq!(
        render("{{ toJson .GroupLabels }} {{ toJson (stringSlice \"<a>\") }}"),
        "{\"alertname\":\"HighLatency\"} [\"\\u003ca\\u003e\"]"
    );
    assert_eq!(render("{{ humanizeDuration 3725 }}"), "1h 2m 5s");
    // Prometheus-only functions are not defined here.
    let e = TemplateSet::new()
        .render("{{ query \"up\" }}", &Data::Nil)
        .unwrap_err();
    assert!(
        e.to_string().contains("function \"query\" not defined"),
        "{e}"
    );
}

#[test]
fn text_alert_list_and_defaults_render() {
    let list = render(r#"{{ template "__text_alert_list" .Alerts.Firing }}"#);
    assert_eq!(
        list,
        "Labels:\n - alertname = HighLatency\n - instance = a:9090\n - job = api\n - severity = critical\nAnnotations:\n - summary = p99 above 1s\nSource: http://prom/graph\n"
    );
    let text = render(r#"{{ template "email.default.text" . }}"#);
    assert!(
        text.starts_with("[FIRING:1] HighLatency (api critical)\n"),
        "{text}"
    );
    assert!(text.contains("Alerts Firing:\nLabels:"), "{text}");
    assert!(text.contains("Alerts Resolved:\nLabels:"), "{text}");
    assert!(
        text.contains("Acknowledge: http://vigil:9090/ack/abc"),
        "{text}"
    );
    let html = render(r#"{{ template "email.default.html" . }}"#);
    assert!(html.contains("<title>[FIRING:1] HighLatency (api critical)</title>"));
    assert!(html.contains("[1] Firing"), "{html}");
    assert!(html.contains("instance = a:9090<br />"), "{html}");
    assert!(
        html.contains("href=\"http://vigil:9090/ack/abc\""),
        "{html}"
    );
    let slack = render(r#"{{ template "slack.default.text" . }}"#);
    assert_eq!(
        slack,
        "*FIRING* HighLatency [critical]: p99 above 1s\n*RESOLVED* HighLatency [critical]: p99 above 1s\n<http://vigil:9090/ack/abc|Acknowledge>"
    );
    let sms = render(r#"{{ template "sms.default.message" . }}"#);
    assert_eq!(
        sms,
        "[FIRING:1] HighLatency (api critical) - p99 above 1s Ack: http://vigil:9090/ack/abc"
    );
    assert_eq!(
        render(r#"{{ template "slack.default.titlelink" . }}"#),
        "http://vigil:9090/#/alerts?receiver=team-x"
    );
}

#[test]
fn html_is_escaped_in_the_default_email() {
    let mut d = data();
    if let Data::Map(m) = &mut d {
        if let Some(Data::List(alerts)) = m.get_mut("Alerts") {
            if let Some(Data::Map(a)) = alerts.get_mut(0) {
                a.insert(
                    "Annotations".into(),
                    kv(&[("summary", "<script>x</script>")]),
                );
            }
        }
    }
    let html = TemplateSet::with_defaults()
        .execute("email.default.html", &d)
        .unwrap();
    assert!(!html.contains("<script>"));
    assert!(html.contains("&lt;script&gt;"));
}

#[test]
fn defines_across_files_later_wins() {
    let mut set = TemplateSet::with_defaults();
    set.add(
        "a.tmpl",
        r#"{{ define "my.title" }}{{ .Status }}: {{ template "my.inner" . }}{{ end }}"#,
    )
    .unwrap();
    set.add("b.tmpl", r#"{{ define "my.inner" }}inner-b{{ end }}"#)
        .unwrap();
    let d = data();
    assert_eq!(
        set.render(r#"{{ template "my.title" . }}"#, &d).unwrap(),
        "firing: inner-b"
    );
    // A user file overrides a default.
    set.add("c.tmpl", r#"{{ define "__subject" }}custom{{ end }}"#)
        .unwrap();
    assert_eq!(set.execute("slack.default.title", &d).unwrap(), "custom");
    assert!(set.has("my.inner"));
    assert!(!set.has("nope"));
    let e = set.render(r#"{{ template "nope" . }}"#, &d).unwrap_err();
    assert!(
        e.to_string().contains("template \"nope\" not defined"),
        "{e}"
    );
    // An error inside a define names its file and position.
    set.add(
        "d.tmpl",
        "{{ define \"bad\" }}\n  {{ .Status.Nope }}{{ end }}",
    )
    .unwrap();
    let e = set.render(r#"{{ template "bad" . }}"#, &d).unwrap_err();
    assert_eq!(e.name, "d.tmpl");
    assert_eq!((e.line, e.column), (2, 6));
    assert_eq!(e.executing, "bad");
    // Parse errors in a file are reported with its name.
    let e = set.add("e.tmpl", "{{ if }}").unwrap_err();
    assert_eq!(e.name, "e.tmpl");
}

#[test]
fn globs_load_files() {
    let dir = std::env::temp_dir().join(format!("vigil-tmpl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.tmpl"), r#"{{ define "x" }}from-a{{ end }}"#).unwrap();
    std::fs::write(dir.join("b.tmpl"), r#"{{ define "x" }}from-b{{ end }}"#).unwrap();
    let mut set = TemplateSet::new();
    let n = set.add_glob(&format!("{}/*.tmpl", dir.display())).unwrap();
    assert_eq!(n, 2);
    assert_eq!(set.execute("x", &Data::Nil).unwrap(), "from-b");
    assert_eq!(
        set.add_glob(&format!("{}/*.none", dir.display())).unwrap(),
        0
    );
    std::fs::write(dir.join("c.tmpl"), "{{ end }}").unwrap();
    assert!(set.add_glob(&format!("{}/*.tmpl", dir.display())).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn empty_text_and_misc() {
    let set = TemplateSet::with_defaults();
    assert_eq!(set.render("", &data()).unwrap(), "");
    let mut m = BTreeMap::new();
    m.insert("N".to_string(), Data::Int(3));
    m.insert("F".to_string(), Data::Float(1.5));
    m.insert("B".to_string(), Data::Bool(true));
    let d = Data::Map(m);
    assert_eq!(
        set.render("{{ .N }} {{ .F }} {{ .B }} {{ .Missing }}", &d)
            .unwrap(),
        "3 1.5 true <no value>"
    );
    assert_eq!(
        set.render("{{ if gt .N 2 }}big{{ end }}", &d).unwrap(),
        "big"
    );
}
