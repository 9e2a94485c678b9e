#!/usr/bin/env python3
"""vigil as Prometheus 2.42's Alertmanager, and amtool against it.

usage: notify.py VIGIL_URL EXPORTER_URL WEBHOOK_FILE

Raises the exporter's flag; Prometheus's rule PromFlag fires and Prometheus
sends it to vigil (`POST /api/v2/alerts`); vigil routes it to a webhook.
amtool lists the alert, creates a silence, sees it, expires it, and reads the
configuration and the routing tree from /api/v2/status. Lowering the flag
resolves the alert, and the webhook receives the resolution."""
import json
import subprocess
import sys
import time
import urllib.request

import e2elib

vigil, exporter, hook = sys.argv[1:4]


def wait(what, fn, timeout=60):
    return e2elib.wait("e2e notify", what, fn, timeout)


def notifications():
    return e2elib.read_jsonl(hook)


def amtool(*args):
    r = subprocess.run(["amtool", "--alertmanager.url=" + vigil, *args], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise SystemExit(f"e2e notify: amtool {' '.join(args)} failed: {r.stderr}{r.stdout}")
    return r.stdout


def check(cond, msg):
    if not cond:
        raise SystemExit("e2e notify: " + msg)


urllib.request.urlopen(exporter + "/set?flag=1", timeout=10).read()
fired = wait("vigil to notify the webhook of PromFlag",
             lambda: [n for n in notifications() if n["status"] == "firing" and n["commonLabels"].get("alertname") == "PromFlag"])
n = fired[0]
check(n["version"] == "4" and n["receiver"] == "team", f"payload: {n}")
check(n["groupLabels"] == {"alertname": "PromFlag"}, f"groupLabels: {n['groupLabels']}")
a = n["alerts"][0]
check(a["labels"]["severity"] == "critical" and a["annotations"]["summary"] == "raised, seen by Prometheus", f"alert: {a}")
check(len(a["fingerprint"]) == 16, f"fingerprint: {a['fingerprint']}")
print("e2e notify: Prometheus -> vigil -> webhook:", a["labels"]["alertname"], a["startsAt"])

out = amtool("alert", "query", "-o", "json")
alerts = json.loads(out)
check(any(x["labels"].get("alertname") == "PromFlag" for x in alerts), f"amtool alert query: {out}")
sid = amtool("silence", "add", "alertname=PromFlag", "--comment=e2e", "--author=ci", "--duration=1h").strip()
check(len(sid) > 8, f"silence id: {sid!r}")
out = json.loads(amtool("silence", "query", "-o", "json"))
check(any(s["id"] == sid and s["status"]["state"] == "active" for s in out), f"silence query: {out}")
silenced = wait("the alert to show as silenced",
                lambda: [x for x in json.loads(amtool("alert", "query", "-s", "-o", "json")) if sid in x["status"]["silencedBy"]])
amtool("silence", "expire", sid)
out = json.loads(amtool("silence", "query", "--expired", "-o", "json"))
check(any(s["id"] == sid and s["status"]["state"] == "expired" for s in out), f"expired silence: {out}")
print("e2e notify: amtool listed the alert, added, saw and expired silence", sid)

out = amtool("config", "show")
check("receiver: team" in out and "webhook_configs:" in out, f"amtool config show: {out}")
status = json.loads(amtool("config", "show", "-o", "json"))
check(status["cluster"]["status"] == "disabled" and status["versionInfo"]["version"] != "",
      f"amtool config show -o json: {status}")
out = amtool("config", "routes")
check("default-route" in out and "receiver: team" in out, f"amtool config routes: {out}")
out = amtool("config", "routes", "test", "--verify.receivers=team", "alertname=PromFlag")
check(out.strip() == "team", f"amtool config routes test: {out}")
print("e2e notify: amtool config show, config routes and config routes test read vigil's notify section")

urllib.request.urlopen(exporter + "/set?flag=0", timeout=10).read()
wait("the resolved notification", lambda: [n for n in notifications() if n["status"] == "resolved"], timeout=120)
print("e2e notify: resolved")
