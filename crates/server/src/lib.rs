//! vigil-server: the Prometheus HTTP API over vigil's storage and query
//! engines, remote write, and health endpoints.
//!
//! The storage engine is a blocking library: every call into it (queries,
//! appends, maintenance) runs on tokio's blocking pool or a dedicated
//! thread, never on the async workers.
#![warn(missing_docs)]

mod admin;
mod alertmanager;
mod api;
pub mod auth;
mod notify_api;
#[doc(hidden)]
pub use api::query_result_json;
pub mod config;
mod federate;
mod health;
mod lifecycle;
mod meta;
pub mod remote_read;
pub mod remote_send;
pub mod remote_write;
mod rules_api;
mod selfmetrics;
mod status;
mod targets;
mod ui;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use vigil_promql::{Engine, EngineOptions};
use vigil_tsdb::{Db, Options};

/// Settings of a server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Storage settings.
    pub storage: Options,
    /// Query engine settings.
    pub engine: EngineOptions,
    /// Largest remote-write body accepted, compressed, in bytes.
    pub max_write_bytes: usize,
    /// The configuration file's text, shown by `/api/v1/status/config`.
    pub config_yaml: String,
    /// The command-line flags, shown by `/api/v1/status/flags`.
    pub flags: BTreeMap<String, String>,
    /// Serve `/api/v1/admin/tsdb/*` (`--web.enable-admin-api`).
    pub enable_admin_api: bool,
    /// Most samples one remote-read request may return
    /// (`--storage.remote.read-sample-limit`); 0 means no limit.
    pub remote_read_sample_limit: usize,
    /// The configuration to run.
    pub config: config::Config,
    /// The file the configuration came from; reloads read it again. `None`
    /// for the embedded default.
    pub config_file: Option<PathBuf>,
    /// Serve `/-/reload` and `/-/quit` (`--web.enable-lifecycle`).
    pub enable_lifecycle: bool,
    /// The URL vigil is reached at (`--web.external-url`), for links in
    /// alerts; `http://<listen address>` when `None`.
    pub external_url: Option<String>,
    /// The path prefix of every route (`--web.route-prefix`); the path of
    /// `external_url` when `None`.
    pub route_prefix: Option<String>,
    /// Store recording-rule results, `ALERTS` and `ALERTS_FOR_STATE` with
    /// the external labels (`--rules.store-external-labels`, default on);
    /// off stores them as Prometheus does, without.
    pub rules_store_external_labels: bool,
    /// The web configuration file (`--web.config.file`): TLS, users,
    /// tokens and roles. `None`: plain HTTP, no authentication.
    pub web_config_file: Option<PathBuf>,
    /// The audit log (`--web.audit-log-file`); `None` puts it at
    /// `<data_dir>/audit.log`, an empty path writes it to the log only.
    pub audit_log_file: Option<PathBuf>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 9090)),
            data_dir: PathBuf::from("data"),
            storage: Options::default(),
            engine: EngineOptions::default(),
            max_write_bytes: 32 << 20,
            config_yaml: String::new(),
            flags: BTreeMap::new(),
            enable_admin_api: false,
            remote_read_sample_limit: 50_000_000,
            config: config::Config::default(),
            config_file: None,
            enable_lifecycle: false,
            external_url: None,
            route_prefix: None,
            rules_store_external_labels: true,
            web_config_file: None,
            audit_log_file: None,
        }
    }
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The configuration could not be started (scrape jobs, rule files).
    #[error("starting the configuration: {0}")]
    Config(String),
    /// The storage could not be opened.
    #[error("opening storage: {0}")]
    Storage(#[from] vigil_tsdb::TsdbError),
    /// The listen address could not be bound or served.
    #[error("serving {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
}

/// Counters of the server for `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct ServerStats {
    pub(crate) samples_received: AtomicU64,
    pub(crate) samples_rejected: AtomicU64,
    /// Remote-write requests refused for their size.
    pub(crate) write_too_large: AtomicU64,
    pub(crate) queries: AtomicU64,
}

/// Shared state of the handlers.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub(crate) db: Arc<Db>,
    pub(crate) engine: Arc<Engine>,
    pub(crate) ready: Arc<AtomicBool>,
    pub(crate) stats: Arc<ServerStats>,
    pub(crate) max_write_bytes: usize,
    pub(crate) config_yaml: Arc<parking_lot::RwLock<String>>,
    pub(crate) config_reload: Arc<parking_lot::RwLock<status::ReloadStatus>>,
    pub(crate) flags: Arc<BTreeMap<String, String>>,
    pub(crate) enable_admin_api: bool,
    pub(crate) remote_read_sample_limit: usize,
    pub(crate) metrics: Arc<selfmetrics::Metrics>,
    pub(crate) lifecycle: Arc<lifecycle::Lifecycle>,
    pub(crate) started: std::time::SystemTime,
    pub(crate) ui: Arc<ui::UiOptions>,
    pub(crate) guard: Arc<auth::Guard>,
}

/// The HTTP routes.
pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/-/healthy", get(api::healthy))
        .route("/-/ready", get(api::ready))
        .route("/api/health", get(api::healthy))
        .route("/-/reload", post(lifecycle::reload).put(lifecycle::reload))
        .route("/-/quit", post(lifecycle::quit).put(lifecycle::quit))
        .route("/api/health-check", get(health::health_check))
        .route("/metrics", get(selfmetrics::metrics))
        .route("/api/metrics", get(selfmetrics::metrics))
        .route("/api/v1/query", get(api::query).post(api::query))
        .route(
            "/api/v1/query_range",
            get(api::query_range).post(api::query_range),
        )
        .route("/api/v1/labels", get(api::labels).post(api::labels))
        .route(
            "/api/v1/label/{name}/values",
            get(api::label_values).post(api::label_values),
        )
        .route("/api/v1/series", get(api::series).post(api::series))
        .route("/api/v1/metadata", get(targets::metadata))
        .route(
            "/api/v2/alerts",
            get(notify_api::get_alerts).post(notify_api::post_alerts),
        )
        .route("/api/v2/alerts/groups", get(notify_api::get_groups))
        .route(
            "/api/v2/silences",
            get(notify_api::get_silences).post(notify_api::post_silence),
        )
        .route(
            "/api/v2/silence/{id}",
            get(notify_api::get_silence).delete(notify_api::delete_silence),
        )
        .route("/api/v2/status", get(notify_api::status))
        .route("/api/v2/receivers", get(notify_api::receivers))
        .route("/api/v1/notify/ack", post(notify_api::post_ack))
        .route(
            "/api/v1/notify/ack/{group}/{token}",
            get(notify_api::ack_link_page).post(notify_api::ack_link),
        )
        .route("/api/v1/notify/acks", get(notify_api::get_acks))
        .route(
            "/api/v1/notify/acks/{id}",
            axum::routing::delete(notify_api::delete_ack),
        )
        .route(
            "/api/v1/notify/escalations",
            get(notify_api::get_escalations),
        )
        .route("/api/v1/notify/history", get(notify_api::get_history))
        .route("/api/v1/rules", get(rules_api::rules))
        .route("/api/v1/alerts", get(rules_api::alerts))
        .route("/api/v1/targets", get(targets::targets))
        .route("/api/v1/targets/metadata", get(targets::target_metadata))
        .route("/api/v1/scrape_pools", get(targets::scrape_pools))
        .route(
            "/api/v1/format_query",
            get(meta::format_query).post(meta::format_query),
        )
        .route(
            "/api/v1/parse_query",
            get(meta::parse_query).post(meta::parse_query),
        )
        .route("/api/v1/status/config", get(status::config))
        .route("/api/v1/status/flags", get(status::flags))
        .route("/api/v1/status/runtimeinfo", get(status::runtime_info))
        .route("/api/v1/status/buildinfo", get(status::build_info))
        .route("/api/v1/status/tsdb", get(status::tsdb))
        .route(
            "/api/v1/admin/tsdb/delete_series",
            post(admin::delete_series).put(admin::delete_series),
        )
        .route(
            "/api/v1/admin/tsdb/clean_tombstones",
            post(admin::clean_tombstones).put(admin::clean_tombstones),
        )
        .route(
            "/api/v1/admin/tsdb/snapshot",
            post(admin::snapshot).put(admin::snapshot),
        )
        .route(
            "/api/v1/admin/tsdb/flush",
            post(admin::flush).put(admin::flush),
        )
        // Bodies up to the configured limit reach the handlers, which
        // answer larger ones themselves (axum's default cap is 2 MiB).
        .route(
            "/api/v1/write",
            post(remote_write::write).layer(DefaultBodyLimit::max(state.max_write_bytes)),
        )
        .route(
            "/api/v1/read",
            post(remote_read::read).layer(DefaultBodyLimit::max(remote_read::MAX_REQUEST_BYTES)),
        )
        .route("/federate", get(federate::federate))
        .merge(ui::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            selfmetrics::track,
        ))
        .with_state(state)
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), ServerError>>,
    lifecycle: Arc<lifecycle::Lifecycle>,
    guard: Arc<auth::Guard>,
}

impl Server {
    /// The address the server listens on (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Reads the configuration file again and applies it. On error the
    /// running configuration stays, and the error says why (file, line,
    /// key).
    ///
    /// The audit log records it as `who: "local", via: "process"` (SIGHUP,
    /// or a program embedding the server).
    pub async fn reload(&self) -> Result<(), config::ConfigError> {
        let r = self.lifecycle.reload().await;
        self.guard.audit().record(&auth::audit::Entry {
            who: "local",
            via: "process",
            remote: "",
            action: "config_reload",
            method: "",
            path: "",
            query: "",
            status: if r.is_ok() { 200 } else { 400 },
        });
        r
    }

    /// The configuration in force.
    pub async fn config(&self) -> config::Config {
        self.lifecycle.current().await
    }

    /// Resolves when a client asked the server to stop (`/-/quit`).
    pub async fn quit_requested(&self) {
        self.lifecycle.quit_requested().await
    }

    /// Stops accepting, lets in-flight requests finish, syncs the storage.
    pub async fn shutdown(mut self) -> Result<(), ServerError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.task.await {
            Ok(r) => r,
            Err(_) => Ok(()),
        }
    }

    /// Waits until the server stops.
    pub async fn wait(self) -> Result<(), ServerError> {
        match self.task.await {
            Ok(r) => r,
            Err(_) => Ok(()),
        }
    }
}

/// Opens the storage (replaying its WAL off the async workers), binds, and
/// serves until [`Server::shutdown`]. Must be called on a tokio runtime.
pub async fn start(opts: ServerOptions) -> Result<Server, ServerError> {
    let listen_err = |source| ServerError::Listen {
        addr: opts.listen,
        source,
    };
    // The web config first: a bad one stops the start before anything is
    // opened or created.
    let web_err = |e: String| ServerError::Config(format!("web config: {e}"));
    let web = match &opts.web_config_file {
        Some(p) => auth::WebConfig::load(p).map_err(web_err)?,
        None => auth::WebConfig::default(),
    };
    let tls = match &web.tls {
        Some(t) => Some(auth::tls::server_config(t).map_err(web_err)?),
        None => None,
    };
    let audit = match &opts.audit_log_file {
        Some(p) if p.as_os_str().is_empty() => auth::audit::AuditLog::disabled(),
        Some(p) => auth::audit::AuditLog::to_file(p).map_err(ServerError::Config)?,
        None => auth::audit::AuditLog::to_file(&opts.data_dir.join("audit.log"))
            .map_err(ServerError::Config)?,
    };
    let guard = Arc::new(auth::Guard::with_config(
        opts.web_config_file.clone(),
        web,
        &ui::route_prefix(&opts),
        audit,
    ));
    let std_listener = std::net::TcpListener::bind(opts.listen).map_err(listen_err)?;
    std_listener.set_nonblocking(true).map_err(listen_err)?;
    let addr = std_listener.local_addr().map_err(listen_err)?;
    // While the WAL replays, a second handle on the same socket answers:
    // healthy, but not ready (503), as Prometheus does during start-up.
    let early = std_listener
        .try_clone()
        .and_then(tokio::net::TcpListener::from_std)
        .map_err(listen_err)?;
    let (early_stop, early_rx) = tokio::sync::oneshot::channel::<()>();
    let early_app = guarded(starting_router(), guard.clone());
    let early_tls = tls.clone();
    let early_task = tokio::spawn(async move {
        let _ = serve(early, early_app, early_tls, async move {
            let _ = early_rx.await;
        })
        .await;
    });
    let data_dir = opts.data_dir.clone();
    let storage = opts.storage.clone();
    let opened = tokio::task::spawn_blocking(move || Db::open(data_dir, storage))
        .await
        .map_err(|e| ServerError::Listen {
            addr,
            source: std::io::Error::other(e.to_string()),
        });
    let _ = early_stop.send(());
    let _ = early_task.await;
    let db = opened??;
    let listener = tokio::net::TcpListener::from_std(std_listener).map_err(listen_err)?;
    let db = Arc::new(db);
    let maintenance = Db::spawn_maintenance(db.clone(), Duration::from_secs(60));
    let config_yaml = Arc::new(parking_lot::RwLock::new(if opts.config_yaml.is_empty() {
        opts.config.source.clone()
    } else {
        opts.config_yaml.clone()
    }));
    let config_reload = Arc::new(parking_lot::RwLock::new(status::ReloadStatus::new()));
    let engine = Arc::new(Engine::new(opts.engine.clone()));
    let lifecycle = match lifecycle::Lifecycle::start(
        lifecycle::LifecycleOptions {
            enabled: opts.enable_lifecycle,
            file: opts.config_file.clone(),
            external_url: opts
                .external_url
                .clone()
                .unwrap_or_else(|| format!("http://{addr}")),
            config_yaml: config_yaml.clone(),
            config_reload: config_reload.clone(),
            rules_store_external_labels: opts.rules_store_external_labels,
        },
        opts.config.clone(),
        db.clone(),
        engine.clone(),
    )
    .await
    {
        Ok(l) => Arc::new(l),
        Err(e) => {
            drop(maintenance);
            return Err(ServerError::Config(e));
        }
    };
    let state = AppState {
        db: db.clone(),
        engine,
        ready: Arc::new(AtomicBool::new(true)),
        stats: Arc::new(ServerStats::default()),
        max_write_bytes: opts.max_write_bytes,
        config_yaml: config_yaml.clone(),
        config_reload: config_reload.clone(),
        flags: Arc::new(opts.flags.clone()),
        enable_admin_api: opts.enable_admin_api,
        remote_read_sample_limit: opts.remote_read_sample_limit,
        metrics: Arc::new(selfmetrics::Metrics::new()),
        started: std::time::SystemTime::now(),
        lifecycle: lifecycle.clone(),
        ui: Arc::new(ui::UiOptions::new(&opts)),
        guard: guard.clone(),
    };
    let app = guarded(ui::under_prefix(router(state), &opts), guard.clone());
    let lc = lifecycle.clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let served = serve(listener, app, tls, async move {
            let _ = rx.await;
        })
        .await
        .map_err(|source| ServerError::Listen { addr, source });
        lc.stop().await;
        drop(maintenance);
        let db2 = db.clone();
        let synced = tokio::task::spawn_blocking(move || db2.sync()).await;
        if let Ok(Err(e)) = synced {
            tracing::error!(error = %e, "syncing storage at shutdown failed");
        }
        served
    });
    tracing::info!(%addr, "vigil is listening");
    Ok(Server {
        addr,
        shutdown: Some(tx),
        task,
        lifecycle,
        guard,
    })
}

/// The app behind the guard: authentication, roles, audit, headers.
fn guarded(app: Router, guard: Arc<auth::Guard>) -> Router {
    app.layer(axum::middleware::from_fn_with_state(guard, auth::guard))
}

/// Serves `app` on `listener`, over TLS when `tls` is set, until `stop`.
async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    tls: Option<rustls::ServerConfig>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let make = app.into_make_service_with_connect_info::<auth::PeerAddr>();
    match tls {
        None => {
            axum::serve(listener, make)
                .with_graceful_shutdown(stop)
                .await
        }
        Some(cfg) => {
            let l = auth::tls::TlsListener::new(listener, cfg)?;
            axum::serve(l, make).with_graceful_shutdown(stop).await
        }
    }
}

pub(crate) fn mark_query(state: &AppState) {
    state.stats.queries.fetch_add(1, Ordering::Relaxed);
}

/// The routes served while the storage opens: healthy, not ready.
fn starting_router() -> Router {
    let unavailable = || async {
        (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable",
        )
    };
    Router::new()
        .route("/-/healthy", get(api::healthy))
        .route("/api/health", get(api::healthy))
        .fallback(unavailable)
}
