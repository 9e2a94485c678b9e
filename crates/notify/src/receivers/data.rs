//! Alertmanager's data model built from a [`NotificationData`]: the
//! template data (`.Receiver`, `.Status`, `.Alerts`, ...) and the webhook
//! message, with Alertmanager's quirks: a firing alert's `EndsAt` is Go's
//! zero time, `.Receiver` is regexp-quoted, fingerprints are FNV-1a of the
//! label set printed as 16 hex digits.

use std::collections::BTreeMap;

use serde::Serialize;
use vigil_model::Labels;
use vigil_template::Data;

use crate::types::{Alert, NotificationData};

/// Alertmanager's fingerprint of a label set (`model.LabelSet.Fingerprint`):
/// FNV-1a 64 over the sorted names and values, each followed by 0xff.
pub(crate) fn am_fingerprint(labels: &Labels) -> u64 {
    const OFFSET: u64 = 14_695_981_039_346_656_037;
    const PRIME: u64 = 1_099_511_628_211;
    let mut pairs: Vec<(&str, &str)> = labels.iter().map(|l| (l.name, l.value)).collect();
    pairs.sort_unstable();
    let mut h = OFFSET;
    let mut add = |b: u8| {
        h ^= u64::from(b);
        h = h.wrapping_mul(PRIME);
    };
    for (n, v) in pairs {
        n.bytes().for_each(&mut add);
        add(0xff);
        v.bytes().for_each(&mut add);
        add(0xff);
    }
    h
}

/// Go's `regexp.QuoteMeta`, which Alertmanager applies to `.Receiver`.
pub(crate) fn quote_meta(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Unix milliseconds as Go's `time.Time` JSON (RFC 3339 with trailing
/// fractional zeros trimmed), in UTC.
pub(crate) fn go_time_json(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let frac = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut s = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    );
    if frac != 0 {
        let f = format!("{frac:03}");
        s.push('.');
        s.push_str(f.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// Go's zero time in JSON.
pub(crate) const GO_ZERO_TIME_JSON: &str = "0001-01-01T00:00:00Z";

fn labels_map(l: &Labels) -> BTreeMap<String, String> {
    l.iter()
        .map(|l| (l.name.to_string(), l.value.to_string()))
        .collect()
}

/// One alert as notifications see it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AlertView {
    pub firing: bool,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: i64,
    /// `None` for firing alerts (Go's zero time).
    pub ends_at: Option<i64>,
    pub generator_url: String,
    pub fingerprint: String,
}

impl AlertView {
    pub(crate) fn new(a: &Alert, now: i64) -> AlertView {
        let resolved = a.resolved_at(now);
        AlertView {
            firing: !resolved,
            labels: labels_map(&a.labels),
            annotations: a.annotations.clone(),
            starts_at: a.starts_at,
            ends_at: resolved.then_some(a.ends_at),
            generator_url: a.generator_url.clone(),
            fingerprint: format!("{:016x}", am_fingerprint(&a.labels)),
        }
    }

    fn status(&self) -> &'static str {
        if self.firing {
            "firing"
        } else {
            "resolved"
        }
    }
}

/// A notification's alerts and the values derived from them, after an
/// integration's `max_alerts`.
#[derive(Debug, Clone)]
pub(crate) struct View<'a> {
    pub data: &'a NotificationData,
    pub alerts: Vec<AlertView>,
    pub status: &'static str,
    pub common_labels: BTreeMap<String, String>,
    pub common_annotations: BTreeMap<String, String>,
    pub truncated: u64,
}

impl<'a> View<'a> {
    /// The view of `data` keeping at most `max_alerts` alerts (0: all).
    /// Common labels and the status are those of the kept alerts, as in
    /// Alertmanager, which truncates before building its data.
    pub(crate) fn new(data: &'a NotificationData, max_alerts: u64) -> View<'a> {
        let keep = if max_alerts == 0 {
            data.alerts.len()
        } else {
            data.alerts
                .len()
                .min(usize::try_from(max_alerts).unwrap_or(usize::MAX))
        };
        let truncated = (data.alerts.len() - keep) as u64;
        let alerts: Vec<AlertView> = data.alerts[..keep]
            .iter()
            .map(|a| AlertView::new(a, data.now))
            .collect();
        let (common_labels, common_annotations) = if truncated == 0 {
            (
                labels_map(&data.common_labels),
                data.common_annotations.clone(),
            )
        } else {
            common(&alerts)
        };
        let status = if data.alerts.is_empty() {
            if data.status == "resolved" {
                "resolved"
            } else {
                "firing"
            }
        } else if alerts.iter().any(|a| a.firing) {
            "firing"
        } else {
            "resolved"
        };
        View {
            data,
            alerts,
            status,
            common_labels,
            common_annotations,
            truncated: truncated + data.truncated_alerts,
        }
    }

    /// Whether any alert fires.
    pub(crate) fn firing(&self) -> bool {
        self.status == "firing"
    }

    /// The highest `severity` among firing alerts (critical, then warning,
    /// then any other value), or the common one.
    pub(crate) fn severity(&self) -> Option<String> {
        let rank = |s: &str| match s {
            "critical" | "page" => 3,
            "error" => 2,
            "warning" => 1,
            _ => 0,
        };
        self.alerts
            .iter()
            .filter(|a| a.firing)
            .filter_map(|a| a.labels.get("severity"))
            .max_by_key(|s| rank(s))
            .cloned()
            .or_else(|| self.common_labels.get("severity").cloned())
    }

    /// The template data: Alertmanager's `template.Data` plus vigil's
    /// `.AckURL`, `.EscalationLevel`, `.GroupKey` and `.TruncatedAlerts`.
    pub(crate) fn template_data(&self) -> Data {
        let d = self.data;
        let mut m = BTreeMap::new();
        m.insert("Receiver".into(), Data::Str(quote_meta(&d.receiver)));
        m.insert("Status".into(), Data::from(self.status));
        m.insert(
            "Alerts".into(),
            Data::List(
                self.alerts
                    .iter()
                    .map(|a| {
                        let mut am = BTreeMap::new();
                        am.insert("Status".into(), Data::from(a.status()));
                        am.insert("Labels".into(), Data::Kv(a.labels.clone()));
                        am.insert("Annotations".into(), Data::Kv(a.annotations.clone()));
                        am.insert("StartsAt".into(), Data::time_ms(a.starts_at));
                        am.insert(
                            "EndsAt".into(),
                            match a.ends_at {
                                Some(ms) => Data::time_ms(ms),
                                None => Data::Time(Data::ZERO_TIME),
                            },
                        );
                        am.insert("GeneratorURL".into(), Data::from(a.generator_url.as_str()));
                        am.insert("Fingerprint".into(), Data::from(a.fingerprint.as_str()));
                        Data::Map(am)
                    })
                    .collect(),
            ),
        );
        m.insert("GroupLabels".into(), Data::Kv(labels_map(&d.group_labels)));
        m.insert("CommonLabels".into(), Data::Kv(self.common_labels.clone()));
        m.insert(
            "CommonAnnotations".into(),
            Data::Kv(self.common_annotations.clone()),
        );
        m.insert("ExternalURL".into(), Data::from(d.external_url.as_str()));
        m.insert("GroupKey".into(), Data::from(d.group_key.as_str()));
        m.insert(
            "TruncatedAlerts".into(),
            Data::Int(i64::try_from(self.truncated).unwrap_or(i64::MAX)),
        );
        m.insert(
            "AckURL".into(),
            Data::from(d.ack_url.clone().unwrap_or_default()),
        );
        m.insert(
            "EscalationLevel".into(),
            Data::Int(d.escalation_level.map_or(0, |l| l as i64)),
        );
        Data::Map(m)
    }

    /// Alertmanager's webhook message, version 4.
    pub(crate) fn webhook_message(&self) -> WebhookMessage<'_> {
        let d = self.data;
        WebhookMessage {
            receiver: quote_meta(&d.receiver),
            status: self.status,
            alerts: self
                .alerts
                .iter()
                .map(|a| WebhookAlert {
                    status: a.status(),
                    labels: &a.labels,
                    annotations: &a.annotations,
                    starts_at: go_time_json(a.starts_at),
                    ends_at: a
                        .ends_at
                        .map_or_else(|| GO_ZERO_TIME_JSON.to_string(), go_time_json),
                    generator_url: &a.generator_url,
                    fingerprint: &a.fingerprint,
                })
                .collect(),
            group_labels: labels_map(&d.group_labels),
            common_labels: &self.common_labels,
            common_annotations: &self.common_annotations,
            external_url: &d.external_url,
            version: "4",
            group_key: &d.group_key,
            truncated_alerts: self.truncated,
        }
    }
}

/// Labels and annotations every alert shares.
fn common(alerts: &[AlertView]) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let Some((first, rest)) = alerts.split_first() else {
        return (BTreeMap::new(), BTreeMap::new());
    };
    let mut labels = first.labels.clone();
    let mut annotations = first.annotations.clone();
    for a in rest {
        labels.retain(|k, v| a.labels.get(k) == Some(v));
        annotations.retain(|k, v| a.annotations.get(k) == Some(v));
    }
    (labels, annotations)
}

/// Alertmanager's webhook payload, fields in Go's order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WebhookMessage<'a> {
    receiver: String,
    status: &'a str,
    alerts: Vec<WebhookAlert<'a>>,
    group_labels: BTreeMap<String, String>,
    common_labels: &'a BTreeMap<String, String>,
    common_annotations: &'a BTreeMap<String, String>,
    #[serde(rename = "externalURL")]
    external_url: &'a str,
    version: &'a str,
    group_key: &'a str,
    truncated_alerts: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct WebhookAlert<'a> {
    status: &'a str,
    labels: &'a BTreeMap<String, String>,
    annotations: &'a BTreeMap<String, String>,
    starts_at: String,
    ends_at: String,
    #[serde(rename = "generatorURL")]
    generator_url: &'a str,
    fingerprint: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_match_alertmanagers() {
        // model.LabelSet{}.Fingerprint() is the FNV-1a offset basis.
        assert_eq!(am_fingerprint(&Labels::empty()), 0xcbf29ce484222325);
        let l = Labels::from_pairs([("alertname", "x")]);
        // FNV-1a of "alertname\xffx\xff".
        let mut h: u64 = 0xcbf29ce484222325;
        for b in b"alertname\xffx\xff" {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x100000001b3);
        }
        assert_eq!(am_fingerprint(&l), h);
    }

    #[test]
    fn go_times() {
        assert_eq!(go_time_json(0), "1970-01-01T00:00:00Z");
        assert_eq!(go_time_json(1_700_000_000_120), "2023-11-14T22:13:20.12Z");
        assert_eq!(go_time_json(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn quote_metas() {
        assert_eq!(quote_meta("team-x"), "team-x");
        assert_eq!(quote_meta("a.b (c)"), "a\\.b \\(c\\)");
    }
}
