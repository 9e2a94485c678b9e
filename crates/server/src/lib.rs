//! vigil-server: the Prometheus HTTP API over vigil's storage and query
//! engines, remote write, and health endpoints.
//!
//! The storage engine is a blocking library: every call into it (queries,
//! appends, maintenance) runs on tokio's blocking pool or a dedicated
//! thread, never on the async workers.
#![warn(missing_docs)]

mod api;
pub mod remote_write;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

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
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 9090)),
            data_dir: PathBuf::from("data"),
            storage: Options::default(),
            engine: EngineOptions::default(),
            max_write_bytes: 32 << 20,
        }
    }
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
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
}

/// The HTTP routes.
pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/-/healthy", get(api::healthy))
        .route("/-/ready", get(api::ready))
        .route("/api/health", get(api::healthy))
        .route("/metrics", get(api::metrics))
        .route("/api/metrics", get(api::metrics))
        .route("/api/v1/query", get(api::query_get).post(api::query_post))
        .route(
            "/api/v1/query_range",
            get(api::query_range_get).post(api::query_range_post),
        )
        .route(
            "/api/v1/labels",
            get(api::labels_get).post(api::labels_post),
        )
        .route("/api/v1/label/{name}/values", get(api::label_values))
        .route(
            "/api/v1/series",
            get(api::series_get).post(api::series_post),
        )
        .route("/api/v1/write", post(remote_write::write))
        .with_state(state)
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), ServerError>>,
}

impl Server {
    /// The address the server listens on (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
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
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|source| ServerError::Listen {
            addr: opts.listen,
            source,
        })?;
    let addr = listener
        .local_addr()
        .map_err(|source| ServerError::Listen {
            addr: opts.listen,
            source,
        })?;
    let data_dir = opts.data_dir.clone();
    let storage = opts.storage.clone();
    let db = tokio::task::spawn_blocking(move || Db::open(data_dir, storage))
        .await
        .map_err(|e| ServerError::Listen {
            addr,
            source: std::io::Error::other(e.to_string()),
        })??;
    let db = Arc::new(db);
    let maintenance = Db::spawn_maintenance(db.clone(), Duration::from_secs(60));
    let state = AppState {
        db: db.clone(),
        engine: Arc::new(Engine::new(opts.engine.clone())),
        ready: Arc::new(AtomicBool::new(true)),
        stats: Arc::new(ServerStats::default()),
        max_write_bytes: opts.max_write_bytes,
    };
    let app = router(state);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await
            .map_err(|source| ServerError::Listen { addr, source });
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
    })
}

pub(crate) fn mark_query(state: &AppState) {
    state.stats.queries.fetch_add(1, Ordering::Relaxed);
}
