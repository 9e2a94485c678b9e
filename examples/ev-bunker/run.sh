#!/usr/bin/env bash
# Starts the whole EV Bunker example on 127.0.0.1: PostgreSQL, Redis, the
# three exporters, the app, and vigil with the strategy's rules. Ctrl-C
# stops everything it started. Needs the Debian packages postgresql,
# redis-server, prometheus-node-exporter, prometheus-postgres-exporter and
# prometheus-redis-exporter, python3 (with aiosmtpd for the mail sink) and a
# Rust toolchain.
#
# Environment (all optional; the e2e test, tests/e2e/ev_bunker.py, uses them):
#   EVB_DIR          where data and logs go (default /tmp/ev-bunker)
#   EVB_PROFILE      release (default) or debug
#   EVB_BUILD        0: run the binaries already built (default 1: cargo build)
#   EVB_TIME_SCALE   run the strategy N times faster: every duration of
#                    vigil.yml and the rules divided by N (timescale.py)
#   EVB_RPS          requests per second of the app's traffic generator (20)
#   EVB_PROCFS       node_exporter reads this directory instead of /proc
#   EVB_PYTHON       the interpreter for sink.py (python3)
#   *_PORT           the ports (services.sh)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
# shellcheck source=services.sh
. "$HERE/services.sh"

# EVB_PROFILE=debug uses a debug build (what the e2e test does).
PROFILE=${EVB_PROFILE:-release}
# EVB_BUILD=0 runs the binaries already built.
if [ "${EVB_BUILD:-1}" = 0 ]; then
    :
elif [ "$PROFILE" = release ]; then
    (cd "$ROOT" && cargo build --release -p vigil -p ev-bunker)
else
    (cd "$ROOT" && cargo build -p vigil -p ev-bunker)
fi
BIN="$CARGO_TARGET_DIR/$PROFILE"
mkdir -p "$EVB_DIR"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    stop_redis
    stop_postgres
}
trap cleanup EXIT INT TERM

start_postgres
start_redis
# Local stand-ins for Slack, the SMS gateway and the mail relay: they record
# what vigil sends under $EVB_DIR/sink.
"${EVB_PYTHON:-python3}" "$HERE/sink.py" "$SINK_PORT" "$SMTP_PORT" "$EVB_DIR/sink" >"$EVB_DIR/sink.log" 2>&1 &
PIDS+=($!)
NODE_ARGS=()
[ -n "${EVB_PROCFS:-}" ] && NODE_ARGS+=(--path.procfs="$EVB_PROCFS")
prometheus-node-exporter --web.listen-address="127.0.0.1:$NODE_PORT" "${NODE_ARGS[@]}" >"$EVB_DIR/node_exporter.log" 2>&1 &
PIDS+=($!)
DATA_SOURCE_NAME="postgresql://postgres@127.0.0.1:$PG_PORT/evbunker?sslmode=disable" \
    prometheus-postgres-exporter --web.listen-address="127.0.0.1:$PGX_PORT" >"$EVB_DIR/postgres_exporter.log" 2>&1 &
PIDS+=($!)
prometheus-redis-exporter -redis.addr "redis://127.0.0.1:$REDIS_PORT" -web.listen-address "127.0.0.1:$REDISX_PORT" >"$EVB_DIR/redis_exporter.log" 2>&1 &
PIDS+=($!)
"$BIN/ev-bunker" --listen "127.0.0.1:$APP_PORT" \
    --database-url "host=127.0.0.1 port=$PG_PORT user=evbunker dbname=evbunker" \
    --redis-url "redis://127.0.0.1:$REDIS_PORT/" --rps "${EVB_RPS:-20}" >"$EVB_DIR/app.log" 2>&1 &
PIDS+=($!)
# The strategy's rules, or (EVB_TIME_SCALE) the same rules with every
# duration divided by the factor.
RULES_DIR=$HERE/rules
SCALE=${EVB_TIME_SCALE:-1}
scale() { if [ "$SCALE" = 1 ]; then cat; else python3 "$HERE/timescale.py" "$SCALE"; fi; }
if [ "$SCALE" != 1 ]; then
    RULES_DIR=$EVB_DIR/rules
    mkdir -p "$RULES_DIR"
    for f in "$HERE"/rules/*.yml; do scale <"$f" >"$RULES_DIR/$(basename "$f")"; done
fi
sed -e "s|@APP_PORT@|$APP_PORT|g; s|@NODE_PORT@|$NODE_PORT|g; s|@PGX_PORT@|$PGX_PORT|g" \
    -e "s|@REDISX_PORT@|$REDISX_PORT|g; s|@VIGIL_PORT@|$VIGIL_PORT|g; s|@RULES_DIR@|$RULES_DIR|g" \
    -e "s|@DASHBOARDS_DIR@|$HERE/dashboards|g; s|@SINK_PORT@|$SINK_PORT|g; s|@SMTP_PORT@|$SMTP_PORT|g" \
    "$HERE/vigil.yml.in" | scale > "$EVB_DIR/vigil.yml"
"$BIN/vigil" check config "$EVB_DIR/vigil.yml" >"$EVB_DIR/check.log" || { cat "$EVB_DIR/check.log" >&2; exit 1; }
"$BIN/vigil" --config.file "$EVB_DIR/vigil.yml" --storage.tsdb.path "$EVB_DIR/vigil-data" \
    --web.listen-address "127.0.0.1:$VIGIL_PORT" --web.enable-lifecycle >"$EVB_DIR/vigil.log" 2>&1 &
PIDS+=($!)
wait_port "$APP_PORT"
wait_port "$VIGIL_PORT"
cat <<TXT
EV Bunker example is running (logs in $EVB_DIR):
  app            http://127.0.0.1:$APP_PORT/api/health   (faults: POST /control?error_rate=0.2, /control/reset)
  vigil          http://127.0.0.1:$VIGIL_PORT/           (API, alerts: /api/v1/alerts)
  node_exporter  http://127.0.0.1:$NODE_PORT/metrics
  postgres       127.0.0.1:$PG_PORT   exporter http://127.0.0.1:$PGX_PORT/metrics
  redis          127.0.0.1:$REDIS_PORT   exporter http://127.0.0.1:$REDISX_PORT/metrics
  sinks          Slack/SMS http://127.0.0.1:$SINK_PORT, SMTP 127.0.0.1:$SMTP_PORT, recorded in $EVB_DIR/sink
Ctrl-C stops everything.
TXT
wait
