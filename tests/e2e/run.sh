#!/usr/bin/env bash
# End-to-end test with a real Prometheus 2.42 (Debian package `prometheus`):
# Prometheus scrapes a small exporter and node_exporter and remote-writes
# everything to vigil; the same queries against both must return the same
# series and values (relative 1e-9). vigil also scrapes the same
# node_exporter itself (job `vigil-node`), and the series it stores from it
# must be the ones Prometheus stores (job `node`), label for label. Needs prometheus, prometheus-node-exporter
# and python3 (.ci/run installs them). Everything started is stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/vigil-target}"

for tool in prometheus prometheus-node-exporter python3 curl; do
    command -v "$tool" >/dev/null || { echo "e2e: $tool is not installed" >&2; exit 1; }
done

cargo build -p vigil --quiet
VIGIL="$CARGO_TARGET_DIR/debug/vigil"

WORK=$(mktemp -d /tmp/vigil-e2e.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    if [ "${KEEP_E2E:-}" = "" ]; then rm -rf "$WORK"; else echo "e2e: kept $WORK"; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_url() {
    for _ in $(seq 1 120); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.25; done
    echo "e2e: not ready: $1" >&2
    for f in "$WORK"/*.log; do echo "--- $f"; tail -20 "$f"; done >&2
    return 1
}

EXP=$(free_port); NODE=$(free_port); VPORT=$(free_port); PPORT=$(free_port)

python3 "$ROOT/tests/e2e/exporter.py" "$EXP" > "$WORK/exporter.log" 2>&1 &
PIDS+=($!)
prometheus-node-exporter --web.listen-address="127.0.0.1:$NODE" > "$WORK/node_exporter.log" 2>&1 &
PIDS+=($!)

# vigil stores what Prometheus sends and scrapes node_exporter itself under
# another job name, at Prometheus's interval.
cat > "$WORK/vigil.yml" <<YAML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: vigil-node
    static_configs:
      - targets: ['127.0.0.1:$NODE']
YAML
"$VIGIL" --config.file="$WORK/vigil.yml" --storage.tsdb.path="$WORK/vigil-data" \
    --web.listen-address="127.0.0.1:$VPORT" > "$WORK/vigil.log" 2>&1 &
PIDS+=($!)

cat > "$WORK/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: e2e
    static_configs:
      - targets: ['127.0.0.1:$EXP']
  - job_name: node
    static_configs:
      - targets: ['127.0.0.1:$NODE']
remote_write:
  - url: http://127.0.0.1:$VPORT/api/v1/write
    queue_config:
      batch_send_deadline: 1s
YAML
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/prom-data" \
    --web.listen-address="127.0.0.1:$PPORT" > "$WORK/prometheus.log" 2>&1 &
PIDS+=($!)

wait_url "http://127.0.0.1:$EXP/metrics"
wait_url "http://127.0.0.1:$NODE/metrics"
wait_url "http://127.0.0.1:$VPORT/-/ready"
wait_url "http://127.0.0.1:$PPORT/-/ready"

# Enough data for the 1m and 2m windows of the queries.
SECS=${E2E_COLLECT_SECONDS:-80}
echo "e2e: collecting for ${SECS}s (Prometheus :$PPORT -> vigil :$VPORT)"
sleep "$SECS"

python3 "$ROOT/tests/e2e/compare.py" "http://127.0.0.1:$PPORT" "http://127.0.0.1:$VPORT"
echo "e2e: passed"
