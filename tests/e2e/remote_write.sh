#!/usr/bin/env bash
# End-to-end test of the remote-write sender against a real VictoriaMetrics
# (Debian package `victoria-metrics`): vigil scrapes itself and an exporter
# every second and forwards everything to VictoriaMetrics. While data flows,
# VictoriaMetrics is stopped for 30 seconds, and later vigil is killed
# (SIGKILL) and started again. Then ingestion stops (a reload without
# scrape jobs), the queue drains, and every sample of every series in vigil
# must be in VictoriaMetrics with the same timestamp and value
# (tests/e2e/compare_vm.py). Everything started is stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/vigil-target}"

for tool in victoria-metrics python3 curl; do
    command -v "$tool" >/dev/null || { echo "remote_write e2e: $tool is not installed" >&2; exit 1; }
done

[ -n "${VIGIL_BIN:-}" ] || cargo build -p vigil --quiet
VIGIL="${VIGIL_BIN:-$CARGO_TARGET_DIR/debug/vigil}"

WORK=$(mktemp -d /tmp/vigil-rw-e2e.XXXXXX)
PIDS=()
VM_PID=""
VIGIL_PID=""
cleanup() {
    for p in "${PIDS[@]}" $VM_PID $VIGIL_PID; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}" $VM_PID $VIGIL_PID; do wait "$p" 2>/dev/null || true; done
    if [ "${KEEP_E2E:-}" = "" ]; then rm -rf "$WORK"; else echo "remote_write e2e: kept $WORK"; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_url() {
    for _ in $(seq 1 240); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.25; done
    echo "remote_write e2e: not ready: $1" >&2
    for f in "$WORK"/*.log; do echo "--- $f"; tail -30 "$f"; done >&2
    return 1
}
metric() {
    curl -fsS "http://127.0.0.1:$VPORT/metrics" | awk -v m="vigil_remote_storage_$1{" 'index($0, m) == 1 { print $2 }'
}

EXP=$(free_port); VMPORT=$(free_port); VPORT=$(free_port)

python3 "$ROOT/tests/e2e/exporter.py" "$EXP" > "$WORK/exporter.log" 2>&1 &
PIDS+=($!)

start_vm() {
    # Deduplication keeps one sample per series and millisecond: samples
    # re-sent after vigil's SIGKILL are stored once, as the docs advise.
    victoria-metrics -storageDataPath "$WORK/vm-data" -httpListenAddr "127.0.0.1:$VMPORT" \
        -dedup.minScrapeInterval=1ms -retentionPeriod=100y -search.latencyOffset=0s \
        >> "$WORK/vm.log" 2>&1 &
    VM_PID=$!
    wait_url "http://127.0.0.1:$VMPORT/health"
}

write_config() {
    local scrape="$1"
    {
        cat <<YAML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  external_labels:
    site: e2e
remote_write:
  - url: http://127.0.0.1:$VMPORT/api/v1/write
    name: vm
    remote_timeout: 5s
    queue_config:
      batch_send_deadline: 500ms
      min_backoff: 50ms
      max_backoff: 1s
      max_samples_per_send: 500
YAML
        if [ "$scrape" = yes ]; then
            cat <<YAML
scrape_configs:
  - job_name: vigil
    static_configs:
      - targets: ['127.0.0.1:$VPORT']
  - job_name: exporter
    static_configs:
      - targets: ['127.0.0.1:$EXP']
YAML
        fi
    } > "$WORK/vigil.yml"
}

start_vigil() {
    "$VIGIL" --config.file="$WORK/vigil.yml" --storage.tsdb.path="$WORK/vigil-data" \
        --web.listen-address="127.0.0.1:$VPORT" >> "$WORK/vigil.log" 2>&1 &
    VIGIL_PID=$!
    wait_url "http://127.0.0.1:$VPORT/-/ready"
}

write_config yes
"$VIGIL" check config "$WORK/vigil.yml"
start_vm
start_vigil
wait_url "http://127.0.0.1:$EXP/metrics"

echo "remote_write e2e: flowing for 10s"
sleep 10
echo "remote_write e2e: VictoriaMetrics down for 30s"
kill -TERM "$VM_PID"; wait "$VM_PID" 2>/dev/null || true; VM_PID=""
sleep 30
retried=$(metric samples_retried_total)
pending=$(metric samples_pending)
echo "remote_write e2e: during the outage: retried=$retried pending=$pending"
start_vm
sleep 10
echo "remote_write e2e: SIGKILL vigil, start it again"
kill -KILL "$VIGIL_PID"; wait "$VIGIL_PID" 2>/dev/null || true; VIGIL_PID=""
start_vigil
sleep 10

echo "remote_write e2e: stopping ingestion (reload without scrape jobs), draining"
write_config no
kill -HUP "$VIGIL_PID"
sleep 3
for _ in $(seq 1 240); do
    p=$(metric samples_pending); i=$(metric highest_timestamp_in_seconds); s=$(metric queue_highest_sent_timestamp_seconds)
    [ "$p" = "0" ] && [ "$i" = "$s" ] && break
    sleep 0.5
done
echo "remote_write e2e: pending=$(metric samples_pending) failed=$(metric samples_failed_total) sent=$(metric samples_total)"
[ "$(metric samples_failed_total)" = "0" ] || { echo "remote_write e2e: samples were refused" >&2; exit 1; }
curl -fsS "http://127.0.0.1:$VMPORT/internal/force_flush" >/dev/null
python3 "$ROOT/tests/e2e/compare_vm.py" "http://127.0.0.1:$VPORT" "http://127.0.0.1:$VMPORT" site=e2e
echo "remote_write e2e: passed"
