#!/usr/bin/env python3
"""End-to-end check of vigil's alerts through a real Alertmanager 0.25.

usage: alerts.py VIGIL_URL EXPORTER_URL ALERTMANAGER_URL WEBHOOK_FILE

vigil scrapes the exporter and evaluates `E2EFlag` (e2e_flag == 1). The
test raises the flag, waits for the alert in vigil and in Alertmanager and
for the webhook notification, then lowers it and waits for the resolved
notification. It checks labels, annotations, startsAt and endsAt."""
import json
import sys
import time
import urllib.request

import e2elib

vigil, exporter, am, hook = sys.argv[1:5]


def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def wait(what, fn, timeout=60):
    return e2elib.wait("e2e alerts", what, fn, timeout)


def notifications():
    return e2elib.read_jsonl(hook)


def vigil_alert():
    alerts = get(vigil + "/api/v1/alerts")["data"]["alerts"]
    firing = [a for a in alerts if a["labels"].get("alertname") == "E2EFlag" and a["state"] == "firing"]
    return firing[0] if firing else None


def am_alert():
    alerts = get(am + "/api/v2/alerts")
    mine = [a for a in alerts if a["labels"].get("alertname") == "E2EFlag"]
    return mine[0] if mine else None


def check(cond, msg):
    if not cond:
        raise SystemExit("e2e alerts: " + msg)


urllib.request.urlopen(exporter + "/set?flag=1", timeout=10).read()
va = wait("the alert to fire in vigil", vigil_alert)
aa = wait("the alert in Alertmanager", am_alert)
check(aa["labels"]["severity"] == "page", f"labels: {aa['labels']}")
check(aa["labels"]["site"] == "e2e", f"external labels: {aa['labels']}")
check(aa["labels"]["job"] == "e2e", f"labels: {aa['labels']}")
check(aa["annotations"]["summary"] == "flag raised on " + aa["labels"]["instance"], f"annotations: {aa['annotations']}")
check(aa["status"]["state"] == "active", f"status: {aa['status']}")
# startsAt is when vigil's alert fired (for: 0s, so its activeAt).
check(aa["startsAt"][:19] == va["activeAt"][:19], f"startsAt {aa['startsAt']} vs activeAt {va['activeAt']}")
check(aa["endsAt"] > aa["startsAt"], f"endsAt {aa['endsAt']} must be in the future while firing")
fired = wait("the firing notification", lambda: [n for n in notifications() if n["status"] == "firing"])
n = fired[0]["alerts"][0]
check(n["labels"]["alertname"] == "E2EFlag" and n["status"] == "firing", f"notification: {n}")
print(f"e2e alerts: firing in vigil and Alertmanager, notified (startsAt {aa['startsAt']})")

urllib.request.urlopen(exporter + "/set?flag=0", timeout=10).read()
resolved = wait("the resolved notification", lambda: [n for n in notifications() if n["status"] == "resolved"])
r = resolved[0]["alerts"][0]
check(r["status"] == "resolved", f"{r}")
check(r["startsAt"][:19] == n["startsAt"][:19], f"resolved startsAt {r['startsAt']} vs {n['startsAt']}")
check(r["endsAt"] >= r["startsAt"], f"endsAt {r['endsAt']} before startsAt {r['startsAt']}")
check(vigil_alert() is None, "vigil still shows the alert firing")
print(f"e2e alerts: resolved (endsAt {r['endsAt']})")
