//! Recording rules evaluated over a past range into blocks, as
//! `promtool tsdb create-blocks-from rules` does: each recording rule's
//! expression is sent as a range query (`/api/v1/query_range`) to a
//! Prometheus-compatible server (vigil itself, or Prometheus), one query
//! per block range, with the group's interval as the step and its first
//! step aligned as the rule engine aligns the group's evaluations. Every
//! series of the answer becomes a series named after the rule, with the
//! rule's labels on top (they win over the query's), as a live evaluation
//! records it.
//!
//! Like promtool: alerting rules are skipped; each rule is queried on its
//! own, so a rule that reads another rule's output sees only what the
//! server already holds of it (backfill such rules in a second run once the
//! first run's blocks are loaded); a group's `query_offset` and `limit` do
//! not apply.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use vigil_model::{Labels, LabelsBuilder, METRIC_NAME};
use vigil_rules::{Group, Rule};
use vigil_tsdb::import::BlockImporter;

/// The most points Prometheus returns per series of one range query.
const MAX_POINTS: i64 = 11_000;

/// What to backfill.
#[derive(Debug, Clone)]
pub(crate) struct RulesBackfill {
    /// The server's base URL (`http://localhost:9090`).
    pub url: String,
    /// First evaluation time, ms.
    pub start: i64,
    /// Last evaluation time, ms (inclusive).
    pub end: i64,
    /// The rule files.
    pub files: Vec<PathBuf>,
    /// The interval of groups that set none, ms.
    pub eval_interval: i64,
    /// The block range, ms.
    pub block_duration: i64,
    /// Timeout of one query.
    pub timeout: Duration,
    /// A bearer token sent with every query (a vigil behind
    /// `--web.config.file`).
    pub bearer_token: Option<String>,
}

/// What was backfilled.
#[derive(Debug, Clone, Default)]
pub(crate) struct RulesReport {
    /// Recording rules evaluated.
    pub rules: usize,
    /// Alerting rules skipped.
    pub skipped_alerts: usize,
    /// Range queries sent.
    pub queries: usize,
    /// Warnings the server returned.
    pub warnings: Vec<String>,
}

/// One recording rule to evaluate.
struct Job<'g> {
    group: &'g Group,
    name: &'g str,
    expr: &'g str,
    labels: &'g Labels,
}

/// The group's evaluation times, within `[start, end]`, in queries of at
/// most [`MAX_POINTS`] steps that never cross a block range: `(first,
/// last)` evaluation times of each query.
pub(crate) fn query_ranges(
    start: i64,
    end: i64,
    block: i64,
    interval: i64,
    align: impl Fn(i64) -> i64,
) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    if start > end || block <= 0 || interval <= 0 {
        return out;
    }
    let mut block_start = start.div_euclid(block) * block;
    while block_start <= end {
        let block_end = block_start.saturating_add(block - 1).min(end);
        let from = block_start.max(start);
        // The first slot at or after `from`.
        let mut t = align(from);
        while t < from {
            t = t.saturating_add(interval);
        }
        while t <= block_end {
            let last = t
                .saturating_add((MAX_POINTS - 1).saturating_mul(interval))
                .min(block_end);
            let last = t + (last - t) / interval * interval;
            out.push((t, last));
            t = last.saturating_add(interval);
        }
        let Some(next) = block_start.checked_add(block) else {
            break;
        };
        block_start = next;
    }
    out
}

/// The HTTP client: vigil's outgoing client, with the bearer token.
fn client(timeout: Duration, bearer_token: Option<&str>) -> anyhow::Result<reqwest::Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(t) = bearer_token {
        let mut v = reqwest::header::HeaderValue::from_str(&format!("Bearer {t}"))
            .map_err(|_| anyhow::anyhow!("the bearer token holds characters a header cannot"))?;
        v.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, v);
    }
    Ok(vigil_scrape::client_builder()?
        .default_headers(headers)
        .timeout(timeout)
        .build()?)
}

fn secs(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let a = ms.unsigned_abs();
    format!("{sign}{}.{:03}", a / 1000, a % 1000)
}

/// One range query; the matrix as (labels, samples), and the warnings.
async fn query_range(
    client: &reqwest::Client,
    base: &str,
    expr: &str,
    (start, end, step): (i64, i64, i64),
) -> anyhow::Result<(Vec<(Labels, Vec<(i64, f64)>)>, Vec<String>)> {
    let url = reqwest::Url::parse_with_params(
        &format!("{}/api/v1/query_range", base.trim_end_matches('/')),
        &[
            ("query", expr.to_string()),
            ("start", secs(start)),
            ("end", secs(end)),
            ("step", secs(step)),
        ],
    )
    .with_context(|| format!("bad --url {base:?}"))?;
    let resp =
        client.get(url.clone()).send().await.with_context(|| {
            format!("querying {}", url.as_str().split('?').next().unwrap_or(""))
        })?;
    let status = resp.status();
    let body = resp.bytes().await.context("reading the query answer")?;
    let json: serde_json::Value = serde_json::from_slice(&body).with_context(|| {
        format!(
            "the server answered HTTP {status} with something that is not JSON: {:?}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        )
    })?;
    if json["status"] != "success" {
        bail!(
            "the query failed (HTTP {status}): {}: {}",
            json["errorType"].as_str().unwrap_or("error"),
            json["error"].as_str().unwrap_or("no message")
        );
    }
    let warnings = json["warnings"]
        .as_array()
        .map(|w| {
            w.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let data = &json["data"];
    if data["resultType"] != "matrix" {
        bail!(
            "rule result is of type {}, not a matrix",
            data["resultType"]
        );
    }
    let mut out = Vec::new();
    for series in data["result"].as_array().into_iter().flatten() {
        let mut b = LabelsBuilder::new();
        for (k, v) in series["metric"].as_object().into_iter().flatten() {
            b.set(k, v.as_str().unwrap_or_default());
        }
        let mut samples = Vec::new();
        for point in series["values"].as_array().into_iter().flatten() {
            let (Some(t), Some(v)) = (point[0].as_f64(), point[1].as_str()) else {
                bail!("malformed point {point} in the query answer");
            };
            let v = vigil_scrape::parse::parse_go_float(v)
                .ok_or_else(|| anyhow!("malformed value {v:?} in the query answer"))?;
            samples.push(((t * 1000.0).round() as i64, v));
        }
        out.push((b.build(), samples));
    }
    Ok((out, warnings))
}

/// The series a rule records for one series of its query's answer: the
/// query's labels, the rule's labels over them, the rule's name.
fn recorded_labels(query: &Labels, rule: &Labels, name: &str) -> Labels {
    let mut b = LabelsBuilder::from_labels(query);
    for l in rule.iter() {
        b.set(l.name, l.value);
    }
    b.set(METRIC_NAME, name);
    b.build()
}

/// Evaluates every recording rule of `cfg.files` over `[start, end]`
/// against `cfg.url` and adds the results to `imp`. `progress` gets
/// (queries done, queries in all, samples so far).
pub(crate) fn backfill(
    cfg: &RulesBackfill,
    imp: &mut BlockImporter,
    progress: &mut dyn FnMut(usize, usize, u64),
) -> anyhow::Result<RulesReport> {
    let groups = vigil_rules::load_groups(&cfg.files, cfg.eval_interval).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        anyhow!("invalid rule files:\n  {}", lines.join("\n  "))
    })?;
    let mut report = RulesReport::default();
    let mut jobs = Vec::new();
    for g in &groups {
        for (i, r) in g.rules.iter().enumerate() {
            match r {
                Rule::Recording(rec) => jobs.push(Job {
                    group: g,
                    name: &rec.name,
                    expr: g.def.rules.get(i).map_or("", |d| d.expr.0.as_str()),
                    labels: &rec.labels,
                }),
                Rule::Alerting(_) => report.skipped_alerts += 1,
            }
        }
    }
    report.rules = jobs.len();
    let plans: Vec<Vec<(i64, i64)>> = jobs
        .iter()
        .map(|j| {
            query_ranges(
                cfg.start,
                cfg.end,
                cfg.block_duration,
                j.group.interval,
                |t| j.group.eval_timestamp(t),
            )
        })
        .collect();
    let total: usize = plans.iter().map(Vec::len).sum();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let client =
        client(cfg.timeout, cfg.bearer_token.as_deref()).context("building the HTTP client")?;
    progress(0, total, 0);
    for (job, plan) in jobs.iter().zip(&plans) {
        for &(first, last) in plan {
            let (matrix, warnings) = rt
                .block_on(query_range(
                    &client,
                    &cfg.url,
                    job.expr,
                    (first, last, job.group.interval),
                ))
                .with_context(|| {
                    format!(
                        "rule {:?} of group {:?}, evaluations from {} to {}",
                        job.name,
                        job.group.name,
                        secs(first),
                        secs(last)
                    )
                })?;
            report.warnings.extend(warnings);
            for (labels, samples) in matrix {
                let s = imp.series(recorded_labels(&labels, job.labels, job.name))?;
                for (t, v) in samples {
                    imp.add(s, t, v)?;
                }
            }
            report.queries += 1;
            progress(report.queries, total, imp.samples());
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_model::labels;

    const H: i64 = 3_600_000;

    #[test]
    fn queries_follow_block_ranges_and_alignment() {
        // 1 minute steps shifted by 7 s, from 01:30 to 04:10.
        let r = query_ranges(90 * 60_000, 250 * 60_000, 2 * H, 60_000, |t| {
            (t - 7_000).div_euclid(60_000) * 60_000 + 7_000
        });
        assert_eq!(
            r,
            vec![
                (90 * 60_000 + 7_000, 119 * 60_000 + 7_000),
                (120 * 60_000 + 7_000, 239 * 60_000 + 7_000),
                (240 * 60_000 + 7_000, 249 * 60_000 + 7_000),
            ]
        );
    }

    #[test]
    fn long_blocks_are_split_into_queries_of_at_most_11000_steps() {
        let r = query_ranges(0, 54 * H - 1, 54 * H, 15_000, |t| t);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0], (0, 10_999 * 15_000));
        assert_eq!(r[1], (11_000 * 15_000, 54 * H - 15_000));
        assert!(query_ranges(10, 5, 2 * H, 1, |t| t).is_empty());
    }

    #[test]
    fn rule_labels_win_and_name_is_set() {
        let q = labels!("__name__" => "up", "job" => "a", "env" => "dev");
        let r = labels!("env" => "prod");
        assert_eq!(
            recorded_labels(&q, &r, "job:up"),
            labels!("__name__" => "job:up", "env" => "prod", "job" => "a")
        );
    }

    #[test]
    fn seconds_are_formatted_exactly() {
        assert_eq!(secs(1_500), "1.500");
        assert_eq!(secs(-1_500), "-1.500");
        assert_eq!(secs(1_700_000_000_123), "1700000000.123");
    }
}
