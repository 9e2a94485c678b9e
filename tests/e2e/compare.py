#!/usr/bin/env python3
"""Runs the same PromQL queries against Prometheus and vigil and checks that
they return the same series with the same values (relative 1e-9), and that
the series vigil scraped from node_exporter itself (job vigil-node) are the
ones Prometheus scraped from it (job node), with the same labels.

usage: compare.py PROM_URL VIGIL_URL

The evaluation time is chosen ten seconds in the past, at a millisecond phase
as far as possible from every target's scrape phase, so that no range window
starts exactly on a sample: Prometheus 2.42 closes a window on the left,
Prometheus 3 (and vigil) leave it open, and the comparison must not depend
on that documented difference.
"""
import json
import math
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

QUERIES = [
    'up{job=~"e2e|node"}',
    "e2e_requests_total",
    'e2e_temperature_celsius',
    "rate(e2e_requests_total[1m])",
    "sum by (route) (rate(e2e_requests_total[1m]))",
    'sum by (code) (increase(e2e_requests_total{route=~"/api/.*"}[2m]))',
    "histogram_quantile(0.9, sum by (le) (rate(e2e_latency_seconds_bucket[1m])))",
    "e2e_latency_seconds_sum / e2e_latency_seconds_count",
    "avg_over_time(e2e_temperature_celsius[1m])",
    "max_over_time(e2e_temperature_celsius[30s]) - min_over_time(e2e_temperature_celsius[30s])",
    "deriv(e2e_temperature_celsius[1m])",
    "topk(2, e2e_requests_total)",
    'count by (job) ({job=~"e2e|node"})',
    "e2e_big_value * 2",
    "e2e_tiny_value",
    "e2e_negative_zero",
    'sum(rate(node_cpu_seconds_total{job="node"}[1m])) by (mode)',
    'node_memory_MemTotal_bytes{job="node"}',
    'count(node_network_receive_bytes_total{job="node"})',
    'rate(node_network_receive_bytes_total{job="node"}[1m])',
    'scrape_samples_scraped{job=~"e2e|node"}',
    'changes(e2e_temperature_celsius[2m])',
    'e2e_requests_total{code="500"} / ignoring(code) e2e_requests_total{code="200"}',
    "quantile_over_time(0.5, e2e_temperature_celsius[1m])",
    "absent(nonexistent_metric)",
    'vector(1) + on() group_left() count(up{job=~"e2e|node"})',
]


def get(base, path, params):
    url = base + path + "?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            doc = json.load(r)
    except urllib.error.HTTPError as e:
        raise RuntimeError(f"{url}: HTTP {e.code}: {e.read()[:500]!r}") from None
    if doc.get("status") != "success":
        raise RuntimeError(f"{url}: {doc}")
    return doc["data"]


def close(a, b):
    if a == b:
        return True
    fa, fb = float(a), float(b)
    if math.isnan(fa) and math.isnan(fb):
        return True
    if math.isinf(fa) or math.isinf(fb):
        return fa == fb
    return abs(fa - fb) <= 1e-9 * max(abs(fa), abs(fb))


def key(m):
    return tuple(sorted(m.items()))


def compare(q, kind, p, v):
    errors = []
    if p["resultType"] != v["resultType"]:
        return [f"{kind} {q}: result type {p['resultType']} vs {v['resultType']}"]
    if p["resultType"] in ("scalar", "string"):
        pr, vr = p["result"], v["result"]
        if pr[0] != vr[0] or not close(pr[1], vr[1]):
            errors.append(f"{kind} {q}: {pr} vs {vr}")
        return errors
    ps = {key(s["metric"]): s for s in p["result"]}
    vs = {key(s["metric"]): s for s in v["result"]}
    if set(ps) != set(vs):
        only_p = sorted(set(ps) - set(vs))[:3]
        only_v = sorted(set(vs) - set(ps))[:3]
        errors.append(f"{kind} {q}: series differ; only Prometheus: {only_p}; only vigil: {only_v}")
        return errors
    for k in ps:
        a, b = ps[k], vs[k]
        pa = a.get("values") or [a.get("value")]
        va = b.get("values") or [b.get("value")]
        if len(pa) != len(va):
            errors.append(f"{kind} {q} {dict(k)}: {len(pa)} vs {len(va)} points")
            continue
        for x, y in zip(pa, va):
            if x[0] != y[0] or not close(x[1], y[1]):
                errors.append(f"{kind} {q} {dict(k)}: {x} vs {y}")
                break
    return errors


def pick_time(prom):
    now = time.time()
    data = get(prom, "/api/v1/query", {"query": "timestamp(up)", "time": now})
    phases = [round(float(s["value"][1]) * 1000) % 1000 for s in data["result"]]
    if not phases:
        raise RuntimeError("Prometheus has no up series yet")

    def margin(p):
        return min(min((p - q) % 1000, (q - p) % 1000) for q in phases)

    best = max(range(1000), key=margin)
    return math.floor(now - 10) + best / 1000.0, margin(best)


def wait_in_sync(prom, vigil, t):
    """Remote write lags a little: wait until vigil holds what Prometheus
    holds up to t."""
    names = ["up", "scrape_samples_scraped", "e2e_requests_total", "e2e_temperature_celsius",
             "node_cpu_seconds_total", "node_network_receive_bytes_total"]
    q = " + ".join(f'sum(count_over_time({n}{{job=~"e2e|node"}}[10m]))' for n in names)
    deadline = time.time() + 60
    while True:
        p = get(prom, "/api/v1/query", {"query": q, "time": t})
        v = get(vigil, "/api/v1/query", {"query": q, "time": t})
        pn = p["result"][0]["value"][1] if p["result"] else "0"
        vn = v["result"][0]["value"][1] if v["result"] else "0"
        if pn == vn:
            return pn
        if time.time() > deadline:
            raise RuntimeError(f"vigil never caught up: Prometheus has {pn} samples, vigil {vn}")
        time.sleep(1)


def series_set(base, job, start, end):
    """The series of a job in [start, end], as (name, labels without job)."""
    data = get(base, "/api/v1/series", {"match[]": f'{{job="{job}"}}', "start": start, "end": end})
    out = set()
    for s in data:
        s = dict(s)
        if s.pop("job", None) != job:
            raise RuntimeError(f"{base}: series without job {job}: {s}")
        out.add(tuple(sorted(s.items())))
    return out


def compare_node_series(prom, vigil, t):
    """vigil's own scrape of node_exporter must store the series Prometheus
    stores from it. Both scrape it every second, so over the last 20 s both
    hold every series node_exporter exposed then; node_exporter's series set
    does not change between scrapes on an idle machine, so no difference is
    tolerated."""
    start, end = t - 20, t
    p = series_set(prom, "node", start, end)
    v = series_set(vigil, "vigil-node", start, end)
    errors = []
    if not p:
        errors.append("Prometheus stored no series of job node")
    if p != v:
        only_p = sorted(p - v)[:5]
        only_v = sorted(v - p)[:5]
        errors.append(f"node_exporter series differ ({len(p)} in Prometheus, {len(v)} in vigil); "
                      f"only Prometheus: {only_p}; only vigil: {only_v}")
    names = {dict(s)["__name__"] for s in p}
    print(f"node_exporter: {len(p)} series of {len(names)} metrics in Prometheus (job node), "
          f"{len(v)} in vigil (job vigil-node)")
    return errors


def main():
    prom, vigil = sys.argv[1:3]
    t, margin = pick_time(prom)
    start, end = t - 60, t
    samples = wait_in_sync(prom, vigil, t)
    print(f"evaluating at {t:.3f} ({margin} ms from any scrape phase); {samples} samples in both")
    errors = []
    series = 0
    for q in QUERIES:
        p = get(prom, "/api/v1/query", {"query": q, "time": t})
        v = get(vigil, "/api/v1/query", {"query": q, "time": t})
        series += len(p["result"]) if isinstance(p["result"], list) and p["resultType"] != "scalar" else 1
        errors += compare(q, "instant", p, v)
        p = get(prom, "/api/v1/query_range", {"query": q, "start": start, "end": end, "step": "5"})
        v = get(vigil, "/api/v1/query_range", {"query": q, "start": start, "end": end, "step": "5"})
        errors += compare(q, "range", p, v)
    # Metadata endpoints agree on what exists.
    for path, params in (
        ("/api/v1/labels", {"match[]": '{job="e2e"}', "start": start, "end": end}),
        ("/api/v1/label/__name__/values", {"match[]": '{job="e2e"}', "start": start, "end": end}),
    ):
        p, v = get(prom, path, params), get(vigil, path, params)
        if sorted(p) != sorted(v):
            errors.append(f"{path}: {sorted(p)} vs {sorted(v)}")
    errors += compare_node_series(prom, vigil, t)
    for e in errors:
        print("MISMATCH", e)
    print(f"compared {len(QUERIES)} queries (instant and range, {series} instant series): {len(errors)} mismatches")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
