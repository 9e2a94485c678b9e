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

for tool in prometheus prometheus-node-exporter prometheus-alertmanager promtool python3 curl; do
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

# A third vigil (further down) is Prometheus's Alertmanager: vigil's own
# notifier behind Alertmanager's v2 API.
V3PORT=$(free_port); HOOK3=$(free_port)
cat > "$WORK/prom-rules.yml" <<YAML
groups:
  - name: prom
    rules:
      - alert: PromFlag
        expr: e2e_flag == 1
        labels:
          severity: critical
        annotations:
          summary: "raised, seen by Prometheus"
YAML
cat > "$WORK/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - $WORK/prom-rules.yml
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['127.0.0.1:$V3PORT']
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

# ---------------------------------------------------------------- alerts
# Every rule file shipped under examples/ passes promtool, and the rule unit
# tests pass under both promtool and vigil.
find "$ROOT/examples" -name '*.yml' -path '*rules*' ! -name '*_test.yml' -print0 | xargs -0 -r promtool check rules
find "$ROOT/examples" -name '*_test.yml' -path '*rules*' -print0 | xargs -0 -r promtool test rules
find "$ROOT/examples" -name '*_test.yml' -path '*rules*' -print0 | xargs -0 -r "$VIGIL" test rules

# A real Alertmanager 0.25 with a webhook receiver; a second vigil that
# scrapes the exporter, evaluates a rule every second and sends to it.
AMPORT=$(free_port); HOOK=$(free_port); V2PORT=$(free_port)
python3 "$ROOT/tests/e2e/webhook.py" "$HOOK" "$WORK/notifications.jsonl" > "$WORK/webhook.log" 2>&1 &
PIDS+=($!)
cat > "$WORK/alertmanager.yml" <<YAML
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: http://127.0.0.1:$HOOK/
        send_resolved: true
YAML
prometheus-alertmanager --config.file="$WORK/alertmanager.yml" --storage.path="$WORK/am-data" \
    --web.listen-address="127.0.0.1:$AMPORT" --cluster.listen-address= > "$WORK/alertmanager.log" 2>&1 &
PIDS+=($!)
cat > "$WORK/alert-rules.yml" <<YAML
groups:
  - name: e2e
    interval: 1s
    rules:
      - alert: E2EFlag
        expr: e2e_flag == 1
        labels:
          severity: page
        annotations:
          summary: "flag raised on {{ \$labels.instance }}"
YAML
cat > "$WORK/vigil-alerts.yml" <<YAML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
  external_labels:
    site: e2e
scrape_configs:
  - job_name: e2e
    static_configs:
      - targets: ['127.0.0.1:$EXP']
rule_files:
  - alert-rules.yml
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['127.0.0.1:$AMPORT']
YAML
"$VIGIL" check config "$WORK/vigil-alerts.yml"
"$VIGIL" --config.file="$WORK/vigil-alerts.yml" --storage.tsdb.path="$WORK/vigil-alerts-data" \
    --web.listen-address="127.0.0.1:$V2PORT" > "$WORK/vigil-alerts.log" 2>&1 &
PIDS+=($!)
wait_url "http://127.0.0.1:$AMPORT/-/ready"
wait_url "http://127.0.0.1:$V2PORT/-/ready"
python3 "$ROOT/tests/e2e/alerts.py" "http://127.0.0.1:$V2PORT" "http://127.0.0.1:$EXP" \
    "http://127.0.0.1:$AMPORT" "$WORK/notifications.jsonl"

# ---------------------------------------------------------------- notifier
# vigil as Prometheus 2.42's Alertmanager: it routes what Prometheus sends
# to a webhook, and amtool lists its alerts and silences through the v2 API.
python3 "$ROOT/tests/e2e/webhook.py" "$HOOK3" "$WORK/notify3.jsonl" > "$WORK/webhook3.log" 2>&1 &
PIDS+=($!)
cat > "$WORK/vigil-notify.yml" <<YAML
notify:
  route:
    receiver: team
    group_by: [alertname]
    group_wait: 1s
    group_interval: 1s
    repeat_interval: 1h
  receivers:
    - name: team
      webhook_configs:
        - url: http://127.0.0.1:$HOOK3/
YAML
"$VIGIL" check config "$WORK/vigil-notify.yml"
"$VIGIL" --config.file="$WORK/vigil-notify.yml" --storage.tsdb.path="$WORK/vigil-notify-data" \
    --web.listen-address="127.0.0.1:$V3PORT" > "$WORK/vigil-notify.log" 2>&1 &
PIDS+=($!)
wait_url "http://127.0.0.1:$V3PORT/-/ready"
python3 "$ROOT/tests/e2e/notify.py" "http://127.0.0.1:$V3PORT" "http://127.0.0.1:$EXP" "$WORK/notify3.jsonl"

# ---------------------------------------------------------------- web UI
# Browser tests in real headless Chromium (Debian's chromium driven by
# playwright-core from ui/node_modules): they start their own vigil with
# remote-written data. Screenshots and timings go to ui/test-output/.
command -v chromium >/dev/null || { echo "e2e: chromium is not installed" >&2; exit 1; }
[ -d ui/node_modules ] || (cd ui && npm ci --no-audit --no-fund)
VIGIL_BIN="$VIGIL" VIGIL_UI_TEST_OUT="${VIGIL_UI_TEST_OUT:-$ROOT/ui/test-output}" \
    node --test --test-timeout=300000 ui/e2e/browser.test.mjs ui/e2e/login.test.mjs

# ---------------------------------------------------------------- EV Bunker
# The EV Bunker example (examples/ev-bunker) with real PostgreSQL, Redis and
# exporters: every alert of its strategy fires after its `for`, reaches the
# right receivers, escalates and resolves, with time running 10 times faster
# (tests/e2e/ev_bunker.py, about 8 minutes). It also runs the web UI's EV
# Bunker dashboards test against that vigil.
python3 tests/e2e/ev_bunker.py

# ------------------------------------------------------- remote write out
# vigil forwards to a real VictoriaMetrics through a 30 s outage and a
# SIGKILL restart; every sample is compared (tests/e2e/remote_write.sh).
VIGIL_BIN="$VIGIL" tests/e2e/remote_write.sh
echo "e2e: passed"
