//! Configuration reload and shutdown: SIGHUP (through [`crate::Server::reload`]),
//! `POST /-/reload` and `POST /-/quit` (with `--web.enable-lifecycle`).
//!
//! A reload reads and validates the whole file first and applies it only if
//! it is valid, so a bad file leaves the running configuration untouched.
//! Reloads are serialized.

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use parking_lot::RwLock;
use vigil_tsdb::Db;

use vigil_rules::{EngineQuery, ManagerOptions, RuleManager};
use vigil_scrape::probe::ProbeManager;
use vigil_scrape::{ScrapeManager, ScrapeOptions};

use crate::alertmanager::Notifier;

use crate::config::{Config, ConfigError};
use crate::status::ReloadStatus;
use crate::AppState;

/// What the server needs to apply a configuration, and the current one.
#[derive(Debug)]
pub(crate) struct Lifecycle {
    /// Whether `/-/reload` and `/-/quit` are served.
    pub(crate) enabled: bool,
    /// The file reloads read; `None` runs the embedded default.
    file: Option<PathBuf>,
    /// The configuration in force. The async mutex serializes reloads.
    current: tokio::sync::Mutex<Config>,
    db: Arc<Db>,
    /// Retention from the flags, used where the file sets none.
    flag_retention: (Option<i64>, Option<u64>),
    /// The out-of-order window from the storage options.
    flag_ooo_window: i64,
    config_yaml: Arc<RwLock<String>>,
    config_reload: Arc<RwLock<ReloadStatus>>,
    quit: tokio::sync::watch::Sender<bool>,
    /// The scrape loops of `scrape_configs`.
    pub(crate) scrape: Arc<ScrapeManager<Db>>,
    /// The HTTP probes of the `probes` section.
    pub(crate) probes: Arc<ProbeManager<Db>>,
    /// `global.external_labels` in force, for federation.
    external_labels: RwLock<vigil_model::Labels>,
    /// The rule groups of `rule_files`.
    pub(crate) rules: Arc<RuleManager<Db>>,
    /// Sends alerts to `alerting.alertmanagers`.
    pub(crate) notifier: Arc<Notifier>,
    notifier_task: tokio::task::JoinHandle<()>,
    /// vigil's own notifier (`notify:`), with the task that runs it.
    local: parking_lot::Mutex<Option<LocalNotify>>,
    /// Where the notifier keeps its state.
    notify_dir: PathBuf,
    /// The URL vigil is reached at.
    external_url: String,
    /// The queues of `remote_write`.
    pub(crate) remote_write: crate::remote_send::RemoteWriteManager,
}

/// vigil's own notifier and what runs it.
#[derive(Debug)]
struct LocalNotify {
    notifier: Arc<vigil_notify::Notifier>,
    stop: tokio::sync::watch::Sender<bool>,
    text: String,
}

/// How the lifecycle is set up by the server.
#[derive(Debug)]
pub(crate) struct LifecycleOptions {
    /// Whether `/-/reload` and `/-/quit` are served.
    pub(crate) enabled: bool,
    /// The configuration file, if any.
    pub(crate) file: Option<PathBuf>,
    /// The URL vigil is reached at (links in alerts).
    pub(crate) external_url: String,
    /// The configuration text shown by the status API.
    pub(crate) config_yaml: Arc<RwLock<String>>,
    /// The outcome of the last reload.
    pub(crate) config_reload: Arc<RwLock<ReloadStatus>>,
    /// Store rule results with the external labels.
    pub(crate) rules_store_external_labels: bool,
}

/// Rule file errors as one message, one error per line.
fn rule_errors(errors: &[vigil_rules::RuleFileError]) -> String {
    let lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    format!("rule_files: {}", lines.join("; "))
}

impl Lifecycle {
    /// Starts the configuration's scrape loops and rule groups and applies
    /// its storage settings. Fails (and starts nothing) when a scrape job
    /// cannot be set up (for example, an unreadable TLS CA file) or a rule
    /// file is invalid.
    pub(crate) async fn start(
        opts: LifecycleOptions,
        config: Config,
        db: Arc<Db>,
        engine: Arc<vigil_promql::Engine>,
    ) -> Result<Lifecycle, String> {
        let flag_retention = db.retention();
        let flag_ooo_window = db.head().out_of_order_window();
        let (quit, _) = tokio::sync::watch::channel(false);
        let notifier = Notifier::new().map_err(|e| format!("building the alert sender: {e}"))?;
        notifier.apply(&config.alerting.alertmanagers);
        let notifier_task = notifier.spawn();
        let notify_dir = db.dir().join("notify");
        let remote_write = crate::remote_send::RemoteWriteManager::new(db.clone())
            .map_err(|e| format!("building the remote-write sender: {e}"))?;
        remote_write
            .apply(&config.remote_write, &config.global.external_labels)
            .await
            .map_err(|e| format!("remote_write: {e}"))?;
        let scrape = Arc::new(ScrapeManager::new(db.clone(), ScrapeOptions::default()));
        let probes = Arc::new(ProbeManager::new(db.clone()));
        probes.apply(&config.probes).await?;
        scrape
            .apply(&config.scrape_configs, &config.global.scrape_defaults())
            .await
            .map_err(|e| format!("scrape_configs: {e}"))?;
        let rules = Arc::new(RuleManager::new(
            db.clone(),
            Arc::new(EngineQuery::new(engine, db.clone())),
            notifier.clone(),
            ManagerOptions {
                external_labels: config.global.external_labels.clone(),
                external_url: opts.external_url.clone(),
                state_dir: Some(db.dir().join("rules")),
                store_external_labels: opts.rules_store_external_labels,
                ..ManagerOptions::default()
            },
        ));
        if let Err(errors) = rules
            .update(
                &config.rule_file_paths,
                config.global.evaluation_interval,
                config.global.external_labels.clone(),
            )
            .await
        {
            scrape.stop().await;
            return Err(rule_errors(&errors));
        }
        let lc = Lifecycle {
            enabled: opts.enabled,
            file: opts.file,
            current: tokio::sync::Mutex::new(config.clone()),
            db,
            flag_retention,
            flag_ooo_window,
            config_yaml: opts.config_yaml,
            config_reload: opts.config_reload,
            quit,
            scrape,
            probes,
            external_labels: RwLock::new(config.global.external_labels.clone()),
            rules,
            notifier,
            notifier_task,
            local: parking_lot::Mutex::new(None),
            notify_dir,
            external_url: opts.external_url.clone(),
            remote_write,
        };
        lc.apply_storage(&config);
        lc.apply_notify(config.notify.as_ref()).await?;
        Ok(lc)
    }

    /// Starts, reconfigures or stops vigil's own notifier to match the
    /// `notify:` section. State (silences, acks, escalations, the
    /// notification log) survives reconfiguration and restarts.
    async fn apply_notify(
        &self,
        section: Option<&crate::config::NotifySection>,
    ) -> Result<(), String> {
        let existing = self.local.lock().as_ref().map(|l| l.notifier.clone());
        match (section, existing) {
            (None, None) => Ok(()),
            (None, Some(_)) => {
                if let Some(l) = self.local.lock().take() {
                    let _ = l.stop.send(true);
                }
                self.notifier.set_local(None);
                Ok(())
            }
            (Some(s), Some(n)) => {
                let cfg = s.config.clone();
                let text = s.text.clone();
                tokio::task::spawn_blocking(move || n.apply_config(cfg))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| format!("notify: {e}"))?;
                if let Some(l) = self.local.lock().as_mut() {
                    l.text = text;
                }
                Ok(())
            }
            (Some(s), None) => {
                let cfg = s.config.clone();
                let dir = self.notify_dir.clone();
                let url = self.external_url.clone();
                let n = tokio::task::spawn_blocking(move || {
                    let opts = vigil_notify::NotifierOptions {
                        core: vigil_notify::CoreOptions {
                            external_url: url,
                            ..vigil_notify::CoreOptions::default()
                        },
                        ..vigil_notify::NotifierOptions::default()
                    };
                    vigil_notify::Notifier::with_options(
                        cfg,
                        &dir,
                        Arc::new(vigil_notify::SystemClock),
                        opts,
                        integration_factory(),
                    )
                })
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("notify: {e}"))?;
                let n = Arc::new(n);
                let (stop, mut rx) = tokio::sync::watch::channel(false);
                let runner = n.clone();
                tokio::spawn(async move {
                    runner
                        .run(async move {
                            let _ = rx.wait_for(|s| *s).await;
                        })
                        .await;
                });
                self.notifier.set_local(Some(n.clone()));
                *self.local.lock() = Some(LocalNotify {
                    notifier: n,
                    stop,
                    text: s.text.clone(),
                });
                Ok(())
            }
        }
    }

    /// vigil's own notifier, when configured.
    pub(crate) fn local_notifier(&self) -> Option<Arc<vigil_notify::Notifier>> {
        self.local.lock().as_ref().map(|l| l.notifier.clone())
    }

    /// The text of the `notify:` section in force.
    pub(crate) fn notify_config_text(&self) -> String {
        self.local
            .lock()
            .as_ref()
            .map(|l| l.text.clone())
            .unwrap_or_default()
    }

    /// Stops scraping and rule evaluation (at server shutdown).
    pub(crate) async fn stop(&self) {
        if let Some(l) = self.local.lock().take() {
            let _ = l.stop.send(true);
        }
        self.rules.stop().await;
        self.scrape.stop().await;
        self.probes.stop().await;
        self.notifier_task.abort();
        self.remote_write.stop().await;
    }

    /// Applies the storage settings of `c`.
    fn apply_storage(&self, c: &Config) {
        // Each retention setting of the file overrides its flag.
        let (t, s) = self.flag_retention;
        let time = c.storage.retention_time.or(t);
        self.db.set_retention(time, c.storage.retention_size.or(s));
        // Rules can only shorten: whole blocks past the time retention go.
        for r in c.storage.retention_rules.rules() {
            if time.is_some_and(|t| r.retention() >= t) {
                tracing::warn!(rule = %r, "retention rule is not shorter than the time retention; it has no effect");
            }
        }
        self.db
            .set_retention_rules(c.storage.retention_rules.clone());
        self.db.head().set_out_of_order_window(
            c.storage
                .out_of_order_time_window
                .unwrap_or(self.flag_ooo_window),
        );
    }

    /// Reads the file again and applies it; on any error the running
    /// configuration stays and the error is returned (and logged).
    pub(crate) async fn reload(&self) -> Result<(), ConfigError> {
        let mut current = self.current.lock().await;
        let Some(file) = self.file.clone() else {
            // The embedded default cannot change; re-applying it is a no-op
            // that succeeds, as a reload of an unchanged file does.
            self.config_reload.write().record(true);
            return Ok(());
        };
        let loaded = tokio::task::spawn_blocking(move || Config::load(&file))
            .await
            .unwrap_or_else(|e| {
                Err(ConfigError::Read {
                    path: PathBuf::new(),
                    reason: format!("reload task failed: {e}"),
                })
            });
        let invalid = |reason: String| ConfigError::Invalid {
            path: self.file.clone().unwrap_or_default(),
            line: None,
            column: None,
            reason,
        };
        // The notify section's receivers are built (reading template and
        // CA files) before anything is applied, so one that cannot be
        // built fails the reload and leaves everything as it was.
        let loaded = match loaded {
            Ok(c) => match c.notify.as_ref().map(|s| s.config.clone()) {
                None => Ok(c),
                Some(cfg) => {
                    match tokio::task::spawn_blocking(move || check_notify(&cfg))
                        .await
                        .unwrap_or_else(|e| Err(format!("notify: check task failed: {e}")))
                    {
                        Ok(()) => Ok(c),
                        Err(e) => Err(invalid(e)),
                    }
                }
            },
            Err(e) => Err(e),
        };
        let loaded = match loaded {
            Ok(c) => {
                // Rule files are checked before anything is applied, so a
                // bad one leaves everything as it was.
                let files = c.rule_file_paths.clone();
                let interval = c.global.evaluation_interval;
                let checked = tokio::task::spawn_blocking(move || {
                    vigil_rules::load_groups(&files, interval).map(|_| ())
                })
                .await
                .unwrap_or(Ok(()));
                match checked {
                    Err(errors) => Err(invalid(rule_errors(&errors))),
                    Ok(()) => match self
                        .scrape
                        .apply(&c.scrape_configs, &c.global.scrape_defaults())
                        .await
                    {
                        Err(e) => Err(invalid(format!("scrape_configs: {e}"))),
                        Ok(()) => match self
                            .rules
                            .update(
                                &c.rule_file_paths,
                                c.global.evaluation_interval,
                                c.global.external_labels.clone(),
                            )
                            .await
                        {
                            Err(errors) => Err(invalid(rule_errors(&errors))),
                            Ok(()) => {
                                self.notifier.apply(&c.alerting.alertmanagers);
                                if let Err(e) = self.apply_notify(c.notify.as_ref()).await {
                                    tracing::error!(error = %e, "applying the notify section failed; the notifier keeps its previous configuration");
                                }
                                Ok(c)
                            }
                        },
                    },
                }
            }
            Err(e) => Err(e),
        };
        let loaded = match loaded {
            Ok(c) => match self.probes.apply(&c.probes).await {
                Ok(()) => Ok(c),
                Err(e) => Err(ConfigError::Invalid {
                    path: self.file.clone().unwrap_or_default(),
                    line: None,
                    column: None,
                    reason: format!("probes: {e}"),
                }),
            },
            Err(e) => Err(e),
        };
        let loaded = match loaded {
            Ok(c) => match self
                .remote_write
                .apply(&c.remote_write, &c.global.external_labels)
                .await
            {
                Ok(()) => Ok(c),
                Err(e) => Err(invalid(format!("remote_write: {e}"))),
            },
            Err(e) => Err(e),
        };
        match loaded {
            Ok(c) => {
                self.apply_storage(&c);
                *self.external_labels.write() = c.global.external_labels.clone();
                *self.config_yaml.write() = c.source.clone();
                *current = c;
                self.config_reload.write().record(true);
                tracing::info!("completed loading of configuration file");
                Ok(())
            }
            Err(e) => {
                self.config_reload.write().record(false);
                tracing::error!(error = %e, "reloading the configuration failed; the running configuration stays");
                Err(e)
            }
        }
    }

    /// `global.external_labels` in force.
    pub(crate) fn external_labels(&self) -> vigil_model::Labels {
        self.external_labels.read().clone()
    }

    /// The configuration in force.
    pub(crate) async fn current(&self) -> Config {
        self.current.lock().await.clone()
    }

    /// Writes the reload metrics in the text format.
    pub(crate) fn write_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        let st = self.config_reload.read();
        let ts = st
            .last_success
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let _ = write!(
            out,
            "# HELP vigil_config_last_reload_successful Whether the last configuration reload attempt was successful.\n\
             # TYPE vigil_config_last_reload_successful gauge\n\
             vigil_config_last_reload_successful {}\n\
             # HELP vigil_config_last_reload_success_timestamp_seconds Timestamp of the last successful configuration reload.\n\
             # TYPE vigil_config_last_reload_success_timestamp_seconds gauge\n\
             vigil_config_last_reload_success_timestamp_seconds {}\n",
            u8::from(st.success),
            crate::api::format_value(ts.floor()),
        );
        drop(st);
        self.notifier.write_metrics(out);
        self.remote_write.write_metrics(out);
        write_rule_metrics(&self.rules.groups(), out);
    }

    /// Asks the server to stop, as `/-/quit` does.
    pub(crate) fn request_quit(&self) {
        self.quit.send_replace(true);
    }

    /// Resolves once a stop was requested through [`Self::request_quit`].
    pub(crate) async fn quit_requested(&self) {
        let mut rx = self.quit.subscribe();
        let _ = rx.wait_for(|q| *q).await;
    }
}

const LIFECYCLE_DISABLED: &str = "Lifecycle API is not enabled.";

/// `POST|PUT /-/reload`.
pub(crate) async fn reload(State(st): State<AppState>) -> Response {
    if !st.lifecycle.enabled {
        return (StatusCode::FORBIDDEN, LIFECYCLE_DISABLED).into_response();
    }
    match st.lifecycle.reload().await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload config: {e}"),
        )
            .into_response(),
    }
}

/// `POST|PUT /-/quit`.
pub(crate) async fn quit(State(st): State<AppState>) -> Response {
    if !st.lifecycle.enabled {
        return (StatusCode::FORBIDDEN, LIFECYCLE_DISABLED).into_response();
    }
    st.lifecycle.request_quit();
    (StatusCode::OK, "Requesting termination... Goodbye!").into_response()
}

/// Rule group metrics, named as Prometheus names them with `vigil_`.
fn write_rule_metrics(groups: &[vigil_rules::Group], out: &mut String) {
    use std::fmt::Write;
    type Get = fn(&vigil_rules::Group) -> String;
    let families: [(&str, &str, &str, Get); 6] = [
        (
            "vigil_rule_group_iterations_total",
            "counter",
            "Evaluations of the group.",
            |g| g.iterations.to_string(),
        ),
        (
            "vigil_rule_group_iterations_missed_total",
            "counter",
            "Evaluation slots the group missed.",
            |g| g.missed.to_string(),
        ),
        (
            "vigil_rule_group_interval_seconds",
            "gauge",
            "The group's evaluation interval.",
            |g| (g.interval as f64 / 1000.0).to_string(),
        ),
        (
            "vigil_rule_group_last_duration_seconds",
            "gauge",
            "How long the last evaluation took.",
            |g| g.evaluation_seconds.to_string(),
        ),
        (
            "vigil_rule_group_last_evaluation_timestamp_seconds",
            "gauge",
            "When the group last ran.",
            |g| {
                g.last_evaluation
                    .map_or(0.0, |t| t as f64 / 1000.0)
                    .to_string()
            },
        ),
        (
            "vigil_rule_group_rules",
            "gauge",
            "Rules in the group.",
            |g| g.rules.len().to_string(),
        ),
    ];
    for (name, ty, help, get) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {ty}");
        for g in groups {
            let key = format!("{};{}", g.file.display(), g.name)
                .replace('\\', "\\\\")
                .replace('"', "\\\"");
            let _ = writeln!(out, "{name}{{rule_group=\"{key}\"}} {}", get(g));
        }
    }
}

/// Builds what applying a `notify:` section builds (the routing tree and
/// every receiver's integrations) and drops it: whether the section would
/// apply. Reads files; call it off the async workers.
fn check_notify(cfg: &vigil_notify::Config) -> Result<(), String> {
    vigil_notify::dispatch::Compiled::new(cfg.clone()).map_err(|e| format!("notify: {e}"))?;
    let factory = integration_factory();
    for rc in &cfg.receivers {
        factory(cfg, rc).map_err(|e| format!("notify: receiver {:?}: {e}", rc.name))?;
    }
    Ok(())
}

/// Builds receiver integrations with Alertmanager's `global` defaults and
/// the `templates:` files on top of vigil's default templates. Relative
/// paths were resolved when the configuration was loaded
/// ([`vigil_notify::Config::resolve_paths`]).
fn integration_factory() -> vigil_notify::IntegrationFactory {
    use vigil_notify::receivers::{build_with, BuildContext, ReceiverDefaults, Secret};
    Arc::new(
        move |cfg: &vigil_notify::Config, rc: &vigil_notify::receivers::ReceiverConfig| {
            let mut templates = vigil_template::TemplateSet::with_defaults();
            for t in &cfg.templates {
                templates
                    .add_glob(t)
                    .map_err(|e| format!("templates: {e}"))?;
            }
            let g = &cfg.global;
            let defaults = ReceiverDefaults {
                smtp_from: g.smtp_from.clone(),
                smtp_hello: g.smtp_hello.clone(),
                smtp_smarthost: g.smtp_smarthost.clone(),
                smtp_auth_username: g.smtp_auth_username.clone(),
                smtp_auth_password: g.smtp_auth_password.clone().map(Secret::new),
                smtp_auth_password_file: g.smtp_auth_password_file.as_ref().map(PathBuf::from),
                smtp_auth_identity: g.smtp_auth_identity.clone(),
                smtp_require_tls: g.smtp_require_tls,
                slack_api_url: g.slack_api_url.clone().map(Secret::new),
                slack_api_url_file: g.slack_api_url_file.as_ref().map(PathBuf::from),
                http_config: match &g.http_config {
                    Some(v) => Some(
                        serde_json::from_value(v.clone())
                            .map_err(|e| format!("global.http_config: {e}"))?,
                    ),
                    None => None,
                },
            };
            let ctx = BuildContext {
                templates: Arc::new(templates),
                defaults,
            };
            build_with(rc, &ctx).map_err(|e| e.to_string())
        },
    )
}
