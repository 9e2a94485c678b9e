//! Unit tests of configuration parsing and building.

use super::*;

fn parse(yaml: &str) -> ReceiverConfig {
    match serde_yaml_ng::from_str(yaml) {
        Ok(c) => c,
        Err(e) => panic!("{yaml}: {e}"),
    }
}

#[test]
fn alertmanager_keys_parse_with_defaults() {
    let c = parse(
        r#"
name: team
webhook_configs:
  - url: http://127.0.0.1:1/hook
    max_alerts: 3
    timeout: 10s
    http_config:
      basic_auth: { username: u, password: p }
slack_configs:
  - api_url: https://hooks.slack.com/services/x
    channel: '#alerts'
    fields: [{ title: a, value: b, short: true }]
email_configs:
  - to: a@example.com
    from: vigil@example.com
    smarthost: localhost:25
    require_tls: false
    headers: { X-Team: ops }
sms_configs:
  - preset: twilio
    account_sid: AC1
    auth_token: s3cr3t-token
    from: '+1555'
    to: ['+1666']
pagerduty_configs:
  - routing_key: x
"#,
    );
    assert!(c.webhook_configs[0].send_resolved);
    assert_eq!(c.webhook_configs[0].max_alerts, 3);
    assert_eq!(
        c.webhook_configs[0].timeout,
        Some(std::time::Duration::from_secs(10))
    );
    assert!(!c.slack_configs[0].send_resolved);
    assert!(!c.email_configs[0].send_resolved);
    assert!(!c.sms_configs[0].send_resolved);
    assert_eq!(c.sms_configs[0].max_length, 160);
    assert_eq!(c.unsupported, vec![("pagerduty_configs".to_string(), 1)]);
    // Secrets do not print.
    let dbg = format!("{c:?}");
    assert!(
        !dbg.contains("s3cr3t") && !dbg.contains("hooks.slack.com"),
        "{dbg}"
    );
    let built = build(&c).unwrap();
    let kinds: Vec<&str> = built.iter().map(|i| i.kind()).collect();
    assert_eq!(kinds, ["webhook", "slack", "email", "sms"]);
}

#[test]
fn unknown_keys_are_refused() {
    for y in [
        "name: a\nfoo_configs: []",
        "name: a\nwebhook_configs: [{url: 'http://x', nope: 1}]",
        "name: a\nslack_configs: [{api_url: 'http://x', colour: red}]",
        "name: a\nsms_configs: [{to: ['1'], preset: nokia}]",
    ] {
        assert!(serde_yaml_ng::from_str::<ReceiverConfig>(y).is_err(), "{y}");
    }
}

#[test]
fn invalid_configs_fail_to_build() {
    for (y, want) in [
        ("name: a\nwebhook_configs: [{}]", "url or url_file"),
        (
            "name: a\nwebhook_configs: [{url: 'ftp://x'}]",
            "http or https",
        ),
        ("name: a\nslack_configs: [{channel: x}]", "Slack API URL"),
        (
            "name: a\nslack_configs: [{api_url: 'http://x', title: '{{ if }}'}]",
            "title",
        ),
        (
            "name: a\nemail_configs: [{to: a@b, from: c@d}]",
            "smarthost",
        ),
        (
            "name: a\nemail_configs: [{to: a@b, from: c@d, smarthost: 'h:25', auth_secret: s}]",
            "CRAM-MD5",
        ),
        (
            "name: a\nsms_configs: [{to: [], url: 'http://x'}]",
            "recipients",
        ),
        (
            "name: a\nsms_configs: [{to: ['1'], preset: twilio, from: x}]",
            "url",
        ),
        (
            "name: a\nsms_configs: [{to: ['1'], preset: twilio, from: x, account_sid: AC1}]",
            "auth_token",
        ),
    ] {
        let e = match build(&parse(y)) {
            Ok(_) => panic!("{y}: built"),
            Err(e) => e,
        };
        assert!(e.contains(want), "{y}: {e}");
    }
}

#[test]
fn truncation() {
    assert_eq!(truncate_chars("abc", 3), ("abc".to_string(), false));
    assert_eq!(truncate_chars("abcd", 3), ("ab…".to_string(), true));
    assert_eq!(truncate_chars("ééééé", 2), ("é…".to_string(), true));
    assert_eq!(truncate_chars("abcd", 0), ("abcd".to_string(), false));
    assert_eq!(truncate_chars("abcd", 1), ("…".to_string(), true));
}
