//! An application that alerts on its own metrics in-process: it loads a
//! rule file, steps the rule evaluation with a manual clock, and reacts to
//! a firing alert by adding workers, after which the alert resolves.
//!
//! The application is a job queue. Jobs arrive at 12 per 15 s; each worker
//! finishes 5 per 15 s. With two workers the queue grows, `QueueBacklog`
//! (deeper than 100 jobs for a minute) fires, the application hears it on
//! a channel and starts two more workers, the queue drains and the alert
//! resolves.
//!
//! Run it with `cargo run -p vigil --no-default-features --example
//! embedded_alerts [RULE_FILE]`. It exits non-zero if the alert does not
//! fire and resolve when it should; `cargo test` runs the same logic.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{mpsc, Arc};

use vigil::model::{labels, Appender, Value};
use vigil::promql::{Engine, EngineOptions};
use vigil::rules::{EngineQuery, OutgoingAlert, RuleEngine};
use vigil::tsdb::Db;

/// The rule file next to this example.
fn default_rule_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/embedded_alerts.rules.yml")
}

/// What happened, for the checks.
#[derive(Debug, Default)]
struct Outcome {
    /// When QueueBacklog fired (s into the run) and its summary.
    fired: Option<(i64, String)>,
    /// When it resolved (s into the run).
    resolved: Option<i64>,
    workers: u32,
    depth: i64,
}

const START: i64 = 1_700_000_000_000 - 1_700_000_000_000 % 15_000;
const STEP: i64 = 15_000;

fn run(rule_file: &Path) -> Result<Outcome, Box<dyn Error>> {
    let db = Arc::new(Db::open_in_memory()?);
    let engine = Arc::new(Engine::new(EngineOptions::default()));
    let (alerts_tx, alerts_rx) = mpsc::channel::<Vec<OutgoingAlert>>();
    let mut rules = RuleEngine::new(db.clone(), EngineQuery::new(engine, db.clone()))
        .with_alert_sink(alerts_tx);
    let groups = rules
        .load_rule_files(&[rule_file], 60_000)
        .map_err(|errs| {
            errs.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        })?;
    println!("loaded {groups} rule group(s) from {}", rule_file.display());

    let mut out = Outcome {
        workers: 2,
        ..Outcome::default()
    };
    let depth_series = labels!("__name__" => "queue_depth", "queue" => "emails");
    for step in 0..=60 {
        let now = START + step * STEP;
        let secs = step * STEP / 1000;
        // The application works for 15 s, then records its queue depth.
        if step > 0 {
            out.depth = (out.depth + 12 - 5 * i64::from(out.workers)).max(0);
        }
        let mut app = db.appender();
        app.append(None, &depth_series, now, Value::Float(out.depth as f64))?;
        app.commit()?;

        // The rules run at the same clock; alerts come back on the channel.
        rules.advance_to(now);
        for alert in alerts_rx.try_iter().flatten() {
            if alert.labels.get("alertname") != Some("QueueBacklog") {
                continue;
            }
            if alert.is_resolved(now) {
                if out.fired.is_some() && out.resolved.is_none() {
                    println!("t={secs:>4}s  resolved: queue depth {}", out.depth);
                    out.resolved = Some(secs);
                }
            } else if out.fired.is_none() {
                let summary = alert
                    .annotations
                    .get("summary")
                    .cloned()
                    .unwrap_or_default();
                println!("t={secs:>4}s  FIRING: {summary}; starting two more workers");
                out.fired = Some((secs, summary));
                out.workers += 2;
            }
        }
    }
    Ok(out)
}

/// The expected story, checked.
fn check(out: &Outcome) -> Result<(), String> {
    // +2 jobs per step with 2 workers: deeper than 100 from step 51 (t=765s)
    // on; pending at that evaluation, firing one minute later (t=825s).
    let Some((fired_at, summary)) = &out.fired else {
        return Err("QueueBacklog never fired".into());
    };
    if *fired_at != 825 {
        return Err(format!(
            "QueueBacklog fired at t={fired_at}s, expected t=825s"
        ));
    }
    if summary != "queue emails holds 110 jobs" {
        return Err(format!("unexpected summary {summary:?}"));
    }
    if out.workers != 4 {
        return Err(format!("{} workers, expected 4", out.workers));
    }
    // Four workers drain 8 per step: the 1m maximum drops to 100 or below at
    // t=900s, and the alert resolves at that evaluation.
    match out.resolved {
        Some(900) => Ok(()),
        Some(t) => Err(format!("resolved at t={t}s, expected t=900s")),
        None => Err("QueueBacklog never resolved".into()),
    }
}

fn main() -> ExitCode {
    let rule_file = std::env::args_os()
        .nth(1)
        .map_or_else(default_rule_file, PathBuf::from);
    match run(&rule_file)
        .map_err(|e| e.to_string())
        .and_then(|o| check(&o))
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("embedded_alerts: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_alert_fires_and_resolves_when_it_should() {
        let out = super::run(&super::default_rule_file()).unwrap();
        super::check(&out).unwrap();
    }
}
