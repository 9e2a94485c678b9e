//! A simulated EV Bunker web app: booking EV charging bunkers, with users,
//! payments and real-time messages. It talks to a real PostgreSQL and a
//! real Redis, exposes Prometheus metrics at `/api/metrics`, generates its
//! own traffic, and takes faults through `/control` so that every alert of
//! the EV Bunker monitoring strategy can be driven on purpose.
//!
//! ```text
//! ev-bunker --listen 127.0.0.1:3000 \
//!   --database-url 'host=127.0.0.1 port=5433 user=evbunker dbname=evbunker' \
//!   --redis-url redis://127.0.0.1:6380/ --rps 20
//! curl -XPOST '127.0.0.1:3000/control?error_rate=0.2'   # 20% of requests fail
//! curl -XPOST '127.0.0.1:3000/control/reset'
//! ```

mod metrics;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use clap::Parser;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use metrics::Registry;

#[derive(Debug, Parser)]
#[command(
    name = "ev-bunker",
    about = "The simulated EV Bunker app of vigil's example"
)]
struct Args {
    /// Where to serve.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// PostgreSQL connection string (tokio-postgres syntax).
    #[arg(
        long,
        default_value = "host=127.0.0.1 port=5433 user=evbunker dbname=evbunker"
    )]
    database_url: String,
    /// Redis URL.
    #[arg(long, default_value = "redis://127.0.0.1:6380/")]
    redis_url: String,
    /// Requests per second the built-in traffic generator sends (0: none).
    #[arg(long, default_value_t = 20.0)]
    rps: f64,
    /// Database connections in the pool.
    #[arg(long, default_value_t = 4)]
    pool_size: usize,
}

/// The faults that can be injected. All off by default.
///
/// Shares (`error_rate`, `fail_*`, `slow_payments_share`) are spread evenly
/// over the requests they apply to rather than drawn at random: with
/// `error_rate=0.25` every fourth request fails, so any window of traffic
/// sees the share itself and a test knows on which side of a threshold it
/// stands.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Faults {
    /// Share of requests that fail with 500 (0..1).
    error_rate: f64,
    /// Extra latency added to every request, ms.
    latency_ms: u64,
    /// Share of payments that fail (0..1; `true` is 1).
    fail_payments: f64,
    /// Extra time payments take, ms.
    slow_payments_ms: u64,
    /// Share of payments that take `slow_payments_ms` longer (0..1).
    slow_payments_share: f64,
    /// Share of bookings that fail (0..1; `true` is 1).
    fail_bookings: f64,
    /// Share of registrations that fail (0..1; `true` is 1).
    fail_registrations: f64,
    /// The traffic generator sends no bookings (users cannot reach the
    /// booking page): nothing fails, bookings just stop.
    pause_bookings: bool,
    /// Failed logins per minute sent by the traffic generator.
    auth_failures_per_min: f64,
    /// Unauthorised requests per minute to the admin API.
    unauthorized_per_min: f64,
    /// `/api/health` answers 503.
    health_fail: bool,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            error_rate: 0.0,
            latency_ms: 0,
            fail_payments: 0.0,
            slow_payments_ms: 0,
            slow_payments_share: 1.0,
            fail_bookings: 0.0,
            fail_registrations: 0.0,
            pause_bookings: false,
            auth_failures_per_min: 0.0,
            unauthorized_per_min: 0.0,
            health_fail: false,
        }
    }
}

/// Spreads a share evenly: `pick(p)` is true for a fraction `p` of the
/// calls, one every `1/p`.
#[derive(Default)]
struct Spread(Mutex<f64>);

impl Spread {
    fn pick(&self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        if p >= 1.0 {
            return true;
        }
        let mut acc = self.0.lock();
        *acc += p;
        if *acc >= 1.0 {
            *acc -= 1.0;
            true
        } else {
            false
        }
    }
}

/// One spreader per share fault.
#[derive(Default)]
struct Spreads {
    errors: Spread,
    payments: Spread,
    slow_payments: Spread,
    bookings: Spread,
    registrations: Spread,
}

struct Pool {
    url: String,
    slots: Vec<tokio::sync::Mutex<Option<tokio_postgres::Client>>>,
    sem: tokio::sync::Semaphore,
    in_use: AtomicU64,
}

struct App {
    reg: Registry,
    faults: RwLock<Faults>,
    pool: Pool,
    redis_url: String,
    redis: tokio::sync::Mutex<Option<redis::aio::MultiplexedConnection>>,
    seed: AtomicU64,
    db_up: Mutex<bool>,
    redis_up: Mutex<bool>,
    spreads: Spreads,
}

type Shared = Arc<App>;

impl App {
    /// A cheap pseudo-random number in [0, 1).
    fn rand(&self) -> f64 {
        let mut x = self
            .seed
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
        x ^= x >> 30;
        x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x ^= x >> 27;
        x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^= x >> 31;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Runs one statement on a pooled connection, reconnecting when the
    /// connection was lost, and records its duration.
    async fn db(
        &self,
        name: &'static str,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, String> {
        let _permit = self.pool.sem.acquire().await.map_err(|e| e.to_string())?;
        self.pool.in_use.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let r = self.db_inner(sql, params).await;
        self.pool.in_use.fetch_sub(1, Ordering::Relaxed);
        self.reg.observe(
            "ev_db_query_duration_seconds",
            &[("query", name)],
            started.elapsed().as_secs_f64(),
        );
        if r.is_err() {
            self.reg.inc("ev_db_errors_total", &[("query", name)]);
        }
        r
    }

    async fn db_inner(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, String> {
        let idx = (self.rand() * self.pool.slots.len() as f64) as usize % self.pool.slots.len();
        let mut slot = self.pool.slots[idx].lock().await;
        if slot.as_ref().is_none_or(|c| c.is_closed()) {
            let (client, conn) = tokio::time::timeout(
                Duration::from_secs(2),
                tokio_postgres::connect(&self.pool.url, tokio_postgres::NoTls),
            )
            .await
            .map_err(|_| "database connect timed out".to_string())?
            .map_err(|e| e.to_string())?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            *slot = Some(client);
        }
        let client = slot.as_ref().ok_or("no connection")?;
        match tokio::time::timeout(Duration::from_secs(2), client.execute(sql, params)).await {
            Ok(Ok(n)) => Ok(n),
            Ok(Err(e)) => {
                *slot = None;
                Err(e.to_string())
            }
            Err(_) => {
                *slot = None;
                Err("database query timed out".into())
            }
        }
    }

    /// Runs one Redis command, reconnecting when needed.
    async fn redis<T: redis::FromRedisValue>(
        &self,
        name: &'static str,
        cmd: redis::Cmd,
    ) -> Result<T, String> {
        let started = Instant::now();
        let mut guard = self.redis.lock().await;
        if guard.is_none() {
            let client = redis::Client::open(self.redis_url.as_str()).map_err(|e| e.to_string())?;
            let conn = tokio::time::timeout(
                Duration::from_secs(2),
                client.get_multiplexed_async_connection(),
            )
            .await
            .map_err(|_| "redis connect timed out".to_string())?
            .map_err(|e| e.to_string())?;
            *guard = Some(conn);
        }
        let Some(conn) = guard.as_mut() else {
            return Err("no redis connection".into());
        };
        let mut c = conn.clone();
        drop(guard);
        let r = tokio::time::timeout(Duration::from_secs(2), cmd.query_async::<T>(&mut c)).await;
        self.reg.observe(
            "ev_redis_command_duration_seconds",
            &[("command", name)],
            started.elapsed().as_secs_f64(),
        );
        match r {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                *self.redis.lock().await = None;
                Err(e.to_string())
            }
            Err(_) => {
                *self.redis.lock().await = None;
                Err("redis command timed out".into())
            }
        }
    }
}

/// Records the HTTP metrics of one request.
fn record(
    app: &App,
    route: &'static str,
    method: &Method,
    status: StatusCode,
    started: Instant,
    size: usize,
) {
    let code = status.as_u16().to_string();
    app.reg.inc(
        "http_requests_total",
        &[
            ("route", route),
            ("method", method.as_str()),
            ("status", &code),
        ],
    );
    app.reg.observe(
        "http_request_duration_seconds",
        &[("route", route)],
        started.elapsed().as_secs_f64(),
    );
    app.reg
        .observe("http_request_size_bytes", &[("route", route)], size as f64);
}

/// The common part of every business endpoint: injected latency and errors.
async fn prelude(app: &App) -> Option<StatusCode> {
    let f = app.faults.read().clone();
    if f.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(f.latency_ms)).await;
    }
    if app.spreads.errors.pick(f.error_rate) {
        return Some(StatusCode::INTERNAL_SERVER_ERROR);
    }
    None
}

async fn endpoint(
    app: &App,
    route: &'static str,
    method: Method,
    body: &str,
    work: impl std::future::Future<Output = StatusCode>,
) -> Response {
    let started = Instant::now();
    let status = match prelude(app).await {
        Some(s) => s,
        None => work.await,
    };
    record(app, route, &method, status, started, body.len());
    (
        status,
        format!("{}\n", status.canonical_reason().unwrap_or("")),
    )
        .into_response()
}

async fn register(State(app): State<Shared>, body: String) -> Response {
    let a = app.clone();
    endpoint(
        &app,
        "/api/register",
        Method::POST,
        &body.clone(),
        async move {
            let share = a.faults.read().fail_registrations;
            if a.spreads.registrations.pick(share) {
                a.reg.inc("ev_registration_failures_total", &[]);
                return StatusCode::INTERNAL_SERVER_ERROR;
            }
            let name = format!("user-{}", (a.rand() * 1e9) as u64);
            match a
                .db(
                    "insert_user",
                    "INSERT INTO users (name) VALUES ($1)",
                    &[&name],
                )
                .await
            {
                Ok(_) => {
                    a.reg.inc("ev_user_registrations_total", &[]);
                    StatusCode::CREATED
                }
                Err(_) => {
                    a.reg.inc("ev_registration_failures_total", &[]);
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            }
        },
    )
    .await
}

#[derive(Deserialize)]
struct LoginQ {
    #[serde(default)]
    bad: bool,
}

async fn login(State(app): State<Shared>, Query(q): Query<LoginQ>, body: String) -> Response {
    let a = app.clone();
    endpoint(&app, "/api/login", Method::POST, &body, async move {
        a.reg.inc("ev_auth_attempts_total", &[]);
        if q.bad {
            a.reg
                .inc("ev_auth_failures_total", &[("reason", "bad_password")]);
            return StatusCode::UNAUTHORIZED;
        }
        let key = format!("session:{}", (a.rand() * 1e6) as u64);
        match a
            .redis::<()>("set", redis::Cmd::set_ex(&key, "1", 600))
            .await
        {
            Ok(()) => StatusCode::OK,
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    })
    .await
}

async fn bookings(State(app): State<Shared>, body: String) -> Response {
    let a = app.clone();
    endpoint(&app, "/api/bookings", Method::POST, &body, async move {
        let share = a.faults.read().fail_bookings;
        if a.spreads.bookings.pick(share) {
            a.reg
                .inc("ev_bookings_failed_total", &[("reason", "injected")]);
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
        let station = ((a.rand() * 20.0) as i32).to_string();
        match a
            .db(
                "insert_booking",
                "INSERT INTO bookings (station) VALUES ($1)",
                &[&station],
            )
            .await
        {
            Ok(_) => {
                let _ = a
                    .redis::<i64>("incr", redis::Cmd::incr("bookings:today", 1))
                    .await;
                a.reg.inc("ev_bookings_created_total", &[]);
                StatusCode::CREATED
            }
            Err(_) => {
                a.reg
                    .inc("ev_bookings_failed_total", &[("reason", "database")]);
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    })
    .await
}

async fn payments(State(app): State<Shared>, body: String) -> Response {
    let a = app.clone();
    endpoint(&app, "/api/payments", Method::POST, &body, async move {
        let started = Instant::now();
        let f = a.faults.read().clone();
        // The payment gateway's own time.
        let slow = if a.spreads.slow_payments.pick(f.slow_payments_share) {
            f.slow_payments_ms
        } else {
            0
        };
        tokio::time::sleep(Duration::from_millis(20 + slow)).await;
        let status = if a.spreads.payments.pick(f.fail_payments) {
            a.reg
                .inc("ev_payments_failed_total", &[("reason", "gateway_error")]);
            StatusCode::BAD_GATEWAY
        } else {
            let cents = (a.rand() * 5000.0) as i64 + 500;
            match a
                .db(
                    "insert_payment",
                    "INSERT INTO payments (cents) VALUES ($1)",
                    &[&cents],
                )
                .await
            {
                Ok(_) => {
                    a.reg.inc("ev_payments_processed_total", &[]);
                    a.reg.inc_by("ev_revenue_cents_total", &[], cents as f64);
                    StatusCode::OK
                }
                Err(_) => {
                    a.reg
                        .inc("ev_payments_failed_total", &[("reason", "database")]);
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            }
        };
        a.reg.observe(
            "ev_payment_duration_seconds",
            &[],
            started.elapsed().as_secs_f64(),
        );
        status
    })
    .await
}

async fn messages(State(app): State<Shared>, body: String) -> Response {
    let a = app.clone();
    endpoint(&app, "/api/messages", Method::POST, &body, async move {
        match a
            .redis::<i64>("publish", redis::Cmd::publish("bunker-events", "status"))
            .await
        {
            Ok(_) => {
                a.reg.inc("ev_realtime_messages_delivered_total", &[]);
                StatusCode::OK
            }
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    })
    .await
}

async fn stations(State(app): State<Shared>) -> Response {
    let a = app.clone();
    endpoint(&app, "/api/stations", Method::GET, "", async move {
        let key = format!("station:{}", (a.rand() * 40.0) as u32);
        match a
            .redis::<Option<String>>("get", redis::Cmd::get(&key))
            .await
        {
            Ok(Some(_)) => {
                a.reg.inc("ev_cache_requests_total", &[("result", "hit")]);
                StatusCode::OK
            }
            Ok(None) => {
                a.reg.inc("ev_cache_requests_total", &[("result", "miss")]);
                match a.db("select_station", "SELECT 1", &[]).await {
                    Ok(_) => {
                        let _ = a
                            .redis::<()>("set", redis::Cmd::set_ex(&key, "free", 30))
                            .await;
                        StatusCode::OK
                    }
                    Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
                }
            }
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    })
    .await
}

async fn admin(State(app): State<Shared>) -> Response {
    let started = Instant::now();
    app.reg
        .inc("ev_unauthorized_access_total", &[("path", "/api/admin")]);
    record(
        &app,
        "/api/admin",
        &Method::GET,
        StatusCode::FORBIDDEN,
        started,
        0,
    );
    (StatusCode::FORBIDDEN, "forbidden\n").into_response()
}

async fn health(State(app): State<Shared>) -> Response {
    if app.faults.read().health_fail {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "{\"status\":\"unhealthy\"}",
        )
            .into_response()
    } else {
        (StatusCode::OK, "{\"status\":\"ok\"}").into_response()
    }
}

async fn health_check(State(app): State<Shared>) -> Response {
    let t = Instant::now();
    let db = app.db("health", "SELECT 1", &[]).await;
    let db_ms = t.elapsed().as_secs_f64() * 1000.0;
    let t = Instant::now();
    let rd = app.redis::<String>("ping", redis::cmd("PING")).await;
    let rd_ms = t.elapsed().as_secs_f64() * 1000.0;
    let ok = db.is_ok() && rd.is_ok();
    let body = serde_json::json!({
        "status": if ok { "ok" } else { "failing" },
        "database": {"ok": db.is_ok(), "latency_ms": db_ms, "error": db.err()},
        "redis": {"ok": rd.is_ok(), "latency_ms": rd_ms, "error": rd.err()},
    });
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn metrics_endpoint(State(app): State<Shared>) -> Response {
    let in_use = app.pool.in_use.load(Ordering::Relaxed) as f64;
    let size = app.pool.slots.len() as f64;
    app.reg
        .set("ev_db_pool_connections", &[("state", "in_use")], in_use);
    app.reg.set(
        "ev_db_pool_connections",
        &[("state", "idle")],
        size - in_use,
    );
    app.reg.set("ev_db_pool_max_connections", &[], size);
    app.reg
        .set("ev_db_up", &[], f64::from(u8::from(*app.db_up.lock())));
    app.reg.set(
        "ev_redis_up",
        &[],
        f64::from(u8::from(*app.redis_up.lock())),
    );
    (
        StatusCode::OK,
        [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
        app.reg.render(),
    )
        .into_response()
}

async fn control_get(State(app): State<Shared>) -> Response {
    let f = app.faults.read().clone();
    (
        StatusCode::OK,
        serde_json::to_string(&f).unwrap_or_default(),
    )
        .into_response()
}

/// `POST /control?name=value&...`: sets the faults named; others stay.
/// The faults stay locked from read to write, so that two requests at once
/// (the e2e test injects several faults together) cannot undo each other.
async fn control_set(
    State(app): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut faults = app.faults.write();
    let mut f = faults.clone();
    let mut v = match serde_json::to_value(&f) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => return (StatusCode::INTERNAL_SERVER_ERROR, "faults\n").into_response(),
    };
    for (k, val) in q {
        let Some(old) = v.get(&k) else {
            return (StatusCode::BAD_REQUEST, format!("unknown fault {k:?}\n")).into_response();
        };
        let parsed = match old {
            serde_json::Value::Bool(_) => val
                .parse::<bool>()
                .map(serde_json::Value::from)
                .map_err(|e| e.to_string()),
            serde_json::Value::Number(n) if n.is_u64() => val
                .parse::<u64>()
                .map(serde_json::Value::from)
                .map_err(|e| e.to_string()),
            // Shares also take `true` (1) and `false` (0).
            _ => match val.as_str() {
                "true" => Ok(serde_json::Value::from(1.0)),
                "false" => Ok(serde_json::Value::from(0.0)),
                v => v
                    .parse::<f64>()
                    .map(serde_json::Value::from)
                    .map_err(|e| e.to_string()),
            },
        };
        match parsed {
            Ok(p) => {
                v.insert(k, p);
            }
            Err(e) => return (StatusCode::BAD_REQUEST, format!("{k}: {e}\n")).into_response(),
        }
    }
    match serde_json::from_value::<Faults>(serde_json::Value::Object(v)) {
        Ok(nf) => {
            f = nf;
            *faults = f.clone();
            println!(
                "ev-bunker: faults now {}",
                serde_json::to_string(&f).unwrap_or_default()
            );
            (
                StatusCode::OK,
                serde_json::to_string(&f).unwrap_or_default(),
            )
                .into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    }
}

async fn control_reset(State(app): State<Shared>) -> Response {
    *app.faults.write() = Faults::default();
    println!("ev-bunker: faults reset");
    (StatusCode::OK, "{}").into_response()
}

/// A minimal HTTP/1.1 request to the app itself, for the traffic
/// generator.
async fn self_request(addr: SocketAddr, method: &str, path: &str, body: &str) {
    let Ok(Ok(mut s)) =
        tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr)).await
    else {
        return;
    };
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: ev-bunker\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if s.write_all(req.as_bytes()).await.is_err() {
        return;
    }
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(15), s.read_to_end(&mut buf)).await;
}

/// Sends a mix of user traffic, plus injected failed logins and
/// unauthorised requests.
async fn traffic(app: Shared, addr: SocketAddr, rps: f64) {
    if rps <= 0.0 {
        return;
    }
    let every = Duration::from_secs_f64(1.0 / rps);
    let mut tick = tokio::time::interval(every);
    let mut auth_debt = 0.0f64;
    let mut unauth_debt = 0.0f64;
    loop {
        tick.tick().await;
        let r = app.rand();
        let paused = app.faults.read().pause_bookings;
        let (method, path, body) = match r {
            r if r < 0.40 => ("GET", "/api/stations", ""),
            // Paused bookings: those users only look at stations.
            r if r < 0.55 && paused => ("GET", "/api/stations", ""),
            r if r < 0.55 => ("POST", "/api/bookings", "{\"station\":3}"),
            r if r < 0.65 => ("POST", "/api/payments", "{\"amount\":1250}"),
            r if r < 0.85 => ("POST", "/api/login", "{\"user\":\"a\"}"),
            r if r < 0.90 => ("POST", "/api/register", "{\"name\":\"n\"}"),
            _ => ("POST", "/api/messages", "{\"text\":\"hi\"}"),
        };
        tokio::spawn(self_request(addr, method, path, body));
        let f = app.faults.read().clone();
        auth_debt += f.auth_failures_per_min / 60.0 / rps;
        while auth_debt >= 1.0 {
            auth_debt -= 1.0;
            tokio::spawn(self_request(
                addr,
                "POST",
                "/api/login?bad=true",
                "{\"user\":\"x\"}",
            ));
        }
        unauth_debt += f.unauthorized_per_min / 60.0 / rps;
        while unauth_debt >= 1.0 {
            unauth_debt -= 1.0;
            tokio::spawn(self_request(addr, "GET", "/api/admin", ""));
        }
    }
}

/// Checks database and Redis connectivity every two seconds.
async fn connectivity(app: Shared) {
    loop {
        let db = app.db("health", "SELECT 1", &[]).await.is_ok();
        *app.db_up.lock() = db;
        let rd = app
            .redis::<String>("ping", redis::cmd("PING"))
            .await
            .is_ok();
        *app.redis_up.lock() = rd;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

fn declare(reg: &Registry) {
    reg.counter(
        "http_requests_total",
        "HTTP requests by route, method and status.",
    );
    reg.histogram(
        "http_request_duration_seconds",
        "HTTP request latency.",
        metrics::LATENCY,
    );
    reg.histogram(
        "http_request_size_bytes",
        "HTTP request body size.",
        metrics::SIZE,
    );
    reg.counter("ev_user_registrations_total", "Users registered.");
    reg.counter(
        "ev_registration_failures_total",
        "Registrations that failed.",
    );
    reg.counter("ev_bookings_created_total", "Bookings created.");
    reg.counter("ev_bookings_failed_total", "Bookings that failed.");
    reg.counter("ev_payments_processed_total", "Payments processed.");
    reg.counter("ev_payments_failed_total", "Payments that failed.");
    reg.counter(
        "ev_revenue_cents_total",
        "Revenue from processed payments, in cents.",
    );
    reg.histogram(
        "ev_payment_duration_seconds",
        "Time a payment takes, gateway included.",
        metrics::LATENCY,
    );
    reg.counter("ev_auth_attempts_total", "Authentication attempts.");
    reg.counter("ev_auth_failures_total", "Authentication failures.");
    reg.counter(
        "ev_unauthorized_access_total",
        "Requests refused for lack of authorisation.",
    );
    reg.counter(
        "ev_realtime_messages_delivered_total",
        "Real-time messages delivered.",
    );
    reg.counter(
        "ev_cache_requests_total",
        "Station cache lookups by result.",
    );
    reg.gauge(
        "ev_db_pool_connections",
        "Database pool connections by state.",
    );
    reg.gauge("ev_db_pool_max_connections", "Database pool size.");
    reg.histogram(
        "ev_db_query_duration_seconds",
        "Database query time.",
        metrics::LATENCY,
    );
    reg.counter("ev_db_errors_total", "Database queries that failed.");
    reg.gauge("ev_db_up", "Whether the app can reach the database.");
    reg.histogram(
        "ev_redis_command_duration_seconds",
        "Redis command time.",
        metrics::LATENCY,
    );
    reg.gauge("ev_redis_up", "Whether the app can reach Redis.");
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let reg = Registry::default();
    declare(&reg);
    let app = Arc::new(App {
        reg,
        faults: RwLock::new(Faults::default()),
        pool: Pool {
            url: args.database_url.clone(),
            slots: (0..args.pool_size.max(1))
                .map(|_| tokio::sync::Mutex::new(None))
                .collect(),
            sem: tokio::sync::Semaphore::new(args.pool_size.max(1)),
            in_use: AtomicU64::new(0),
        },
        redis_url: args.redis_url.clone(),
        redis: tokio::sync::Mutex::new(None),
        seed: AtomicU64::new(0x5EED),
        db_up: Mutex::new(false),
        redis_up: Mutex::new(false),
        spreads: Spreads::default(),
    });
    // The schema, created when the database is reachable.
    for sql in [
        "CREATE TABLE IF NOT EXISTS users (id bigserial PRIMARY KEY, name text NOT NULL, created timestamptz DEFAULT now())",
        "CREATE TABLE IF NOT EXISTS bookings (id bigserial PRIMARY KEY, station text NOT NULL, created timestamptz DEFAULT now())",
        "CREATE TABLE IF NOT EXISTS payments (id bigserial PRIMARY KEY, cents bigint NOT NULL, created timestamptz DEFAULT now())",
    ] {
        if let Err(e) = app.db("schema", sql, &[]).await {
            eprintln!("ev-bunker: creating the schema: {e}");
        }
    }
    let router = Router::new()
        .route("/api/register", post(register))
        .route("/api/login", post(login))
        .route("/api/bookings", post(bookings))
        .route("/api/payments", post(payments))
        .route("/api/messages", post(messages))
        .route("/api/stations", get(stations))
        .route("/api/admin", get(admin))
        .route("/api/health", get(health))
        .route("/api/health-check", get(health_check))
        .route("/api/metrics", get(metrics_endpoint))
        .route("/control", get(control_get).post(control_set))
        .route("/control/reset", post(control_reset))
        .with_state(app.clone());
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("ev-bunker: binding {}: {e}", args.listen);
            std::process::exit(1);
        }
    };
    let addr = listener.local_addr().unwrap_or(args.listen);
    println!("ev-bunker: serving on http://{addr}");
    tokio::spawn(connectivity(app.clone()));
    tokio::spawn(traffic(app.clone(), addr, args.rps));
    if let Err(e) = axum::serve(listener, router).await {
        eprintln!("ev-bunker: {e}");
        std::process::exit(1);
    }
}
