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

use vigil_scrape::probe::ProbeManager;
use vigil_scrape::{ScrapeManager, ScrapeOptions};

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
}

impl Lifecycle {
    /// Starts the configuration's scrape loops and applies its storage
    /// settings. Fails (and starts nothing) when a scrape job cannot be
    /// set up, for example because a TLS CA file is unreadable.
    pub(crate) async fn start(
        enabled: bool,
        file: Option<PathBuf>,
        config: Config,
        db: Arc<Db>,
        config_yaml: Arc<RwLock<String>>,
        config_reload: Arc<RwLock<ReloadStatus>>,
    ) -> Result<Lifecycle, vigil_scrape::ScrapeError> {
        let flag_retention = db.retention();
        let flag_ooo_window = db.head().out_of_order_window();
        let (quit, _) = tokio::sync::watch::channel(false);
        let scrape = Arc::new(ScrapeManager::new(db.clone(), ScrapeOptions::default()));
        let probes = Arc::new(ProbeManager::new(db.clone()));
        probes.apply(&config.probes).await?;
        scrape
            .apply(&config.scrape_configs, &config.global.scrape_defaults())
            .await?;
        let lc = Lifecycle {
            enabled,
            file,
            current: tokio::sync::Mutex::new(config.clone()),
            db,
            flag_retention,
            flag_ooo_window,
            config_yaml,
            config_reload,
            quit,
            scrape,
            probes,
            external_labels: RwLock::new(config.global.external_labels.clone()),
        };
        lc.apply_storage(&config);
        Ok(lc)
    }

    /// Applies the storage settings of `c`.
    fn apply_storage(&self, c: &Config) {
        // Each retention setting of the file overrides its flag.
        let (t, s) = self.flag_retention;
        self.db.set_retention(
            c.storage.retention_time.or(t),
            c.storage.retention_size.or(s),
        );
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
        let loaded = match loaded {
            Ok(c) => self
                .scrape
                .apply(&c.scrape_configs, &c.global.scrape_defaults())
                .await
                .map(|()| c)
                .map_err(|e| ConfigError::Invalid {
                    path: self.file.clone().unwrap_or_default(),
                    line: None,
                    column: None,
                    reason: format!("scrape_configs: {e}"),
                }),
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
