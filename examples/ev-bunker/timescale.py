#!/usr/bin/env python3
"""Divides every duration of a vigil configuration or rule file by FACTOR,
so the same strategy runs FACTOR times faster (run.sh with EVB_TIME_SCALE,
and the end-to-end test).

usage: timescale.py FACTOR < IN > OUT

Scaled: the values of the keys below (scrape, evaluation and probe
intervals, `for`, the notifier's group_wait, group_interval,
repeat_interval, resolve_timeout, escalation timeouts) and every PromQL
range selector (`[5m]`, `[5m:1m]`). Request timeouts (scrape_timeout, a
probe's timeout) bound real work, which does not get faster: they stay
as written unless that is longer than their scaled interval, and then
they are the interval. Everything else is copied byte for byte, comments
included. Thresholds stay as written: a count per window
(`increase(x[1m]) > 10`) then means a count per scaled window, so traffic
that should cross it must be FACTOR times denser."""
import re
import sys

KEYS = ("for", "keep_firing_for", "interval", "timeout", "scrape_interval", "scrape_timeout",
        "evaluation_interval", "resolve_timeout", "group_wait", "group_interval", "repeat_interval")
# A request timeout and the interval beside it (same mapping).
TIMEOUTS = {"scrape_timeout": "scrape_interval", "timeout": "interval"}
UNITS = (("y", 31_536_000_000), ("w", 604_800_000), ("d", 86_400_000), ("h", 3_600_000),
         ("m", 60_000), ("s", 1_000), ("ms", 1))
DUR = r"(?:\d+(?:ms|[smhdwy]))+"


def parse(d):
    ms = 0
    for n, unit in re.findall(r"(\d+)(ms|[smhdwy])", d):
        ms += int(n) * dict(UNITS)[unit]
    return ms


def fmt(ms):
    if ms == 0:
        return "0s"
    out = ""
    for unit, size in UNITS:
        if unit in ("y", "w", "d"):
            continue
        if ms >= size:
            out += f"{ms // size}{unit}"
            ms %= size
    return out


def scale(text, factor):
    def dur(d):
        ms = parse(d)
        scaled = max(1, round(ms / factor)) if ms else 0
        return fmt(scaled)

    key = re.compile(r"^(\s*(?:-\s+)?)(%s)(:\s*['\"]?)(%s)(['\"]?\s*(?:#.*)?)$" % ("|".join(KEYS), DUR))
    rng = re.compile(r"\[(%s)(?::(%s))?\]" % (DUR, DUR))
    # Scaled intervals (ms) of the mapping being read, by indentation.
    intervals = {}
    lines = []
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        end = line[len(body):]
        if body.strip() and not body.lstrip().startswith("#"):
            indent = len(body) - len(body.lstrip(" -"))
            # A line less indented, or a new list item, ends the mappings
            # at and below its indentation.
            for i in [i for i in intervals if i > indent or (i == indent and body.lstrip().startswith("-"))]:
                del intervals[i]
        m = key.match(body)
        if m:
            indent = len(m.group(1))
            name, ms = m.group(2), parse(m.group(4))
            scaled = max(1, round(ms / factor)) if ms else 0
            if name in TIMEOUTS:
                sibling = intervals.get(indent, {}).get(TIMEOUTS[name])
                if sibling is not None:
                    scaled = min(ms, sibling)
            elif name in TIMEOUTS.values():
                intervals.setdefault(indent, {})[name] = scaled
            body = m.group(1) + name + m.group(3) + fmt(scaled) + m.group(5)
        elif not body.lstrip().startswith("#"):
            body = rng.sub(lambda m: "[" + dur(m.group(1)) + (":" + dur(m.group(2)) if m.group(2) else "") + "]", body)
        lines.append(body + end)
    return "".join(lines)


if __name__ == "__main__":
    factor = float(sys.argv[1])
    if factor <= 0:
        raise SystemExit("timescale: FACTOR must be positive")
    sys.stdout.write(scale(sys.stdin.read(), factor))
