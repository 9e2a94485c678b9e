//! `/api/v1/rules` and `/api/v1/alerts`, shaped as Prometheus returns them.

use std::time::{Duration, UNIX_EPOCH};

use axum::extract::State;
use axum::response::Response;
use serde_json::{json, Map, Value as Json};
use vigil_rules::{Alert, AlertState, Group, Rule};

use crate::api::{labels_json, success, ApiError, Params};
use crate::status::go_time;
use crate::AppState;

fn time_json(ms: Option<i64>) -> Json {
    // Go's zero time for "never".
    match ms {
        Some(ms) if ms >= 0 => Json::from(go_time(UNIX_EPOCH + Duration::from_millis(ms as u64))),
        _ => Json::from("0001-01-01T00:00:00Z"),
    }
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)`, as alert values are shown.
fn go_e(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let s = format!("{v:e}");
    // Rust: 1e0, 1.5e-7; Go: 1e+00, 1.5e-07.
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let (sign, digits) = match exp.strip_prefix('-') {
        Some(d) => ('-', d),
        None => ('+', exp),
    };
    let digits = if digits.len() < 2 {
        format!("0{digits}")
    } else {
        digits.to_string()
    };
    format!("{mant}e{sign}{digits}")
}

fn annotations_json(a: &std::collections::BTreeMap<String, String>) -> Json {
    Json::Object(
        a.iter()
            .map(|(k, v)| (k.clone(), Json::from(v.as_str())))
            .collect::<Map<_, _>>(),
    )
}

fn alert_json(a: &Alert) -> Json {
    let mut m = Map::new();
    m.insert("labels".into(), labels_json(&a.labels));
    m.insert("annotations".into(), annotations_json(&a.annotations));
    m.insert("state".into(), Json::from(a.state.as_str()));
    m.insert("activeAt".into(), time_json(Some(a.active_at)));
    if let Some(k) = a.keep_firing_since {
        m.insert("keepFiringSince".into(), time_json(Some(k)));
    }
    m.insert("value".into(), Json::from(go_e(a.value)));
    Json::Object(m)
}

/// Alerts that are pending or firing (resolved ones are kept internally
/// only to be re-sent).
fn active(alerts: &std::collections::BTreeMap<vigil_model::Labels, Alert>) -> Vec<&Alert> {
    alerts
        .values()
        .filter(|a| a.resolved_at.is_none() && a.state != AlertState::Inactive)
        .collect()
}

fn rule_json(r: &Rule, exclude_alerts: bool) -> Json {
    let st = r.status();
    let mut m = Map::new();
    match r {
        Rule::Alerting(a) => {
            m.insert(
                "state".into(),
                Json::from(a.state().map_or("inactive", AlertState::as_str)),
            );
            m.insert("name".into(), Json::from(a.name.as_str()));
            m.insert("query".into(), Json::from(a.expr.to_string()));
            m.insert("duration".into(), Json::from(a.hold as f64 / 1000.0));
            m.insert(
                "keepFiringFor".into(),
                Json::from(a.keep_firing_for as f64 / 1000.0),
            );
            let labels: Map<String, Json> = a
                .labels
                .iter()
                .map(|(k, v, _)| (k.clone(), Json::from(v.as_str())))
                .collect();
            m.insert("labels".into(), Json::Object(labels));
            let ann: Map<String, Json> = a
                .annotations
                .iter()
                .map(|(k, v, _)| (k.clone(), Json::from(v.as_str())))
                .collect();
            m.insert("annotations".into(), Json::Object(ann));
            if !exclude_alerts {
                m.insert(
                    "alerts".into(),
                    Json::Array(active(&a.active).into_iter().map(alert_json).collect()),
                );
            }
        }
        Rule::Recording(rr) => {
            m.insert("name".into(), Json::from(rr.name.as_str()));
            m.insert("query".into(), Json::from(rr.expr.to_string()));
            m.insert("labels".into(), labels_json(&rr.labels));
        }
    }
    m.insert("health".into(), Json::from(st.health.as_str()));
    if let Some(e) = &st.last_error {
        m.insert("lastError".into(), Json::from(e.as_str()));
    }
    m.insert("evaluationTime".into(), Json::from(st.evaluation_seconds));
    m.insert("lastEvaluation".into(), time_json(st.last_evaluation));
    m.insert(
        "type".into(),
        Json::from(match r {
            Rule::Alerting(_) => "alerting",
            Rule::Recording(_) => "recording",
        }),
    );
    Json::Object(m)
}

/// `GET /api/v1/rules`.
pub(crate) async fn rules(State(st): State<AppState>, p: Params) -> Result<Response, ApiError> {
    let kind = match p.get("type").unwrap_or("") {
        "" => None,
        "alert" => Some(true),
        "record" => Some(false),
        other => {
            return Err(ApiError::bad_data(format!(
                "invalid query parameter type='{other}'"
            )))
        }
    };
    let exclude_alerts = match p.get("exclude_alerts").unwrap_or("false") {
        "true" | "1" => true,
        "false" | "0" | "" => false,
        other => {
            return Err(ApiError::invalid_param(
                "exclude_alerts",
                format!("parsing {other:?}: invalid syntax"),
            ))
        }
    };
    let names = p.all("rule_name[]");
    let groups_f = p.all("rule_group[]");
    let files = p.all("file[]");
    let groups: Vec<Group> = st.lifecycle.rules.groups();
    let mut out = Vec::new();
    for g in &groups {
        let file = g.file.display().to_string();
        if !groups_f.is_empty() && !groups_f.contains(&g.name.as_str()) {
            continue;
        }
        if !files.is_empty() && !files.contains(&file.as_str()) {
            continue;
        }
        let rules: Vec<Json> = g
            .rules
            .iter()
            .filter(|r| match kind {
                Some(alerting) => matches!(r, Rule::Alerting(_)) == alerting,
                None => true,
            })
            .filter(|r| names.is_empty() || names.contains(&r.name()))
            .map(|r| rule_json(r, exclude_alerts))
            .collect();
        // Filters that leave a group empty leave it out.
        if rules.is_empty() && (kind.is_some() || !names.is_empty()) {
            continue;
        }
        out.push(json!({
            "name": g.name,
            "file": file,
            "rules": rules,
            "interval": g.interval as f64 / 1000.0,
            "limit": g.limit,
            "evaluationTime": g.evaluation_seconds,
            "lastEvaluation": time_json(g.last_evaluation),
        }));
    }
    Ok(success(json!({ "groups": out }), Vec::new(), Vec::new()))
}

/// `GET /api/v1/alerts`. With vigil's notifier configured, each alert
/// carries its acknowledgement (`ack`), if any.
pub(crate) async fn alerts(State(st): State<AppState>) -> Result<Response, ApiError> {
    let acks: std::collections::HashMap<u64, vigil_notify::Ack> = st
        .lifecycle
        .local_notifier()
        .map(|n| {
            n.alerts(&vigil_notify::AlertFilter::default())
                .into_iter()
                .filter_map(|a| a.ack.map(|k| (a.fingerprint, k)))
                .collect()
        })
        .unwrap_or_default();
    let ext = st.lifecycle.external_labels();
    let mut out = Vec::new();
    for g in st.lifecycle.rules.groups() {
        for r in &g.rules {
            if let Rule::Alerting(a) = r {
                for al in active(&a.active) {
                    let mut j = alert_json(al);
                    // The notifier knows the alert by its labels as sent:
                    // with the external labels it lacks.
                    let mut b = vigil_model::LabelsBuilder::from_labels(&al.labels);
                    for l in ext.iter() {
                        if al.labels.get(l.name).is_none() {
                            b.set(l.name, l.value);
                        }
                    }
                    if let (Some(ack), Some(o)) =
                        (acks.get(&b.build().stable_hash()), j.as_object_mut())
                    {
                        o.insert(
                            "ack".into(),
                            json!({"by": ack.by, "comment": ack.comment,
                                   "at": time_json(Some(ack.at)), "id": ack.id}),
                        );
                    }
                    out.push(j);
                }
            }
        }
    }
    Ok(success(json!({ "alerts": out }), Vec::new(), Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_print_as_go_does() {
        assert_eq!(go_e(1.0), "1e+00");
        assert_eq!(go_e(0.0), "0e+00");
        assert_eq!(go_e(1234.5), "1.2345e+03");
        assert_eq!(go_e(1.5e-7), "1.5e-07");
        assert_eq!(go_e(-2e100), "-2e+100");
        assert_eq!(go_e(f64::NAN), "NaN");
    }
}
