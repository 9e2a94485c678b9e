//! vigil's notifier over HTTP: Alertmanager's v2 API (so Prometheus and
//! `amtool` can use vigil as their Alertmanager) and vigil's own
//! acknowledgement, escalation and history endpoints under
//! `/api/v1/notify/`.
// The helpers return a ready HTTP response as their error: the error path
// is cold and the handlers only pass it on.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Map, Value as Json};
use vigil_notify::{
    AckRequest, AckTarget, AlertFilter, AlertStatus, HistoryQuery, Matcher, Matchers, Notifier,
    Silence, SilenceRequest,
};

use crate::alertmanager::rfc3339;
use crate::AppState;

fn error(code: StatusCode, msg: impl Into<String>) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        Json::from(msg.into()).to_string(),
    )
        .into_response()
}

fn ok_json(v: Json) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

fn notifier(st: &AppState) -> Result<Arc<Notifier>, Response> {
    st.lifecycle.local_notifier().ok_or_else(|| {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "vigil's notifier is not configured: add a `notify:` section to the configuration",
        )
    })
}

fn parse_time(s: &str) -> Result<i64, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("invalid time {s:?}: {e}"))
}

fn labels_obj(l: &vigil_model::Labels) -> Json {
    Json::Object(
        l.iter()
            .map(|l| (l.name.to_string(), Json::from(l.value)))
            .collect::<Map<_, _>>(),
    )
}

fn map_obj(m: &std::collections::BTreeMap<String, String>) -> Json {
    Json::Object(
        m.iter()
            .map(|(k, v)| (k.clone(), Json::from(v.as_str())))
            .collect(),
    )
}

/// Alertmanager's `gettableAlert`.
fn gettable(a: &AlertStatus) -> Json {
    let mut m = json!({
        "labels": labels_obj(&a.alert.labels),
        "annotations": map_obj(&a.alert.annotations),
        "startsAt": rfc3339(a.alert.starts_at),
        "endsAt": rfc3339(a.alert.ends_at),
        "updatedAt": rfc3339(a.alert.updated_at),
        "generatorURL": a.alert.generator_url,
        "fingerprint": format!("{:016x}", a.fingerprint),
        "receivers": a.receivers.iter().map(|r| json!({"name": r})).collect::<Vec<_>>(),
        "status": {
            "state": a.state,
            "silencedBy": a.silenced_by,
            "inhibitedBy": a.inhibited_by,
            "mutedBy": a.muted_by,
        },
    });
    if let (Some(ack), Some(obj)) = (&a.ack, m.as_object_mut()) {
        obj.insert("ack".into(), ack_json(ack));
    }
    m
}

fn ack_json(a: &vigil_notify::Ack) -> Json {
    let (kind, target) = match &a.target {
        AckTarget::Group(k) => ("group", Json::from(k.as_str())),
        AckTarget::Alert(fp) => ("alert", Json::from(format!("{fp:016x}"))),
    };
    json!({
        "id": a.id,
        "kind": kind,
        "target": target,
        "by": a.by,
        "at": rfc3339(a.at),
        "comment": a.comment,
        "expiresAt": a.expires_at.map(rfc3339),
    })
}

fn silence_json(s: &Silence, now: i64) -> Json {
    json!({
        "id": s.id,
        "status": {"state": format!("{:?}", s.state(now)).to_lowercase()},
        "updatedAt": rfc3339(s.updated_at),
        "matchers": s.matchers.iter().map(|m| json!({
            "name": m.name(),
            "value": m.value(),
            "isRegex": m.op().is_regex(),
            "isEqual": !m.op().is_negative(),
        })).collect::<Vec<_>>(),
        "startsAt": rfc3339(s.starts_at),
        "endsAt": rfc3339(s.ends_at),
        "createdBy": s.created_by,
        "comment": s.comment,
    })
}

/// `filter` parameters (each one matcher), as amtool sends them.
fn filters(q: &[(String, String)]) -> Result<Matchers, Response> {
    let mut out = Vec::new();
    for (k, v) in q {
        if k == "filter" {
            let ms = vigil_notify::parse_matchers(v)
                .map_err(|e| error(StatusCode::BAD_REQUEST, format!("bad matcher {v:?}: {e}")))?;
            out.extend(ms);
        }
    }
    Ok(Matchers(out))
}

fn flag(q: &[(String, String)], name: &str, default: bool) -> Result<bool, Response> {
    match q
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
    {
        None => Ok(default),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(v) => Err(error(
            StatusCode::BAD_REQUEST,
            format!("{name}: {v:?} is not a boolean"),
        )),
    }
}

fn alert_filter(q: &[(String, String)]) -> Result<AlertFilter, Response> {
    let receiver = match q.iter().find(|(k, _)| k == "receiver") {
        Some((_, r)) => Some(
            Matcher::new("receiver", vigil_notify::MatchType::Regexp, r)
                .map_err(|e| error(StatusCode::BAD_REQUEST, format!("receiver: {e}")))?,
        ),
        None => None,
    };
    Ok(AlertFilter {
        matchers: filters(q)?,
        active: flag(q, "active", true)?,
        silenced: flag(q, "silenced", true)?,
        inhibited: flag(q, "inhibited", true)?,
        muted: flag(q, "muted", true)?,
        receiver,
    })
}

type Pairs = Query<Vec<(String, String)>>;

/// `GET /api/v2/alerts`.
pub(crate) async fn get_alerts(State(st): State<AppState>, Query(q): Pairs) -> Response {
    let n = match notifier(&st) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let f = match alert_filter(&q) {
        Ok(f) => f,
        Err(r) => return r,
    };
    ok_json(Json::Array(n.alerts(&f).iter().map(gettable).collect()))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostableAlert {
    labels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    annotations: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    starts_at: Option<String>,
    #[serde(default)]
    ends_at: Option<String>,
    #[serde(default, rename = "generatorURL")]
    generator_url: String,
}

/// `POST /api/v2/alerts`.
pub(crate) async fn post_alerts(State(st): State<AppState>, body: axum::body::Bytes) -> Response {
    let n = match notifier(&st) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let posted: Vec<PostableAlert> = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid alerts: {e}")),
    };
    let mut alerts = Vec::with_capacity(posted.len());
    for p in posted {
        let parse = |s: &Option<String>| {
            s.as_deref()
                .filter(|s| !s.is_empty())
                .map(parse_time)
                .transpose()
        };
        let (starts, ends) = match (parse(&p.starts_at), parse(&p.ends_at)) {
            (Ok(s), Ok(e)) => (s, e),
            (Err(e), _) | (_, Err(e)) => return error(StatusCode::BAD_REQUEST, e),
        };
        alerts.push(vigil_notify::Alert {
            labels: vigil_model::Labels::from_pairs(p.labels),
            annotations: p.annotations,
            // Zero times mean "unset": the notifier fills them in as
            // Alertmanager does (now, and now + resolve_timeout).
            starts_at: starts.unwrap_or(0),
            ends_at: ends.unwrap_or(0),
            generator_url: p.generator_url,
            updated_at: 0,
        });
    }
    match n.receive(alerts) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

/// `GET /api/v2/alerts/groups`. Besides Alertmanager's fields each group
/// has vigil's `id`, `key` (for `/api/v1/notify/history?group=`), `acked`
/// and `escalation`. With `pending=true` (vigil's, for the web UI) the rule
/// engine's pending alerts, which the notifier has not been sent yet, are
/// placed in the groups the routing tree would put them in, under
/// `pending`; groups holding only pending alerts are listed too.
pub(crate) async fn get_groups(State(st): State<AppState>, Query(q): Pairs) -> Response {
    let n = match notifier(&st) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let f = match alert_filter(&q) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let with_pending = match flag(&q, "pending", false) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let mut groups: Vec<Json> = n
        .groups(&f)
        .iter()
        .map(|g| {
            json!({
                "labels": labels_obj(&g.labels),
                "receiver": {"name": g.receiver},
                "alerts": g.alerts.iter().map(gettable).collect::<Vec<_>>(),
                "id": g.id,
                "key": g.key,
                "acked": g.acked,
                "escalation": g.escalation.as_ref().map(|e| json!({
                    "policy": e.policy, "level": e.level,
                    "since": rfc3339(e.since), "started": rfc3339(e.started),
                })),
            })
        })
        .collect();
    if with_pending {
        add_pending(&st, &n, &f.matchers, &mut groups);
    }
    ok_json(Json::Array(groups))
}

/// Places the rule engine's pending alerts (with the external labels they
/// are sent with) in `groups` as the notifier's routing tree would.
fn add_pending(st: &AppState, n: &Notifier, filter: &Matchers, groups: &mut Vec<Json>) {
    let config = n.config();
    let Some(tree) = config
        .route
        .as_ref()
        .and_then(|r| vigil_notify::route::RouteTree::new(r).ok())
    else {
        return;
    };
    let ext = st.lifecycle.external_labels();
    for g in st.lifecycle.rules.groups() {
        for r in &g.rules {
            let vigil_rules::Rule::Alerting(rule) = r else {
                continue;
            };
            for a in rule.active.values() {
                if a.state != vigil_rules::AlertState::Pending || a.resolved_at.is_some() {
                    continue;
                }
                let mut b = vigil_model::LabelsBuilder::from_labels(&a.labels);
                for l in ext.iter() {
                    if a.labels.get(l.name).is_none() {
                        b.set(l.name, l.value);
                    }
                }
                let labels = b.build();
                if !filter.matches(&labels) {
                    continue;
                }
                let alert = json!({
                    "labels": labels_obj(&labels),
                    "annotations": map_obj(&a.annotations),
                    "state": "pending",
                    "activeAt": rfc3339(a.active_at),
                    "value": a.value.to_string(),
                    "fingerprint": format!("{:016x}", labels.stable_hash()),
                });
                for route in tree.matches(&labels) {
                    let glabels = tree.group_labels(route, &labels);
                    let key = tree.group_key(route, &glabels);
                    let at = match groups.iter().position(|g| g["key"] == key.as_str()) {
                        Some(i) => i,
                        None => {
                            groups.push(json!({
                                "labels": labels_obj(&glabels),
                                "receiver": {"name": tree.get(route).map(|r| r.opts.receiver.as_str())},
                                "alerts": [],
                                "id": vigil_notify::escalation::group_id(&key),
                                "key": key,
                                "acked": false,
                                "escalation": null,
                            }));
                            groups.len() - 1
                        }
                    };
                    if let Some(Json::Array(v)) = groups[at]
                        .as_object_mut()
                        .map(|o| o.entry("pending").or_insert_with(|| json!([])))
                    {
                        v.push(alert.clone());
                    }
                }
            }
        }
    }
}

/// `GET /api/v2/silences`.
pub(crate) async fn get_silences(State(st): State<AppState>, Query(q): Pairs) -> Response {
    let n = match notifier(&st) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let f = match filters(&q) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let now = n.now();
    let out: Vec<Json> = n
        .silences()
        .iter()
        .filter(|s| {
            // A filter matches a silence that has an equal matcher.
            f.0.iter().all(|m| {
                s.matchers
                    .iter()
                    .any(|sm| sm.name() == m.name() && m.matches_value(sm.value()))
            })
        })
        .map(|s| silence_json(s, now))
        .collect();
    ok_json(Json::Array(out))
}

/// `GET /api/v2/silence/{id}`.
pub(crate) async fn get_silence(State(st): State<AppState>, Path(id): Path<String>) -> Response {
    let n = match notifier(&st) {
        Ok(n) => n,
        Err(r) => return r,
    };
    match n.silence(&id) {
        Some(s) => ok_json(silence_json(&s, n.now())),
        None => error(StatusCode::NOT_FOUND, format!("silence {id} not found")),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostableSilence {
    #[serde(default)]
    id: Option<String>,
    matchers: Vec<PostableMatcher>,
    starts_at: String,
    ends_at: String,
    #[serde(default)]
    created_by: String,
    #[serde(default)]
    comment: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostableMatcher {
    name: String,
    value: String,
    is_regex: bool,
    #[serde(default = "yes")]
    is_equal: bool,
}

fn yes() -> bool {
    true
}

/// `POST /api/v2/silences`.
pub(crate) async fn post_silence(State(st): State<AppState>, body: axum::body::Bytes) -> Response {
    let n = match notifier(&st) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let p: PostableSilence = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid silence: {e}")),
    };
    let mut matchers = Vec::new();
    for m in &p.matchers {
        let op = match (m.is_regex, m.is_equal) {
            (false, true) => vigil_notify::MatchType::Equal,
            (false, false) => vigil_notify::MatchType::NotEqual,
            (true, true) => vigil_notify::MatchType::Regexp,
            (true, false) => vigil_notify::MatchType::NotRegexp,
        };
        match Matcher::new(&m.name, op, &m.value) {
            Ok(m) => matchers.push(m),
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("matcher {}: {e}", m.name)),
        }
    }
    let (starts_at, ends_at) = match (parse_time(&p.starts_at), parse_time(&p.ends_at)) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(e), _) | (_, Err(e)) => return error(StatusCode::BAD_REQUEST, e),
    };
    let req = SilenceRequest {
        id: p.id.filter(|s| !s.is_empty()),
        matchers,
        starts_at,
        ends_at,
        created_by: p.created_by,
        comment: p.comment,
    };
    match n.add_silence(req) {
        Ok(s) => ok_json(json!({"silenceID": s.id})),
        Err(e) => error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

/// `DELETE /api/v2/silence/{id}`: expires it.
pub(crate) async fn delete_silence(State(st): State<AppState>, Path(id): Path<String>) -> Response {
    let n = match notifier(&st) {
        Ok(n) => n,
        Err(r) => return r,
    };
    match n.expire_silence(&id) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => error(StatusCode::NOT_FOUND, e.to_string()),
    }
}

/// `GET /api/v2/status`.
pub(crate) async fn status(State(st): State<AppState>) -> Response {
    let n = match notifier(&st) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let started = st
        .started
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    ok_json(json!({
        "cluster": {"status": "disabled", "peers": []},
        "versionInfo": {
            "version": env!("CARGO_PKG_VERSION"),
            "revision": "",
            "branch": "",
            "buildUser": "",
            "buildDate": "",
            "goVersion": "",
        },
        "config": {"original": st.lifecycle.notify_config_text()},
        "uptime": rfc3339(started),
        "receivers": n.receivers(),
    }))
}

/// `GET /api/v2/receivers`.
pub(crate) async fn receivers(State(st): State<AppState>) -> Response {
    match notifier(&st) {
        Ok(n) => ok_json(Json::Array(
            n.receivers().iter().map(|r| json!({"name": r})).collect(),
        )),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct AckBody {
    /// A group key or a group ID (from `/api/v2/alerts/groups`).
    #[serde(default)]
    group: Option<String>,
    /// An alert fingerprint (16 hex digits).
    #[serde(default)]
    fingerprint: Option<String>,
    by: String,
    #[serde(default)]
    comment: String,
    /// A duration (`2h`) after which the ack lapses.
    #[serde(default)]
    expires_in: Option<String>,
}

/// `POST /api/v1/notify/ack`: acknowledges a group or an alert.
pub(crate) async fn post_ack(State(st): State<AppState>, body: axum::body::Bytes) -> Response {
    let n = match notifier(&st) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let b: AckBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid ack: {e}")),
    };
    if b.by.trim().is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "an ack needs `by`: who acknowledges",
        );
    }
    let target = match (b.group, b.fingerprint) {
        (Some(g), None) => {
            // Accept the short group ID as well as the key.
            let key = n
                .groups(&AlertFilter::default())
                .into_iter()
                .find(|x| x.id == g || x.key == g)
                .map_or(g, |x| x.key);
            AckTarget::Group(key)
        }
        (None, Some(fp)) => match u64::from_str_radix(&fp, 16) {
            Ok(v) => AckTarget::Alert(v),
            Err(_) => return error(StatusCode::BAD_REQUEST, format!("bad fingerprint {fp:?}")),
        },
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "give exactly one of `group` and `fingerprint`",
            )
        }
    };
    let expires_at = match b.expires_in.as_deref().map(vigil_model::parse_duration) {
        None => None,
        Some(Ok(d)) => Some(n.now() + d),
        Some(Err(e)) => return error(StatusCode::BAD_REQUEST, format!("expires_in: {e}")),
    };
    match n.ack(AckRequest {
        target,
        by: b.by,
        comment: b.comment,
        expires_at,
    }) {
        Ok(a) => ok_json(ack_json(&a)),
        Err(e) => error(StatusCode::NOT_FOUND, e.to_string()),
    }
}

/// Escapes text for HTML element content and attribute values.
fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A small HTML page for a person holding an ack link (on a phone, from an
/// SMS, perhaps). The URL carries the link's token: no caching, and no
/// `Referer` to other sites.
fn ack_page(code: StatusCode, title: &str, body: &str) -> Response {
    (
        code,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <meta name=\"robots\" content=\"noindex\">\n<title>{title} - vigil</title>\n</head>\n\
             <body style=\"font-family: sans-serif; max-width: 40em; margin: 2em auto; padding: 0 1em\">\n\
             <h1>{title}</h1>\n{body}</body>\n</html>\n"
        ),
    )
        .into_response()
}

fn ack_error_page(e: &vigil_notify::AckError) -> Response {
    ack_page(
        StatusCode::NOT_FOUND,
        "Cannot acknowledge",
        &format!(
            "<p>{}. The alerts may have resolved, or the link is not from this vigil.</p>\n",
            html_escape(&e.to_string())
        ),
    )
}

/// `GET /api/v1/notify/ack/{group}/{token}`: the link in notifications.
/// A GET acknowledges nothing: chat apps fetch links to preview them
/// (Slack unfurls), and mail scanners follow them. It shows the group and
/// a form that POSTs to the same URL, which acknowledges ([`ack_link`]).
/// The link's signed token is its credential: with authentication on,
/// these two routes need no login (`auth::access_for`). `?by=` fills in
/// the name.
pub(crate) async fn ack_link_page(
    State(st): State<AppState>,
    Path((group, token)): Path<(String, String)>,
    Query(q): Pairs,
) -> Response {
    let n = match notifier(&st) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let Some(g) = n
        .groups(&AlertFilter::default())
        .into_iter()
        .find(|g| g.id == group)
    else {
        return ack_error_page(&vigil_notify::AckError::NoGroup(group));
    };
    if !n.verify_ack_token(&g.key, &token) {
        return ack_error_page(&vigil_notify::AckError::BadToken);
    }
    let labels: Vec<String> = g
        .labels
        .iter()
        .map(|l| format!("{}=\"{}\"", l.name, l.value))
        .collect();
    let alerts: Vec<String> = g
        .alerts
        .iter()
        .map(|a| {
            let name = a.alert.labels.get("alertname").unwrap_or("(no alertname)");
            match a.alert.annotations.get("summary") {
                Some(s) => format!("<li>{}: {}</li>", html_escape(name), html_escape(s)),
                None => format!("<li>{}</li>", html_escape(name)),
            }
        })
        .collect();
    let mut body = format!(
        "<p>Group <code>{{{}}}</code>, receiver {}, {} firing alert{}:</p>\n<ul>\n{}\n</ul>\n",
        html_escape(&labels.join(", ")),
        html_escape(&g.receiver),
        g.alerts.len(),
        if g.alerts.len() == 1 { "" } else { "s" },
        alerts.join("\n"),
    );
    if let Some(e) = &g.escalation {
        body.push_str(&format!(
            "<p>Escalation {}: level {} since {}.</p>\n",
            html_escape(&e.policy),
            e.level,
            rfc3339(e.since)
        ));
    }
    if g.acked {
        body.push_str("<p><strong>Already acknowledged.</strong></p>\n");
    }
    let by = q
        .iter()
        .find(|(k, _)| k == "by")
        .map_or("", |(_, v)| v.as_str());
    body.push_str(&format!(
        "<form method=\"post\">\n\
         <p><label>Your name<br><input name=\"by\" value=\"{}\" autocomplete=\"name\"></label></p>\n\
         <p><label>Comment<br><input name=\"comment\"></label></p>\n\
         <p><button type=\"submit\">Acknowledge</button></p>\n</form>\n",
        html_escape(by)
    ));
    ack_page(StatusCode::OK, "Acknowledge alerts", &body)
}

/// `POST /api/v1/notify/ack/{group}/{token}`: acknowledges the group of
/// an ack link, with `by` and `comment` from the form [`ack_link_page`]
/// shows (or the query string); answers with a page saying so.
pub(crate) async fn ack_link(
    State(st): State<AppState>,
    Path((group, token)): Path<(String, String)>,
    form: crate::api::Params,
) -> Response {
    let n = match notifier(&st) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let field = |k: &str| form.get(k).map(str::trim).filter(|v| !v.is_empty());
    let by = field("by").unwrap_or("ack link").to_string();
    let comment = field("comment")
        .unwrap_or("acknowledged from a notification link")
        .to_string();
    match n.ack_with_token(&group, &token, by, comment) {
        Ok(a) => ack_page(
            StatusCode::OK,
            "Acknowledged",
            &format!(
                "<p>Acknowledged by {} at {}. Escalation stopped.</p>\n",
                html_escape(&a.by),
                rfc3339(a.at)
            ),
        ),
        Err(e) => ack_error_page(&e),
    }
}

/// `GET /api/v1/notify/acks`.
pub(crate) async fn get_acks(State(st): State<AppState>) -> Response {
    match notifier(&st) {
        Ok(n) => ok_json(Json::Array(n.acks().iter().map(ack_json).collect())),
        Err(r) => r,
    }
}

/// `DELETE /api/v1/notify/acks/{id}`.
pub(crate) async fn delete_ack(State(st): State<AppState>, Path(id): Path<String>) -> Response {
    match notifier(&st) {
        Ok(n) => match n.unack(&id) {
            Ok(()) => StatusCode::OK.into_response(),
            Err(e) => error(StatusCode::NOT_FOUND, e.to_string()),
        },
        Err(r) => r,
    }
}

/// `GET /api/v1/notify/escalations`.
pub(crate) async fn get_escalations(State(st): State<AppState>) -> Response {
    match notifier(&st) {
        Ok(n) => ok_json(Json::Array(
            n.escalations()
                .iter()
                .map(|(k, e)| {
                    json!({"group": k, "policy": e.policy, "level": e.level,
                           "since": rfc3339(e.since), "started": rfc3339(e.started)})
                })
                .collect(),
        )),
        Err(r) => r,
    }
}

/// `GET /api/v1/notify/history?since=&until=&fingerprint=&group=&limit=`.
pub(crate) async fn get_history(State(st): State<AppState>, Query(q): Pairs) -> Response {
    let n = match notifier(&st) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let t = |k: &str| get(k).map(parse_time).transpose();
    let (since, until) = match (t("since"), t("until")) {
        (Ok(s), Ok(u)) => (s, u),
        (Err(e), _) | (_, Err(e)) => return error(StatusCode::BAD_REQUEST, e),
    };
    let fingerprint = match get("fingerprint")
        .map(|f| u64::from_str_radix(f, 16))
        .transpose()
    {
        Ok(f) => f,
        Err(_) => return error(StatusCode::BAD_REQUEST, "bad fingerprint"),
    };
    let limit = match get("limit").map(str::parse::<usize>).transpose() {
        Ok(l) => l.unwrap_or(0),
        Err(_) => return error(StatusCode::BAD_REQUEST, "bad limit"),
    };
    let events = n.history(&HistoryQuery {
        since,
        until,
        fingerprint,
        group_key: get("group").map(str::to_string),
        limit,
    });
    let out: Vec<Json> = events
        .iter()
        .map(|e| {
            let mut v = serde_json::to_value(&e.kind).unwrap_or(Json::Null);
            if let Some(o) = v.as_object_mut() {
                o.insert("at".into(), Json::from(rfc3339(e.at)));
            }
            v
        })
        .collect();
    ok_json(Json::Array(out))
}
