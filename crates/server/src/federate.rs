//! `/federate?match[]=...`: the newest sample of every matching series
//! within the lookback window, in the text exposition format 0.0.4, as
//! Prometheus's `web/federate.go` writes it: grouped and sorted by metric
//! name, each name under a `# TYPE <name> untyped` line (vigil keeps no
//! metric types yet), each sample with its timestamp, stale markers left
//! out.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use vigil_model::{Labels, Queryable, ValueType};

use crate::api::{blocking, Params};
use crate::selfmetrics::escape_label_value;
use crate::AppState;

/// A float as Go's `strconv.FormatFloat(f, 'g', -1, 64)` writes it, which
/// the exposition format uses: shortest digits, an exponent from 1e+06 up
/// and below 1e-04 (`1e+06`, `1.5e-07`, `123456`, `0.0001`).
pub(crate) fn go_float_g(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // Rust's `{:e}` gives the shortest round-trip digits: `1.5e-7`.
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    format!("{v}")
}

fn text_error(status: StatusCode, msg: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        msg + "\n",
    )
        .into_response()
}

/// `GET /federate`.
pub(crate) async fn federate(State(st): State<AppState>, p: Params) -> Response {
    let mut sets = Vec::new();
    for s in p.all("match[]") {
        match vigil_promql::parse_series_selector(s) {
            Ok(ms) => sets.push(ms),
            Err(e) => return text_error(StatusCode::BAD_REQUEST, e.to_string()),
        }
    }
    let maxt = vigil_model::time::now_ms();
    let mint = maxt - st.engine.options().lookback_delta;
    let ext = st.lifecycle.external_labels();
    let latest = blocking(move || {
        let q = st
            .db
            .querier(mint, maxt)
            .map_err(|e| crate::api::ApiError::internal(e.to_string()))?;
        // Series matched by several selectors appear once.
        let mut latest: BTreeMap<Labels, (i64, f64)> = BTreeMap::new();
        for ms in &sets {
            let set = q
                .select(true, None, ms)
                .map_err(|e| crate::api::ApiError::internal(e.to_string()))?;
            for s in &set.series {
                if latest.contains_key(s.labels()) {
                    continue;
                }
                let mut it = s.iter();
                let mut last = None;
                let mut ty = it.seek(mint);
                while ty == ValueType::Float {
                    let (t, v) = it.at();
                    if t > maxt {
                        break;
                    }
                    last = Some((t, v));
                    ty = it.next();
                }
                if let Some(e) = it.err() {
                    return Err(crate::api::ApiError::internal(e.to_string()));
                }
                // The exposition format has no stale markers.
                if let Some((t, v)) = last.filter(|(_, v)| !vigil_model::is_stale(*v)) {
                    latest.insert(s.labels().clone(), (t, v));
                }
            }
        }
        Ok(latest)
    })
    .await;
    let latest = match latest {
        Ok(l) => l,
        Err(e) => return text_error(StatusCode::INTERNAL_SERVER_ERROR, e.message),
    };
    // External labels are added where a series does not have the label
    // itself, as Prometheus's federation does.
    let external = ext.clone();
    let latest: BTreeMap<Labels, (i64, f64)> = if external.is_empty() {
        latest
    } else {
        latest
            .into_iter()
            .map(|(l, s)| {
                let mut b = l.builder();
                for e in external.iter() {
                    if l.get(e.name).is_none() {
                        b.set(e.name, e.value);
                    }
                }
                (b.build(), s)
            })
            .collect()
    };
    // Sorted by metric name; within a name, by labels.
    let mut samples: Vec<(&Labels, &(i64, f64))> = latest.iter().collect();
    samples.sort_by(|a, b| {
        a.0.get_or_empty("__name__")
            .cmp(b.0.get_or_empty("__name__"))
    });
    let mut out = String::new();
    let mut current: Option<&str> = None;
    for (labels, (t, v)) in samples {
        let name = labels.get_or_empty("__name__");
        if current != Some(name) {
            let _ = writeln!(out, "# TYPE {name} untyped");
            current = Some(name);
        }
        out.push_str(name);
        let mut first = true;
        for l in labels.iter().filter(|l| l.name != "__name__") {
            out.push(if first { '{' } else { ',' });
            first = false;
            let _ = write!(out, "{}=\"{}\"", l.name, escape_label_value(l.value));
        }
        if !first {
            out.push('}');
        }
        let _ = writeln!(out, " {} {t}", go_float_g(*v));
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_as_go_writes_them() {
        assert_eq!(go_float_g(1.0), "1");
        assert_eq!(go_float_g(123456.0), "123456");
        assert_eq!(go_float_g(1e6), "1e+06");
        assert_eq!(go_float_g(1234567.0), "1.234567e+06");
        assert_eq!(go_float_g(0.0001), "0.0001");
        assert_eq!(go_float_g(0.00001), "1e-05");
        assert_eq!(go_float_g(1.5e-7), "1.5e-07");
        assert_eq!(go_float_g(-2.5), "-2.5");
        assert_eq!(go_float_g(1e300), "1e+300");
        assert_eq!(go_float_g(f64::NEG_INFINITY), "-Inf");
    }
}
