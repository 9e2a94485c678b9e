#!/usr/bin/env python3
"""Compares every sample vigil holds with what VictoriaMetrics received.

usage: compare_vm.py VIGIL_URL VM_URL [NAME=VALUE ...]

The NAME=VALUE pairs are vigil's external labels, which the sender adds.
Every series of vigil (raw samples, through a range selector) must be in
VictoriaMetrics (/api/v1/export) with the same timestamps and values
(relative 1e-12: VictoriaMetrics stores values as decimals, and it stores
subnormal floats such as 5e-310 as 0, which is accepted and counted).
Staleness markers are left out on both sides: vigil's range selectors skip
them.
"""
import json
import math
import sys
import urllib.parse
import urllib.request


def get(url):
    with urllib.request.urlopen(url, timeout=120) as r:
        return r.read().decode()


def key(metric):
    return tuple(sorted((k, v) for k, v in metric.items() if v != ""))


def main():
    vigil, vm = sys.argv[1], sys.argv[2]
    external = dict(a.split("=", 1) for a in sys.argv[3:])
    q = urllib.parse.urlencode({"query": '{__name__=~".+"}[30d]'})
    body = json.loads(get(f"{vigil}/api/v1/query?{q}"))
    assert body["status"] == "success", body
    mine = {}
    for s in body["data"]["result"]:
        m = dict(external)
        m.update(s["metric"])
        mine[key(m)] = [(round(float(t) * 1000), float(v)) for t, v in s["values"]]

    q = urllib.parse.urlencode({"match[]": '{__name__=~".+"}', "start": "0"})
    theirs = {}
    for line in get(f"{vm}/api/v1/export?{q}").splitlines():
        if not line.strip():
            continue
        s = json.loads(line)
        pts = theirs.setdefault(key(s["metric"]), {})
        for t, v in zip(s["timestamps"], s["values"]):
            if v is None or (isinstance(v, float) and math.isnan(v)):
                continue
            pts[t] = float(v)

    samples = 0
    subnormal = 0
    problems = []
    for k, pts in sorted(mine.items()):
        got = theirs.get(k)
        if got is None:
            problems.append(f"series missing in VictoriaMetrics: {dict(k)}")
            continue
        for t, v in pts:
            samples += 1
            if t not in got:
                problems.append(f"{dict(k)}: sample at {t} missing")
            elif got[t] == 0.0 and v != 0.0 and abs(v) < sys.float_info.min:
                subnormal += 1
            elif not (got[t] == v or abs(got[t] - v) <= 1e-12 * max(abs(v), abs(got[t]))):
                problems.append(f"{dict(k)} at {t}: vigil {v!r}, VictoriaMetrics {got[t]!r}")
        extra = set(got) - {t for t, _ in pts}
        if extra:
            problems.append(f"{dict(k)}: {len(extra)} samples VictoriaMetrics has and vigil does not")
    only_vm = set(theirs) - set(mine)
    for k in sorted(only_vm)[:10]:
        problems.append(f"series only in VictoriaMetrics: {dict(k)}")
    if problems:
        for p in problems[:40]:
            print("compare_vm:", p, file=sys.stderr)
        print(f"compare_vm: {len(problems)} problems over {len(mine)} series", file=sys.stderr)
        sys.exit(1)
    if samples < 1000:
        print(f"compare_vm: only {samples} samples compared; too few to mean anything", file=sys.stderr)
        sys.exit(1)
    print(f"compare_vm: {len(mine)} series, {samples} samples identical in vigil and VictoriaMetrics"
          f" ({subnormal} subnormal values stored as 0 by VictoriaMetrics)")


if __name__ == "__main__":
    main()
