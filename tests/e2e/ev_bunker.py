#!/usr/bin/env python3
"""The EV Bunker monitoring strategy on vigil, end to end (issue #9).

usage: ev_bunker.py    (env: CARGO_TARGET_DIR; KEEP_E2E=1 keeps the data)

Starts the whole example with examples/ev-bunker/run.sh on 127.0.0.1 and
free ports (PostgreSQL, Redis, node_exporter, postgres_exporter,
redis_exporter, the app, the Slack/SMS/SMTP sinks, vigil), then drives every
alerting rule of examples/ev-bunker/rules/ev-bunker.yml. For each alert:

- the fault goes in (the app's /control; PostgreSQL and Redis really
  stopped; CPU and memory through node_exporter, see below);
- the alert is seen pending, still pending before its `for` elapsed, and
  firing no sooner than `for` after it went pending (at once when it has
  no `for`);
- the right receivers got the right message: critical, Slack
  #ev-bunker-critical, SMS to the on-call number and level 1 of the
  escalation (devops' Slack); warning, Slack #ev-bunker-alerts and the
  email digest, never SMS; info (NoBookings), no message at all, only the
  notifier's history;
- the fault is cleared, the alert resolves, and Slack and SMS say so.

Inhibition: while a critical alert of service `app` fires, the app's
warnings fire in the rules but are suppressed in the notifier and not sent.
Escalation: an unacknowledged critical (HealthCheckFailing) reaches L2 (SMS
to the lead) one L1 timeout after L1, and L3 (SMS and mail to the CTO) one
L2 timeout later; an acknowledged one (HighLatencyCritical, acked with
POST /api/v1/notify/ack) stays at L1. An alert firing outside the phases
that expect it fails the test.

Time runs SCALE (10) times faster: run.sh renders vigil.yml and the rules
through examples/ev-bunker/timescale.py (EVB_TIME_SCALE), which divides
every duration (scrape, evaluation and probe intervals, `for`, PromQL range
windows, group_wait, group_interval, repeat_interval, escalation timeouts)
and nothing else; request timeouts, which bound real work, are kept (at
most their scaled interval). A minute lasts 6 s, `for: 5m` 30 s, the digest's hour
6 min, L1's 15 minutes 90 s. Thresholds are the strategy's; counts per
window (failed logins per minute) are injected SCALE times denser.

node_exporter is the real one with --path.procfs pointed at a directory of
the test's: /proc's entries linked, except `stat` and `meminfo`, which the
test writes and advances (CPU ticks at a busy share it sets, memory in use
at a share it sets), so HighCPUUsage and HighMemoryUsage run the real
exporter and the real rules without loading the machine, whose own CPU is
busy with other builds.

Faults run in overlapping phases, ordered so that no fault moves another
alert's expression: A app warnings, node, NoBookings; B security,
registrations, payment delays; C the app's criticals (inhibition and both
escalations); D payment and booking failures; E PostgreSQL and Redis down
(and their cascade). Then the email digest is checked: every warning in it,
and reported resolved, its mails a group_interval apart. The run takes
about 8 minutes after the build."""
import calendar
import email
import email.policy
import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
EX = os.path.join(ROOT, "examples", "ev-bunker")
SCALE = 10
START = time.time()

# The strategy's channels, as vigil.yml.in names them.
CRIT_SLACK, WARN_SLACK, DEVOPS_SLACK = "#ev-bunker-critical", "#ev-bunker-alerts", "#devops-oncall"
PAGER, LEAD, CTO_SMS = "+15550100", "+15550101", "+15550102"
DIGEST, CTO_MAIL = "ops@ev-bunker.example", "cto@ev-bunker.example"


def log(msg):
    print(f"e2e ev-bunker [{time.time() - START:6.1f}s] {msg}", flush=True)


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


failures = []


def wait(what, fn, timeout):
    """Polls fn until it returns something truthy; fails after `timeout`
    seconds, or at once when another part of the test failed."""
    deadline = time.time() + timeout
    while True:
        v = fn()
        if v:
            return v
        if failures:
            raise Fail(f"stopped waiting for {what}: another check failed")
        if time.time() > deadline:
            raise Fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.25)


def sleep_until(t):
    while time.time() < t:
        if failures:
            raise Fail("stopped waiting: another check failed")
        time.sleep(min(0.5, max(0.0, t - time.time())))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        text = r.read().decode()
    return json.loads(text) if text.strip() else None


def parse_time(s):
    """RFC 3339 to Unix seconds."""
    m = re.match(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", s)
    check(m, f"not an RFC 3339 time: {s!r}")
    t = calendar.timegm(tuple(int(m.group(i)) for i in range(1, 7)))
    t += float(m.group(7) or 0)
    if m.group(8) != "Z":
        sign = 1 if m.group(8)[0] == "+" else -1
        t -= sign * (int(m.group(8)[1:3]) * 3600 + int(m.group(8)[4:6]) * 60)
    return t


def seconds(d):
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)(ms|[smhd])", d))


def aiosmtpd_python():
    """An interpreter that has aiosmtpd (Debian's python3-aiosmtpd is for
    /usr/bin/python3, which may not be the python3 first on PATH)."""
    for py in ("python3", "/usr/bin/python3"):
        if shutil.which(py) and subprocess.run([py, "-c", "import aiosmtpd"], capture_output=True).returncode == 0:
            return py
    raise SystemExit("e2e ev-bunker: aiosmtpd is not installed (Debian package python3-aiosmtpd)")


# ------------------------------------------------------------------ node


class FakeProc:
    """A procfs for node_exporter: /proc's entries linked, `stat` and
    `meminfo` written by the test. CPU counters advance in real time at
    the busy share set; memory in use is the share set."""

    CPUS = 2
    MEM_KB = 8 * 1024 * 1024

    def __init__(self, path):
        self.path = path
        os.makedirs(path)
        for name in os.listdir("/proc"):
            if name in ("stat", "meminfo") or (name.isdigit() and name != "1"):
                continue
            os.symlink("/proc/" + name, os.path.join(path, name))
        with open("/proc/stat") as f:
            self.rest = [line for line in f if not line.startswith("cpu")]
        self.busy, self.mem = 0.2, 0.4
        # user nice system idle iowait irq softirq steal guest guest_nice
        self.ticks = [[0.0] * 10 for _ in range(self.CPUS)]
        self.last = time.time()
        self.lock = threading.Lock()
        self.write()
        threading.Thread(target=self.run, daemon=True).start()

    def put(self, name, text):
        tmp = os.path.join(self.path, "." + name)
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, os.path.join(self.path, name))

    def write(self):
        with self.lock:
            now = time.time()
            dt, self.last = now - self.last, now
            for t in self.ticks:
                t[0] += 100 * dt * self.busy
                t[3] += 100 * dt * (1 - self.busy)
            total = [sum(c) for c in zip(*self.ticks)]
            cpu = ["cpu  " + " ".join(str(int(x)) for x in total) + "\n"]
            cpu += [f"cpu{i} " + " ".join(str(int(x)) for x in t) + "\n" for i, t in enumerate(self.ticks)]
            self.put("stat", "".join(cpu + self.rest))
            avail = int(self.MEM_KB * (1 - self.mem))
            self.put("meminfo", f"MemTotal: {self.MEM_KB} kB\nMemFree: {avail // 2} kB\nMemAvailable: {avail} kB\n"
                                f"Buffers: 10240 kB\nCached: {avail // 2} kB\nSwapCached: 0 kB\nActive: {self.MEM_KB - avail} kB\n"
                                f"Inactive: {avail // 4} kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n")

    def set(self, busy=None, mem=None):
        with self.lock:
            self.busy = self.busy if busy is None else busy
            self.mem = self.mem if mem is None else mem
        self.write()

    def run(self):
        while True:
            time.sleep(0.25)
            self.write()


# ------------------------------------------------------------------ stack


class Stack:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="vigil-evb.")
        self.proc_dir = os.path.join(self.dir, "proc")
        self.node = FakeProc(self.proc_dir)
        ports = {k: free_port() for k in ("PG_PORT", "REDIS_PORT", "APP_PORT", "NODE_PORT", "PGX_PORT",
                                          "REDISX_PORT", "VIGIL_PORT", "SINK_PORT", "SMTP_PORT")}
        self.env = dict(os.environ, EVB_DIR=self.dir, EVB_PROFILE="debug", EVB_TIME_SCALE=str(SCALE),
                        EVB_RPS="50", EVB_PROCFS=self.proc_dir, EVB_PYTHON=aiosmtpd_python(),
                        **{k: str(v) for k, v in ports.items()})
        self.env.setdefault("CARGO_TARGET_DIR", "/var/tmp/vigil-target")
        self.vigil = f"http://127.0.0.1:{ports['VIGIL_PORT']}"
        self.app = f"http://127.0.0.1:{ports['APP_PORT']}"
        self.proc = None

    def start(self):
        self.log = open(os.path.join(self.dir, "run.log"), "w")
        self.proc = subprocess.Popen([os.path.join(EX, "run.sh")], env=self.env, stdout=self.log,
                                     stderr=subprocess.STDOUT)

        def ready():
            if self.proc.poll() is not None:
                raise Fail(f"run.sh exited with {self.proc.returncode}")
            try:
                urllib.request.urlopen(self.vigil + "/-/ready", timeout=2).read()
                urllib.request.urlopen(self.app + "/api/health", timeout=2).read()
                return True
            except (urllib.error.URLError, OSError):
                return False
        # The first run builds vigil and the app.
        wait("the stack to start (run.sh)", ready, 1200)

    def services(self, fn):
        """Runs one of services.sh's functions (stop_postgres, ...)."""
        subprocess.run(["bash", "-c", f'. "{EX}/services.sh" && {fn}'], env=self.env, check=True, timeout=120,
                       stdout=subprocess.DEVNULL)

    def control(self, **faults):
        q = "&".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in faults.items())
        http("POST", f"{self.app}/control?{q}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        # Whatever run.sh could not stop (it was killed, or died early).
        for fn in ("stop_redis", "stop_postgres"):
            try:
                self.services(fn)
            except Exception:  # noqa: BLE001 - best effort at teardown
                pass

    def tail_logs(self):
        for name in ("run.log", "vigil.log", "app.log", "sink.log", "node_exporter.log", "postgres.log"):
            p = os.path.join(self.dir, name)
            if os.path.exists(p):
                with open(p, errors="replace") as f:
                    lines = f.readlines()[-25:]
                print(f"--- {p}\n{''.join(lines)}", file=sys.stderr)


# ------------------------------------------------------------------ vigil's view


class Observer:
    """Polls /api/v1/alerts (the rules' alerts) twice a second and keeps
    every answer."""

    def __init__(self, vigil):
        self.vigil = vigil
        self.polls = []  # (time, [alert])
        self.lock = threading.Lock()
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while True:
            try:
                alerts = http("GET", self.vigil + "/api/v1/alerts")["data"]["alerts"]
                with self.lock:
                    self.polls.append((time.time(), alerts))
            except Exception:  # noqa: BLE001 - a missed poll is only a gap
                pass
            time.sleep(0.5)

    def since(self, t):
        with self.lock:
            return [(pt, alerts) for pt, alerts in self.polls if pt >= t]

    def seen(self, name, t, state=None):
        """(time, alert) of every observation of `name` at or after t."""
        return [(pt, a) for pt, alerts in self.since(t) for a in alerts
                if a["labels"]["alertname"] == name and (state is None or a["state"] == state)]

    def wait_firing(self, name, t, timeout, instances=1):
        def firing():
            polls = self.since(t)
            if not polls:
                return None
            now = [a for a in polls[-1][1] if a["labels"]["alertname"] == name and a["state"] == "firing"]
            return now if len(now) >= instances else None
        return wait(f"{name} to fire", firing, timeout)

    def wait_gone(self, name, t, timeout):
        def gone():
            polls = self.since(t)
            return polls and not any(a["labels"]["alertname"] == name for a in polls[-1][1])
        wait(f"{name} to resolve", gone, timeout)
        return time.time()


def instance_key(labels):
    return tuple(sorted((k, v) for k, v in labels.items()))


# ------------------------------------------------------------------ sinks


class Sinks:
    """What sink.py recorded: Slack and SMS posts, and mails."""

    def __init__(self, d):
        self.dir = d

    def read(self, kind):
        """The complete lines (sink.py may be writing the last one)."""
        try:
            with open(os.path.join(self.dir, kind + ".jsonl")) as f:
                return [json.loads(line) for line in f if line.endswith("\n")]
        except FileNotFoundError:
            return []

    def slack(self):
        out = []
        for r in self.read("slack"):
            b = json.loads(r["body"])
            a = b["attachments"][0]
            out.append({"at": r["at"], "channel": b.get("channel"), "title": a.get("title", ""),
                        "text": a.get("text", ""), "color": a.get("color")})
        return out

    def sms(self):
        out = []
        for r in self.read("sms"):
            b = json.loads(r["body"])
            out.append({"at": r["at"], "to": b.get("to"), "from": b.get("from"), "message": b.get("message", "")})
        return out

    def mail(self):
        out = []
        for r in self.read("email"):
            m = email.message_from_string(r["data"], policy=email.policy.default)
            body = m.get_body(preferencelist=("plain",))
            out.append({"at": r["at"], "to": r["to"], "subject": str(m["Subject"]),
                        "text": body.get_content() if body else ""})
        return out

    def everything(self):
        return [json.dumps(r) for kind in ("slack", "sms", "email") for r in self.read(kind)]


def slack_msgs(sinks, channel, status, name, since):
    pat = re.compile(rf"^\*{status}\* {re.escape(name)} \[", re.M)
    return [m for m in sinks.slack() if m["channel"] == channel and m["at"] >= since and pat.search(m["text"])]


def slack_resolved(sinks, channel, name, since):
    """Slack messages saying a group of `name` resolved (a group update in
    which one of its alerts resolved and another fires says FIRING)."""
    pat = re.compile(rf"^\[RESOLVED\] {re.escape(name)} ")
    return [m for m in sinks.slack() if m["channel"] == channel and m["at"] >= since and pat.match(m["title"])]


def sms_msgs(sinks, to, status, name, since):
    pat = re.compile(rf"^\[{status}(:\d+)?\] {re.escape(name)} ")
    return [m for m in sinks.sms() if m["to"] == to and m["at"] >= since and pat.match(m["message"])]


def every(*lists):
    """The lists when none is empty."""
    return lists if all(lists) else None


def digest_sections(text):
    """The alert names of a digest mail, by section (firing, resolved)."""
    out = {"firing": set(), "resolved": set()}
    section = None
    for line in text.splitlines():
        if line.startswith("Alerts Firing:"):
            section = "firing"
        elif line.startswith("Alerts Resolved:"):
            section = "resolved"
        m = re.match(r"^ - alertname = (\S+)$", line)
        if m and section:
            out[section].add(m.group(1))
    return out


# ------------------------------------------------------------------ the test


class Run:
    def __init__(self, stack):
        self.stack = stack
        self.sinks = Sinks(os.path.join(stack.dir, "sink"))
        self.obs = Observer(stack.vigil)
        with open(os.path.join(stack.dir, "rules", "ev-bunker.yml")) as f:
            rules = yaml.safe_load(f)
        self.rules = {r["alert"]: r for g in rules["groups"] for r in g["rules"] if "alert" in r}
        with open(os.path.join(stack.dir, "vigil.yml")) as f:
            self.cfg = yaml.safe_load(f)
        self.eval_s = seconds(self.cfg["global"]["evaluation_interval"])
        levels = self.cfg["notify"]["escalations"][0]["levels"]
        self.level_timeouts = [seconds(lv["timeout"]) for lv in levels]
        # When each alert may fire: [start, end] spans opened by the phases
        # that expect it (end None while open).
        self.allowed = {}
        self.lock = threading.Lock()
        self.covered = set()

    # -- bookkeeping

    def allow(self, *names):
        t = time.time()
        with self.lock:
            for n in names:
                self.allowed.setdefault(n, []).append([t, None])

    def disallow(self, *names):
        t = time.time()
        with self.lock:
            for n in names:
                for span in self.allowed.get(n, []):
                    if span[1] is None:
                        span[1] = t
                        break

    def for_s(self, name):
        return seconds(self.rules[name].get("for", "0s"))

    def summary_re(self, name):
        parts = re.split(r"\{\{.*?\}\}", self.rules[name]["annotations"]["summary"])
        return ".+?".join(re.escape(p) for p in parts)

    # -- checks

    def check_pending_then_firing(self, name, t0):
        """Every instance of `name` that fired since t0 was pending first,
        still pending before `for` elapsed, and firing no sooner than `for`
        after it went pending (for: 0, firing at once)."""
        f = self.for_s(name)
        firing = self.obs.seen(name, t0, "firing")
        check(firing, f"{name}: never seen firing")
        first = {}
        for pt, a in firing:
            first.setdefault((instance_key(a["labels"]), a["activeAt"]), pt)
        for (key, active_s), fired_at in first.items():
            active = parse_time(active_s)
            pending = [pt for pt, a in self.obs.seen(name, t0, "pending")
                       if instance_key(a["labels"]) == key and a["activeAt"] == active_s]
            if f > 0:
                check(any(pt < active + f for pt in pending),
                      f"{name}: not seen pending before its for ({f}s) elapsed (activeAt {active_s})")
                check(fired_at >= active + f - 0.05,
                      f"{name}: firing {fired_at - active:.2f}s after going pending, before its for ({f}s)")
                check(fired_at <= active + f + 2 * self.eval_s + 3,
                      f"{name}: firing only {fired_at - active:.1f}s after going pending (for {f}s)")
            else:
                check(not pending, f"{name}: seen pending though it has no for")
                check(fired_at - active <= 2 * self.eval_s + 3, f"{name}: firing late ({fired_at - active:.1f}s)")
        return first

    def expect_sent(self, name, t0):
        """The firing messages of `name` by its severity; returns their times."""
        sev = self.rules[name]["labels"]["severity"]
        svc = self.rules[name]["labels"]["service"]
        title = re.compile(rf"^\[FIRING:\d+\] {re.escape(name)} {re.escape(svc)}\b")
        text = re.compile(rf"^\*FIRING\* {re.escape(name)} \[{sev}\]: {self.summary_re(name)}$", re.M)
        if sev == "critical":
            try:
                got = wait(f"{name}'s Slack (#ev-bunker-critical), SMS and escalation L1 (devops) messages",
                           lambda: every(slack_msgs(self.sinks, CRIT_SLACK, "FIRING", name, t0),
                                         sms_msgs(self.sinks, PAGER, "FIRING", name, t0),
                                         slack_msgs(self.sinks, DEVOPS_SLACK, "FIRING", name, t0)), 30)
            except Fail as e:
                raise Fail(f"{e}\n{self.notifier_report(name, t0)}") from None
            s, m, d = got[0][0], got[1][0], got[2][0]
            check(title.match(s["title"]), f"{name}: Slack title {s['title']!r}")
            check(text.search(s["text"]), f"{name}: Slack text {s['text']!r}")
            check(s["color"] == "danger", f"{name}: Slack colour {s['color']!r} for a critical alert")
            check(m["from"] == "vigil" and len(m["message"]) <= 160, f"{name}: SMS {m}")
            check(re.match(rf"^\[FIRING:\d+\] {re.escape(name)} {re.escape(svc)}\b", m["message"]),
                  f"{name}: SMS text {m['message']!r}")
            check(title.match(d["title"]), f"{name}: devops Slack title {d['title']!r}")
            check(not slack_msgs(self.sinks, WARN_SLACK, "FIRING", name, t0), f"{name}: a critical went to {WARN_SLACK}")
            return s["at"]
        if sev == "warning":
            try:
                s = wait(f"{name}'s Slack message (#ev-bunker-alerts)",
                         lambda: slack_msgs(self.sinks, WARN_SLACK, "FIRING", name, t0), 30)[0]
            except Fail as e:
                raise Fail(f"{e}\n{self.notifier_report(name, t0)}") from None
            check(title.match(s["title"]), f"{name}: Slack title {s['title']!r}")
            check(text.search(s["text"]), f"{name}: Slack text {s['text']!r}")
            check(s["color"] == "warning", f"{name}: Slack colour {s['color']!r} for a warning")
            check(not slack_msgs(self.sinks, CRIT_SLACK, "FIRING", name, t0), f"{name}: a warning went to {CRIT_SLACK}")
            return s["at"]
        raise Fail(f"{name}: severity {sev} has no messages to expect")

    def expect_resolved_sent(self, name, t0):
        sev = self.rules[name]["labels"]["severity"]
        if sev == "critical":
            s, m = wait(f"{name}'s resolved Slack and SMS messages",
                        lambda: every(slack_resolved(self.sinks, CRIT_SLACK, name, t0),
                                      sms_msgs(self.sinks, PAGER, "RESOLVED", name, t0)), 30)
            check(s[0]["color"] == "good", f"{name}: resolved Slack colour {s[0]['color']!r}")
        else:
            # The warning route's group_interval (5m, scaled) paces it.
            gi = seconds(self.cfg["notify"]["route"]["group_interval"])
            s = wait(f"{name}'s resolved Slack message", lambda: slack_resolved(self.sinks, WARN_SLACK, name, t0),
                     gi + 15)
            check(s[0]["color"] == "good", f"{name}: resolved Slack colour {s[0]['color']!r}")

    def notifier_report(self, name, t0):
        """What the notifier and the sink saw of `name` since t0, for a
        failed wait on its messages."""
        lines = [f"  notifier alerts of {name}: {self.notifier_alert(name)}"]
        for e in self.history():
            if parse_time(e["at"]) >= t0 - 1 and name in json.dumps(e):
                lines.append(f"  history: {e}")
        for m in self.sinks.slack():
            if m["at"] >= t0:
                lines.append(f"  slack at +{m['at'] - t0:.1f}s {m['channel']}: {m['title']}")
        return "\n".join(lines)

    def notifier_alert(self, name):
        return [a for a in http("GET", self.stack.vigil + "/api/v2/alerts") if a["labels"].get("alertname") == name]

    def group(self, receiver, name):
        gs = [g for g in http("GET", self.stack.vigil + "/api/v2/alerts/groups")
              if g["receiver"]["name"] == receiver and g["labels"].get("alertname") == name]
        return gs[0] if gs else None

    def history(self, **q):
        qs = "&".join(f"{k}={v}" for k, v in q.items())
        return http("GET", f"{self.stack.vigil}/api/v1/notify/history?{qs}")

    # -- one alert, start to end

    def lifecycle(self, name, inject, clear, hold=None, partners=(), inhibits=(), task=None):
        """Injects, sees pending then firing, checks the messages, holds
        (hold(t0, fired_at)), clears, sees it resolve and the resolved
        messages. `partners` may fire along (inhibited or a cascade);
        `inhibits` were not sent to Slack while `name` fired."""
        self.covered.add(name)
        self.allow(name, *partners)
        t0 = time.time()
        inject()
        log(f"{name}: fault injected")
        self.obs.wait_firing(name, t0, self.for_s(name) + 120)
        first = self.check_pending_then_firing(name, t0)
        fired_at = min(first.values())
        active = min(parse_time(a) for _, a in first)
        if self.for_s(name):
            log(f"{name}: firing {fired_at - active:.1f}s after going pending (for {self.for_s(name):g}s)")
        else:
            log(f"{name}: firing (no for)")
        sev = self.rules[name]["labels"]["severity"]
        if sev != "info":
            self.expect_sent(name, t0)
        if hold:
            hold(t0, fired_at)
        clear()
        t_clear = time.time()
        if task:
            task.cleared.set()
        gone = self.obs.wait_gone(name, t_clear, 90)
        log(f"{name}: cleared, resolved after {gone - t_clear:.1f}s")
        for w in inhibits:
            sent = [m for m in slack_msgs(self.sinks, WARN_SLACK, "FIRING", w, t0) if m["at"] < gone]
            check(not sent, f"{w} was sent to Slack while {name} inhibited it: {sent}")
        if sev != "info":
            self.expect_resolved_sent(name, t0)
        for p in partners:
            self.obs.wait_gone(p, t_clear, 120)
        self.disallow(name, *partners)
        log(f"{name}: done")
        return t0

    def inhibited(self, warning, critical, t0):
        """`warning` fires in the rules while `critical` (same service)
        fires, and the notifier suppresses it: inhibitedBy set, no Slack."""
        self.obs.wait_firing(warning, t0, self.for_s(warning) + 120)
        self.check_pending_then_firing(warning, t0)
        a = wait(f"{warning} to be inhibited in the notifier",
                 lambda: [a for a in self.notifier_alert(warning)
                          if a["status"]["state"] == "suppressed" and a["status"]["inhibitedBy"]], 20)[0]
        # Any critical of the same service may be the one named.
        svc = self.rules[warning]["labels"]["service"]
        crit = {c["fingerprint"]: c["labels"]["alertname"] for c in http("GET", self.stack.vigil + "/api/v2/alerts")
                if c["labels"].get("severity") == "critical" and c["labels"].get("service") == svc}
        check(critical in crit.values() and set(a["status"]["inhibitedBy"]) <= set(crit),
              f"{warning} inhibited by {a['status']['inhibitedBy']}; the criticals of {svc}: {crit}")
        # Past its group_wait: a message would have been sent by now.
        time.sleep(seconds(self.cfg["notify"]["route"]["group_wait"]) + 2)
        check(not slack_msgs(self.sinks, WARN_SLACK, "FIRING", warning, t0),
              f"{warning} was sent to Slack while {critical} inhibits it")
        log(f"{warning}: firing, inhibited by {critical}, not sent")

    # -- escalation

    def escalation_unacked(self, name, t0):
        """L1 with the first message, L2 one L1 timeout later, L3 one L2
        timeout after that; nobody acknowledges."""
        t1 = wait(f"{name}: escalation L1 (devops)", lambda: slack_msgs(self.sinks, DEVOPS_SLACK, "FIRING", name, t0),
                  30)[0]["at"]
        l1, l2 = self.level_timeouts[0], self.level_timeouts[1]
        check(not sms_msgs(self.sinks, LEAD, "FIRING", name, t0), f"{name}: L2 notified with L1")
        m2 = wait(f"{name}: escalation L2 (SMS to the lead)", lambda: sms_msgs(self.sinks, LEAD, "FIRING", name, t0),
                  l1 + 30)[0]
        check(l1 - 2 <= m2["at"] - t1 <= l1 + 8, f"{name}: L2 {m2['at'] - t1:.1f}s after L1 (timeout {l1:g}s)")
        g = self.group("slack-and-sms", name)
        check(g and g["escalation"] and g["escalation"]["level"] == 2 and not g["acked"], f"{name}: group {g}")
        log(f"{name}: escalated to L2 {m2['at'] - t1:.1f}s after L1")
        check(not sms_msgs(self.sinks, CTO_SMS, "FIRING", name, t0), f"{name}: L3 notified with L2")
        m3 = wait(f"{name}: escalation L3 (SMS to the CTO)", lambda: sms_msgs(self.sinks, CTO_SMS, "FIRING", name, t0),
                  l2 + 30)[0]
        check(l2 - 2 <= m3["at"] - m2["at"] <= l2 + 8, f"{name}: L3 {m3['at'] - m2['at']:.1f}s after L2 (timeout {l2:g}s)")
        mail = wait(f"{name}: escalation L3 (mail to the CTO)",
                    lambda: [m for m in self.sinks.mail() if CTO_MAIL in m["to"] and m["at"] >= t0
                             and name in m["subject"]], 15)[0]
        check(f"alertname = {name}" in mail["text"], f"{name}: the CTO's mail: {mail['text'][:300]!r}")
        g = self.group("slack-and-sms", name)
        check(g and g["escalation"]["level"] == 3, f"{name}: group {g}")
        key = self.group_key(name)
        levels = sorted(e["level"] for e in self.history() if e.get("type") == "escalated"
                        and e.get("group_key") == key and parse_time(e["at"]) >= t0)
        check(levels == [1, 2, 3], f"{name}: history's escalations {levels}")
        log(f"{name}: escalated to L3 {m3['at'] - m2['at']:.1f}s after L2 (SMS and mail to the CTO)")

    def group_key(self, name):
        g = self.group("slack-and-sms", name)
        check(g, f"{name}: no notifier group")
        keys = [e["group"] for e in http("GET", self.stack.vigil + "/api/v1/notify/escalations")]
        ks = [k for k in keys if f'alertname="{name}"' in k]
        check(len(ks) == 1, f"{name}: escalation keys {keys}")
        return ks[0]

    def escalation_acked(self, name, t0):
        """Acknowledged at L1 through the API: no L2 after L1's timeout."""
        t1 = wait(f"{name}: escalation L1 (devops)", lambda: slack_msgs(self.sinks, DEVOPS_SLACK, "FIRING", name, t0),
                  30)[0]["at"]
        key = self.group_key(name)
        g = self.group("slack-and-sms", name)
        ack = http("POST", self.stack.vigil + "/api/v1/notify/ack",
                   {"group": g["id"], "by": "e2e on-call", "comment": "looking into the latency"})
        check(ack["kind"] == "group" and ack["by"] == "e2e on-call", f"ack: {ack}")
        check(any(a["id"] == ack["id"] for a in http("GET", self.stack.vigil + "/api/v1/notify/acks")), "ack not listed")
        log(f"{name}: acknowledged at L1 ({time.time() - t1:.1f}s after L1)")
        sleep_until(t1 + self.level_timeouts[0] + 15)
        check(not sms_msgs(self.sinks, LEAD, "FIRING", name, t0), f"{name}: escalated to L2 though acknowledged")
        g = self.group("slack-and-sms", name)
        check(g and g["acked"] and (g["escalation"] is None or g["escalation"]["level"] == 1), f"{name}: group {g}")
        esc = [e for e in self.history() if e.get("type") == "escalated" and e.get("group_key") == key
               and parse_time(e["at"]) >= t0]
        check([e["level"] for e in esc] == [1], f"{name}: history's escalations {esc}")
        acked = [e for e in self.history() if e.get("type") == "acked" and parse_time(e["at"]) >= t0
                 and (e.get("target") or {}).get("group") == key]
        check(acked, f"{name}: no ack in the history")
        log(f"{name}: still at L1 {time.time() - t1:.0f}s after L1 (L1 timeout {self.level_timeouts[0]:g}s)")

    # -- info

    def info_recorded(self, name):
        """An info alert goes to `record-only`: in the notifier, in its
        history, and nowhere else (checked again at the end)."""
        a = wait(f"{name} in the notifier", lambda: self.notifier_alert(name), 15)[0]
        check([r["name"] for r in a["receivers"]] == ["record-only"], f"{name}: receivers {a['receivers']}")
        check(a["status"]["state"] == "active", f"{name}: {a['status']}")
        fired = [e for e in self.history(fingerprint=a["fingerprint"]) if e.get("type") == "fired"]
        check(fired, f"{name}: not in the notifier's history")
        self.info_fp = a["fingerprint"]
        log(f"{name}: recorded (receiver record-only, history), not sent")

    # -- PostgreSQL and Redis down

    def outage(self, task):
        """Both stopped for real. The app's own view (ev_db_up, ev_redis_up)
        and the exporters' (pg_up, redis_up) each raise an instance; what
        the app cannot do without them fires too (a cascade), each alert
        routed by its severity."""
        downs = ("DatabaseDown", "RedisDown")
        cascade = ("HighErrorRateCritical", "PaymentProcessingFailure", "BookingCreationFailures",
                   "UserRegistrationFailures")
        self.covered.update(downs)
        # HighErrorRate fires too, inhibited (HighErrorRateCritical).
        self.allow(*downs, *cascade, "HighErrorRate")
        t0 = time.time()
        self.stack.services("stop_postgres")
        self.stack.services("stop_redis")
        log("outage: PostgreSQL and Redis stopped")
        for name, jobs in (("DatabaseDown", {"postgres", "ev-bunker"}), ("RedisDown", {"redis", "ev-bunker"})):
            got = self.obs.wait_firing(name, t0, self.for_s(name) + 60, instances=2)
            check({a["labels"]["job"] for a in got} == jobs, f"{name}: instances {[a['labels'] for a in got]}")
            first = self.check_pending_then_firing(name, t0)
            log(f"{name}: firing ({', '.join(sorted(jobs))}) "
                f"{min(first.values()) - min(parse_time(a) for _, a in first):.1f}s after going pending")
            self.expect_sent(name, t0)
        for name in cascade:
            self.obs.wait_firing(name, t0, self.for_s(name) + 120)
            self.check_pending_then_firing(name, t0)
            self.expect_sent(name, t0)
        log(f"outage: the cascade fired and was sent: {', '.join(cascade)}")
        self.stack.services("start_postgres")
        self.stack.services("start_redis")
        t_clear = time.time()
        log("outage: PostgreSQL and Redis started again")
        for name in downs + cascade + ("HighErrorRate",):
            gone = self.obs.wait_gone(name, t_clear, 90)
            log(f"{name}: resolved {gone - t_clear:.1f}s after the restart")
        for name in downs + cascade:
            self.expect_resolved_sent(name, t0)
        self.disallow(*downs, *cascade, "HighErrorRate")
        log("outage: done")

    # -- the digest

    def digest(self):
        """Every warning reached the email digest, and the digest's last
        word on each is that it resolved. The digest is grouped by severity
        with a long group_interval (the hour, scaled), so this waits for
        the mail that follows the last warning."""
        warnings = sorted(n for n, r in self.rules.items() if r["labels"]["severity"] == "warning")
        route = [r for r in self.cfg["notify"]["route"]["routes"] if r["receiver"] == "email-digest"][0]
        gi = seconds(route["group_interval"])

        def told():
            mails = [m for m in self.sinks.mail() if DIGEST in m["to"]]
            last = {}
            for m in mails:
                sec = digest_sections(m["text"])
                for n in sec["firing"]:
                    last[n] = "firing"
                for n in sec["resolved"]:
                    last[n] = "resolved"
            return mails if all(last.get(n) == "resolved" for n in warnings) else None
        log(f"digest: waiting for the mail that reports every warning resolved (group_interval {gi:g}s)")
        mails = wait("the email digest to report every warning resolved", told, gi + 60)
        for a, b in zip(mails, mails[1:]):
            check(b["at"] - a["at"] >= gi - 2, f"digest mails {b['at'] - a['at']:.0f}s apart (group_interval {gi:g}s)")
        seen = set()
        for m in mails:
            sec = digest_sections(m["text"])
            seen |= sec["firing"] | sec["resolved"]
            check(m["subject"].startswith(("[FIRING:", "[RESOLVED]")) and " warning" in m["subject"],
                  f"digest subject {m['subject']!r}")
        other = sorted(seen - set(warnings))
        check(not other, f"the email digest lists alerts that are not warnings: {other}")
        log(f"digest: {len(mails)} mails to {DIGEST}, every warning in them and reported resolved")

    # -- across the run

    def final_checks(self, t_start):
        # Every alerting rule was driven.
        missing = sorted(set(self.rules) - self.covered)
        check(not missing, f"alerting rules no phase drove: {missing}")
        sev = {n: r["labels"]["severity"] for n, r in self.rules.items()}
        # Pages only for criticals; #ev-bunker-alerts only warnings.
        for m in self.sinks.sms():
            n = re.match(r"^\[\w+(:\d+)?\] (\S+) ", m["message"])
            check(n and sev.get(n.group(2)) == "critical", f"an SMS not about a critical alert: {m}")
        for m in self.sinks.slack():
            names = set(re.findall(r"^\*\w+\* (\S+) \[", m["text"], re.M))
            want = {CRIT_SLACK: "critical", DEVOPS_SLACK: "critical", WARN_SLACK: "warning"}.get(m["channel"])
            check(names and all(sev.get(n) == want for n in names), f"a Slack message in the wrong channel: {m}")
        # Escalation levels and devops do not send resolutions (no
        # send_resolved in their configs).
        for m in self.sinks.slack():
            check(not (m["channel"] == DEVOPS_SLACK and m["title"].startswith("[RESOLVED]")),
                  f"a resolution sent to {DEVOPS_SLACK}: {m}")
        for m in self.sinks.sms():
            check(not (m["to"] in (LEAD, CTO_SMS) and m["message"].startswith("[RESOLVED]")),
                  f"a resolution sent by SMS to {m['to']}: {m}")
        # Every runbook link in a mail is a file of the example.
        for m in self.sinks.mail():
            for rb in re.findall(r"^ - runbook_url = (\S+)$", m["text"], re.M):
                check(os.path.isfile(os.path.join(EX, rb)), f"runbook {rb} (in a mail) does not exist")
        # Info is never sent.
        for r in self.sinks.everything():
            check("NoBookings" not in r, f"NoBookings (info) was sent: {r[:300]}")
        hist = self.history(fingerprint=self.info_fp)
        kinds = [e["type"] for e in hist]
        check("fired" in kinds and "resolved" in kinds, f"NoBookings' history: {kinds}")
        check(all(e["receiver"] == "record-only" for e in hist if e["type"] == "notified"),
              f"NoBookings was notified: {hist}")
        # No alert fired outside the phases that expected it.
        with self.lock:
            spans = {n: [(a, b if b is not None else time.time()) for a, b in v] for n, v in self.allowed.items()}
        stray = set()
        for pt, alerts in self.obs.since(t_start):
            for a in alerts:
                n = a["labels"]["alertname"]
                if a["state"] == "firing" and not any(s <= pt <= e + 3 for s, e in spans.get(n, [])):
                    stray.add((n, round(pt - START, 1)))
        check(not stray, f"alerts firing outside the phases that expect them (name, seconds): {sorted(stray)}")
        log(f"checked: {len(self.covered)} alerting rules driven, receivers by severity, no stray alert")


def main():
    for tool in ("redis-server", "prometheus-node-exporter", "prometheus-postgres-exporter",
                 "prometheus-redis-exporter", "cargo", "runuser"):
        if not shutil.which(tool):
            raise SystemExit(f"e2e ev-bunker: {tool} is not installed")
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        raise SystemExit("e2e ev-bunker: PostgreSQL is not installed (Debian package postgresql)")
    stack = Stack()
    log(f"starting the example in {stack.dir} (time x{SCALE})")
    ok = False
    try:
        stack.start()
        run = Run(stack)
        scenario(run)
        ok = True
    except Fail as e:
        failures.append(str(e))
    except Exception:  # noqa: BLE001 - reported with the logs
        failures.append(traceback.format_exc())
    finally:
        if not ok or failures:
            for f in failures:
                print(f"e2e ev-bunker: FAILED: {f}", file=sys.stderr)
            stack.tail_logs()
        stack.stop()
        if os.environ.get("KEEP_E2E"):
            print(f"e2e ev-bunker: kept {stack.dir}")
        else:
            shutil.rmtree(stack.dir, ignore_errors=True)
    if failures:
        sys.exit(1)
    log("passed")


class Task:
    """A thread running one part of the test; `cleared` is set once its
    fault is cleared, `done` at its end (also when it failed)."""

    def __init__(self, name, fn):
        self.name = name
        self.cleared, self.done = threading.Event(), threading.Event()

        def body():
            try:
                fn(self)
            except Fail as e:
                failures.append(f"{name}: {e}")
            except Exception:  # noqa: BLE001 - reported as a failure
                failures.append(f"{name}: {traceback.format_exc()}")
            finally:
                self.cleared.set()
                self.done.set()
        threading.Thread(target=body, daemon=True).start()


def after(what, events, timeout=900):
    wait(what, lambda: all(e.is_set() for e in events), timeout)


def warm_up(run):
    """Every target up, the 5m (scaled) windows filled, and no alert."""
    def targets_up():
        ts = http("GET", run.stack.vigil + "/api/v1/targets")["data"]["activeTargets"]
        return len(ts) == 5 and all(t["health"] == "up" for t in ts)
    wait("every scrape target up", targets_up, 90)
    time.sleep(seconds("5m") / SCALE + 5)

    def quiet():
        polls = run.obs.since(time.time() - 6)
        return len(polls) >= 8 and not any(alerts for _, alerts in polls)
    wait("six seconds without any alert after the start", quiet, 120)
    log("warm: every target up, no alert")


def scenario(run):
    st = run.stack
    warm_up(run)
    t_start = time.time()

    def life(name, inject, clear, **kw):
        return Task(name, lambda t: run.lifecycle(name, inject, clear, task=t, **kw))

    # A: the app's warnings, the node's, and bookings stopping (info).
    err = life("HighErrorRate", lambda: st.control(error_rate=0.075), lambda: st.control(error_rate=0))
    lat = life("HighLatency", lambda: st.control(latency_ms=700), lambda: st.control(latency_ms=0))
    mem = life("HighMemoryUsage", lambda: st.node.set(mem=0.95), lambda: st.node.set(mem=0.4))
    cpu = life("HighCPUUsage", lambda: st.node.set(busy=0.95), lambda: st.node.set(busy=0.2))
    nob = life("NoBookings", lambda: st.control(pause_bookings=True), lambda: st.control(pause_bookings=False),
               hold=lambda t0, fired: run.info_recorded("NoBookings"))

    # B, once the app's error rate and latency are back: they add failed
    # requests and fast ones, which would move those two.
    after("the app's error rate and latency faults cleared", [err.cleared, lat.cleared])
    # 10 and 20 per (scaled) minute are the thresholds: three times that.
    auth = life("AuthenticationFailureRate", lambda: st.control(auth_failures_per_min=30 * SCALE),
                lambda: st.control(auth_failures_per_min=0))
    unauth = life("UnauthorizedAccessBurst", lambda: st.control(unauthorized_per_min=60 * SCALE),
                  lambda: st.control(unauthorized_per_min=0))
    reg = life("UserRegistrationFailures", lambda: st.control(fail_registrations=0.3),
               lambda: st.control(fail_registrations=0))
    # A fifth of the payments 3 s slower: their p95 is slow, the site's not.
    delay = life("PaymentGatewayDelays", lambda: st.control(slow_payments_ms=3000, slow_payments_share=0.2),
                 lambda: st.control(slow_payments_ms=0, slow_payments_share=1))

    # C, once the app's warnings have resolved and said so: the app's
    # criticals, which inhibit them; one acknowledged, one left to escalate.
    after("HighErrorRate and HighLatency done", [err.done, lat.done])
    health = life("HealthCheckFailing", lambda: st.control(health_fail=True), lambda: st.control(health_fail=False),
                  hold=lambda t0, fired: run.escalation_unacked("HealthCheckFailing", t0))
    crit_err = life("HighErrorRateCritical", lambda: st.control(error_rate=0.3), lambda: st.control(error_rate=0),
                    hold=lambda t0, fired: run.inhibited("HighErrorRate", "HighErrorRateCritical", t0),
                    partners=("HighErrorRate",), inhibits=("HighErrorRate",))

    def lat_hold(t0, fired):
        run.inhibited("HighLatency", "HighLatencyCritical", t0)
        run.escalation_acked("HighLatencyCritical", t0)
    crit_lat = life("HighLatencyCritical", lambda: st.control(latency_ms=1500), lambda: st.control(latency_ms=0),
                    hold=lat_hold, partners=("HighLatency",), inhibits=("HighLatency",))

    # D, once bookings run again and payment delays are over (a payment
    # failure, critical, would inhibit the delay warning of `payments`).
    after("NoBookings and PaymentGatewayDelays done", [nob.done, delay.done])
    pay = life("PaymentProcessingFailure", lambda: st.control(fail_payments=0.1), lambda: st.control(fail_payments=0))
    book = life("BookingCreationFailures", lambda: st.control(fail_bookings=0.1), lambda: st.control(fail_bookings=0))

    # E: PostgreSQL and Redis down, once nothing else their outage moves
    # is under test.
    after("phases B, C (but the escalation) and D done",
          [auth.done, unauth.done, reg.done, crit_err.done, crit_lat.done, pay.done, book.done])
    outage = Task("outage", run.outage)
    after("the outage done", [outage.done])

    dashboards(run)
    after("HealthCheckFailing's escalation done", [health.done, mem.done, cpu.done])
    run.digest()
    run.final_checks(t_start)


def dashboards(run):
    """The EV Bunker dashboards in a real browser against this vigil, which
    has the example's data now. The test file is the web UI's."""
    test = os.path.join(ROOT, "ui", "e2e", "ev_bunker_dashboards.test.mjs")
    if not os.path.exists(test):
        # HOOK (issue #9): ui/e2e/ev_bunker_dashboards.test.mjs checks the
        # dashboards against the vigil at VIGIL_UI_EV_BUNKER; it runs here
        # once it exists.
        log("dashboards: SKIPPED, ui/e2e/ev_bunker_dashboards.test.mjs does not exist yet")
        return
    env = dict(os.environ, VIGIL_UI_EV_BUNKER=run.stack.vigil)
    env.setdefault("VIGIL_UI_TEST_OUT", os.path.join(ROOT, "ui", "test-output"))
    log("dashboards: node --test ui/e2e/ev_bunker_dashboards.test.mjs")
    r = subprocess.run(["node", "--test", "--test-timeout=300000", test], env=env, cwd=ROOT, timeout=600)
    check(r.returncode == 0, f"the EV Bunker dashboards browser test failed ({r.returncode})")
    log("dashboards: passed")


if __name__ == "__main__":
    main()
