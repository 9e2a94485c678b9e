# Helpers for the EV Bunker example, sourced by run.sh and the e2e test.
# Everything listens on 127.0.0.1 and lives under $EVB_DIR; processes are
# stopped by PID, never by name.

EVB_DIR=${EVB_DIR:-/tmp/ev-bunker}
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
PG_PORT=${PG_PORT:-5433}
REDIS_PORT=${REDIS_PORT:-6380}
APP_PORT=${APP_PORT:-3000}
NODE_PORT=${NODE_PORT:-9101}
PGX_PORT=${PGX_PORT:-9187}
REDISX_PORT=${REDISX_PORT:-9121}
VIGIL_PORT=${VIGIL_PORT:-9090}
SINK_PORT=${SINK_PORT:-9099}
SMTP_PORT=${SMTP_PORT:-2525}

# Runs a command as the postgres user when we are root (initdb refuses root).
as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

wait_port() {
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && { exec 3>&- 3<&-; return 0; }
        sleep 0.1
    done
    echo "ev-bunker: nothing listens on port $1" >&2
    return 1
}

start_postgres() {
    mkdir -p "$EVB_DIR"
    [ "$(id -u)" = 0 ] && chown postgres "$EVB_DIR"
    if [ ! -s "$EVB_DIR/pg/PG_VERSION" ]; then
        as_pg "$PG_BIN/initdb" -D "$EVB_DIR/pg" -U postgres --auth=trust >"$EVB_DIR/initdb.log" 2>&1
    fi
    as_pg "$PG_BIN/pg_ctl" -D "$EVB_DIR/pg" -l "$EVB_DIR/postgres.log" -w \
        -o "-p $PG_PORT -k $EVB_DIR -c listen_addresses=127.0.0.1" start >/dev/null
    as_pg "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -qtc \
        "SELECT 1 FROM pg_roles WHERE rolname='evbunker'" | grep -q 1 ||
        as_pg "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "CREATE ROLE evbunker LOGIN"
    as_pg "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -qtc \
        "SELECT 1 FROM pg_database WHERE datname='evbunker'" | grep -q 1 ||
        as_pg "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "CREATE DATABASE evbunker OWNER evbunker"
}

stop_postgres() {
    as_pg "$PG_BIN/pg_ctl" -D "$EVB_DIR/pg" -m fast -w stop >/dev/null 2>&1 || true
}

start_redis() {
    mkdir -p "$EVB_DIR/redis"
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$EVB_DIR/redis" \
        --save "" --appendonly no --daemonize yes --pidfile "$EVB_DIR/redis.pid" \
        --logfile "$EVB_DIR/redis.log"
    wait_port "$REDIS_PORT"
}

stop_redis() {
    [ -f "$EVB_DIR/redis.pid" ] && kill -TERM "$(cat "$EVB_DIR/redis.pid")" 2>/dev/null || true
    for _ in $(seq 1 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT") 2>/dev/null || return 0
        sleep 0.1
    done
}
