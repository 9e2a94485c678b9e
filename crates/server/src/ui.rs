//! The web UI: the built assets of `ui/` embedded in the binary, and the
//! dashboards API.
//!
//! `ui/dist` is committed (minified, content-hashed), so a
//! clone builds and runs without Node; CI rebuilds it with `npm ci && npm
//! run build` and fails if the result differs byte for byte (see
//! docs/ARCHITECTURE.md, "Web UI"). `index.html` is served for every UI
//! path with `Cache-Control: no-cache` and its `<base href>` set to the
//! UI's public path; the hashed files under `assets/` never change, so
//! they are `immutable`, and are gzipped once, at their first request
//! (compressed output is not committed: zlib builds differ in their bytes).
//!
//! Dashboards are YAML files listed by the configuration (`dashboards:`
//! globs, expanded at load and at every reload). They are read and checked
//! on each `/api/v1/dashboards` request, so an edited file shows on the
//! next page load and a broken one is reported with its file and reason
//! rather than hiding the others.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use include_dir::{include_dir, Dir};
use serde::{Deserialize, Serialize};

use crate::{AppState, ServerOptions};

static DIST: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../ui/dist");

/// The `<base href>` the committed `index.html` carries.
const BASE_PLACEHOLDER: &str = "<base href=\"/\">";

/// Paths the UI's router handles; each serves `index.html`.
const PAGES: [&str; 7] = [
    "/",
    "/graph",
    "/alerts",
    "/targets",
    "/rules",
    "/status",
    "/dashboards",
];

/// Where the UI is reached.
#[derive(Debug, Clone)]
pub(crate) struct UiOptions {
    /// `index.html` with its `<base href>` set to the UI's public path.
    index: String,
}

impl UiOptions {
    pub(crate) fn new(opts: &ServerOptions) -> UiOptions {
        let index = DIST
            .get_file("index.html")
            .and_then(|f| f.contents_utf8())
            .unwrap_or_default();
        let base = html_attr(&base_path(opts));
        UiOptions {
            index: index.replacen(BASE_PLACEHOLDER, &format!("<base href=\"{base}\">"), 1),
        }
    }
}

/// The route prefix (`--web.route-prefix`, else the external URL's path),
/// as `/a/b` without a trailing slash; empty for the root.
pub(crate) fn route_prefix(opts: &ServerOptions) -> String {
    let raw = match (&opts.route_prefix, &opts.external_url) {
        (Some(p), _) => p.clone(),
        (None, Some(url)) => url_path(url).to_string(),
        (None, None) => String::new(),
    };
    let trimmed = raw.trim_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("/{trimmed}")
    }
}

/// The path the browser sees the UI at, with a trailing slash: the external
/// URL's path when one is given (a proxy may strip it before vigil), else
/// the route prefix.
fn base_path(opts: &ServerOptions) -> String {
    let path = match &opts.external_url {
        Some(url) => url_path(url).trim_matches('/').to_string(),
        None => route_prefix(opts).trim_matches('/').to_string(),
    };
    if path.is_empty() {
        "/".into()
    } else {
        format!("/{path}/")
    }
}

/// The path of an absolute URL (`http://host:port/a/b?x` -> `/a/b`).
fn url_path(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest.find('/').map_or("", |i| &rest[i..]);
    path.split(['?', '#']).next().unwrap_or("")
}

fn html_attr(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
}

/// Nests the whole router under the route prefix; `/` then redirects to it.
pub(crate) fn under_prefix(app: Router, opts: &ServerOptions) -> Router {
    let prefix = route_prefix(opts);
    if prefix.is_empty() {
        return app;
    }
    let target = format!("{prefix}/graph");
    let again = target.clone();
    Router::new()
        .route("/", get(move || async move { Redirect::to(&target) }))
        // `nest` serves the UI's `/` at `/prefix`; `/prefix/` is what people type.
        .route(
            &format!("{prefix}/"),
            get(move || async move { Redirect::to(&again) }),
        )
        .nest(&prefix, app)
}

/// The UI's routes, merged into the server's router.
pub(crate) fn routes() -> Router<AppState> {
    let mut r = Router::new();
    for p in PAGES {
        r = r.route(p, get(index));
    }
    r.route("/dashboards/{id}", get(index))
        .route("/assets/{file}", get(asset))
        .route("/api/v1/dashboards", get(dashboards))
}

async fn index(State(state): State<AppState>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        state.ui.index.clone(),
    )
        .into_response()
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, e)| e) {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("html") => "text/html; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        Some("woff2") => "font/woff2",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    }
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|e| {
            let mut parts = e.split(';');
            let name = parts.next().unwrap_or("").trim();
            let q_zero = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .is_some_and(|q| q.parse::<f32>().is_ok_and(|q| q == 0.0))
            });
            (name == "gzip" || name == "*") && !q_zero
        })
}

/// The gzip encoding of every asset, made once.
fn gzipped(path: &str) -> Option<&'static [u8]> {
    static GZ: OnceLock<HashMap<String, Vec<u8>>> = OnceLock::new();
    GZ.get_or_init(|| {
        let mut out = HashMap::new();
        for f in DIST
            .get_dir("assets")
            .map(|d| d.files())
            .into_iter()
            .flatten()
        {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            if enc.write_all(f.contents()).is_ok() {
                if let Ok(gz) = enc.finish() {
                    out.insert(f.path().to_string_lossy().into_owned(), gz);
                }
            }
        }
        out
    })
    .get(path)
    .map(Vec::as_slice)
}

/// A hashed asset: immutable, gzip-encoded when the client takes it.
async fn asset(UrlPath(file): UrlPath<String>, headers: HeaderMap) -> Response {
    let path = format!("assets/{file}");
    let Some(plain) = DIST.get_file(&path) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut out = HeaderMap::new();
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&file)),
    );
    out.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    out.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let gz = if accepts_gzip(&headers) {
        gzipped(&path)
    } else {
        None
    };
    match gz {
        Some(gz) => {
            out.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            (out, gz).into_response()
        }
        _ => (out, plain.contents()).into_response(),
    }
}

// ---------------------------------------------------------------------------
// Dashboards.

/// A dashboard file.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct Dashboard {
    /// The file name without its extension; the UI's address for it.
    #[serde(default, skip_deserializing)]
    id: String,
    /// The file, as the configuration's glob matched it.
    #[serde(default, skip_deserializing)]
    file: String,
    title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    /// Auto-refresh interval (`30s`); none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh: Option<String>,
    /// Default time range (`1h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    time: Option<String>,
    #[serde(default)]
    variables: Vec<Variable>,
    rows: Vec<Row>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Variable {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    label: Option<String>,
    /// `label_values(<selector>, <label>)` or `label_values(<label>)`.
    query: String,
    #[serde(default)]
    include_all: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Row {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    title: Option<String>,
    panels: Vec<Panel>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum PanelType {
    Timeseries,
    Stat,
    Gauge,
    Table,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Panel {
    title: String,
    #[serde(rename = "type")]
    kind: PanelType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    decimals: Option<u8>,
    /// Legend template for every query (`{{instance}}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    legend: Option<String>,
    queries: Vec<Query>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    thresholds: Vec<Threshold>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max: Option<f64>,
    #[serde(default)]
    stacked: bool,
    /// Columns out of 12 (6 by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    width: Option<u8>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Query {
    expr: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    legend: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Threshold {
    value: f64,
    color: String,
}

/// Why a dashboard file was not loaded.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub(crate) enum DashboardError {
    /// The file could not be read.
    #[error("reading: {0}")]
    Read(String),
    /// The YAML does not have the dashboard schema.
    #[error("{0}")]
    Schema(String),
    /// A value is out of range or malformed.
    #[error("{0}")]
    Invalid(String),
}

fn is_duration(s: &str) -> bool {
    let mut rest = s;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        let unit = ["ms", "s", "m", "h", "d", "w", "y"]
            .into_iter()
            .find(|u| rest.starts_with(u));
        match unit {
            Some(u) => rest = &rest[u.len()..],
            None => return false,
        }
    }
    true
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Dashboard {
    /// Parses and checks one dashboard file's text.
    pub(crate) fn parse(text: &str) -> Result<Dashboard, DashboardError> {
        let d: Dashboard =
            serde_yaml_ng::from_str(text).map_err(|e| DashboardError::Schema(e.to_string()))?;
        let bad = |m: String| Err(DashboardError::Invalid(m));
        for (key, v) in [("refresh", &d.refresh), ("time", &d.time)] {
            if let Some(v) = v {
                if !is_duration(v) {
                    return bad(format!("{key}: {v:?} is not a duration (like 30s or 1h)"));
                }
            }
        }
        for v in &d.variables {
            if !is_label_name(&v.name) {
                return bad(format!("variable {:?}: not a valid name", v.name));
            }
            let q = v.query.trim();
            let ok = q
                .strip_prefix("label_values(")
                .and_then(|r| r.strip_suffix(')'))
                .and_then(|args| args.rsplit(',').next())
                .is_some_and(|label| is_label_name(label.trim()));
            if !ok {
                return bad(format!(
                    "variable {:?}: query must be label_values(<selector>, <label>) or label_values(<label>)",
                    v.name
                ));
            }
        }
        for (ri, row) in d.rows.iter().enumerate() {
            for p in &row.panels {
                let at = format!("row {} panel {:?}", ri + 1, p.title);
                if p.queries.is_empty() {
                    return bad(format!("{at}: no queries"));
                }
                if let Some(w) = p.width {
                    if !(1..=12).contains(&w) {
                        return bad(format!("{at}: width {w} is not between 1 and 12"));
                    }
                }
                if p.queries.iter().any(|q| q.expr.trim().is_empty()) {
                    return bad(format!("{at}: empty expr"));
                }
            }
        }
        Ok(d)
    }
}

#[derive(Debug, Serialize, PartialEq)]
struct LoadError {
    file: String,
    error: String,
}

#[derive(Debug, Serialize, PartialEq)]
struct Loaded {
    dashboards: Vec<Dashboard>,
    errors: Vec<LoadError>,
}

/// Reads every dashboard file; ids are file stems and must be unique.
fn load_all(paths: &[PathBuf]) -> Loaded {
    let mut out = Loaded {
        dashboards: Vec::new(),
        errors: Vec::new(),
    };
    let mut ids = BTreeSet::new();
    for path in paths {
        let file = path.display().to_string();
        let id = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let loaded = std::fs::read_to_string(path)
            .map_err(|e| DashboardError::Read(e.to_string()))
            .and_then(|t| Dashboard::parse(&t))
            .and_then(|d| {
                if ids.insert(id.clone()) {
                    Ok(d)
                } else {
                    Err(DashboardError::Invalid(format!(
                        "another dashboard file is also named {id:?}"
                    )))
                }
            });
        match loaded {
            Ok(mut d) => {
                d.id = id;
                d.file = file;
                out.dashboards.push(d);
            }
            Err(e) => {
                tracing::warn!(file = %file, error = %e, "dashboard not loaded");
                out.errors.push(LoadError {
                    file,
                    error: e.to_string(),
                });
            }
        }
    }
    out
}

/// `GET /api/v1/dashboards`: every dashboard of the configuration in force.
async fn dashboards(State(state): State<AppState>) -> Response {
    let paths = state.lifecycle.current().await.dashboard_paths;
    let loaded = tokio::task::spawn_blocking(move || load_all(&paths)).await;
    match loaded {
        Ok(data) => {
            axum::Json(serde_json::json!({"status": "success", "data": data})).into_response()
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(serde_json::json!({
                "status": "error", "errorType": "internal", "error": e.to_string()
            })),
        )
            .into_response(),
    }
}

/// Checks a dashboard file (used by the tests of the shipped examples).
#[cfg(test)]
fn check_file(path: &std::path::Path) -> Result<Dashboard, DashboardError> {
    let text = std::fs::read_to_string(path).map_err(|e| DashboardError::Read(e.to_string()))?;
    Dashboard::parse(&text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn opts(external: Option<&str>, prefix: Option<&str>) -> ServerOptions {
        ServerOptions {
            external_url: external.map(String::from),
            route_prefix: prefix.map(String::from),
            ..ServerOptions::default()
        }
    }

    #[test]
    fn prefix_and_base_follow_prometheus() {
        assert_eq!(route_prefix(&opts(None, None)), "");
        assert_eq!(route_prefix(&opts(None, Some("/"))), "");
        assert_eq!(route_prefix(&opts(None, Some("vigil/"))), "/vigil");
        // The route prefix defaults to the external URL's path.
        assert_eq!(
            route_prefix(&opts(Some("http://h:9090/mon/vigil/?x=1"), None)),
            "/mon/vigil"
        );
        assert_eq!(base_path(&opts(None, None)), "/");
        assert_eq!(base_path(&opts(None, Some("/p"))), "/p/");
        // A proxy strips the external path: routes at the root, links
        // through the proxy.
        assert_eq!(
            base_path(&opts(Some("https://example.com/vigil"), Some("/"))),
            "/vigil/"
        );
        assert_eq!(route_prefix(&opts(Some("https://example.com"), None)), "");
    }

    #[test]
    fn index_carries_the_base_and_hashed_assets_exist() {
        let ui = UiOptions::new(&opts(None, Some("/p")));
        assert!(ui.index.contains("<base href=\"/p/\">"), "{}", ui.index);
        let assets: Vec<_> = DIST
            .get_dir("assets")
            .expect("ui/dist/assets")
            .files()
            .map(|f| f.path().to_string_lossy().into_owned())
            .collect();
        assert!(!assets.is_empty());
        for a in &assets {
            assert!(ui.index.contains(a.as_str()), "index.html misses {a}");
            let gz = gzipped(a).expect("gzipped");
            let mut plain = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz), &mut plain).unwrap();
            assert_eq!(plain, DIST.get_file(a).unwrap().contents());
        }
    }

    #[test]
    fn gzip_negotiation() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
            accepts_gzip(&m)
        };
        assert!(h("gzip, deflate, br"));
        assert!(h("br;q=1.0, gzip;q=0.8"));
        assert!(!h("gzip;q=0"));
        assert!(!h("br"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn dashboard_schema_is_checked() {
        let ok = "title: T\nrefresh: 30s\nvariables:\n  - name: job\n    query: label_values(up, job)\nrows:\n  - panels:\n      - title: P\n        type: stat\n        queries: [{expr: up}]\n        thresholds: [{value: 0, color: red}]\n";
        let d = Dashboard::parse(ok).unwrap();
        assert_eq!(d.rows[0].panels[0].kind, PanelType::Stat);
        let err = |t: &str| Dashboard::parse(t).unwrap_err().to_string();
        assert!(err("title: T\nrows: []\nbogus: 1\n").contains("unknown field `bogus`"));
        assert!(err("title: T\nrefresh: soon\nrows: []\n").contains("not a duration"));
        assert!(
            err("title: T\nvariables: [{name: x, query: up}]\nrows: []\n").contains("label_values")
        );
        assert!(err(
            "title: T\nrows: [{panels: [{title: P, type: pie, queries: [{expr: up}]}]}]\n"
        )
        .contains("unknown variant `pie`"));
        assert!(
            err("title: T\nrows: [{panels: [{title: P, type: stat, queries: []}]}]\n")
                .contains("no queries")
        );
        assert!(err(
            "title: T\nrows: [{panels: [{title: P, type: stat, width: 13, queries: [{expr: up}]}]}]\n"
        )
        .contains("width 13"));
    }

    #[test]
    fn load_all_reports_bad_files_and_duplicate_ids() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.yml");
        std::fs::write(&a, "title: A\nrows: []\n").unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let a2 = sub.join("a.yml");
        std::fs::write(&a2, "title: A again\nrows: []\n").unwrap();
        let b = dir.path().join("b.yml");
        std::fs::write(&b, "title: [\n").unwrap();
        let missing = dir.path().join("missing.yml");
        let got = load_all(&[a.clone(), a2, b, missing]);
        assert_eq!(got.dashboards.len(), 1);
        assert_eq!(got.dashboards[0].id, "a");
        assert_eq!(got.dashboards[0].file, a.display().to_string());
        assert_eq!(got.errors.len(), 3);
        assert!(got.errors[0].error.contains("also named \"a\""));
        assert!(got.errors[2].error.starts_with("reading:"));
    }

    /// Every dashboard shipped under examples/ passes the checks.
    #[test]
    fn shipped_dashboards_are_valid() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut n = 0;
        for dir in ["examples/dashboards", "examples/ev-bunker/dashboards"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "yml" || x == "yaml") {
                    check_file(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                    n += 1;
                }
            }
        }
        assert!(n >= 1, "no dashboards found under examples/");
    }
}
