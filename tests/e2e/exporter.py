#!/usr/bin/env python3
"""A small exporter for the end-to-end test: counters that grow by known
steps, gauges, a classic histogram and labels that need escaping. Serves the
Prometheus text format 0.0.4 on 127.0.0.1:PORT/metrics."""
import http.server
import math
import sys
import threading
import time

START = time.time()
LOCK = threading.Lock()
STATE = {"scrapes": 0, "flag": 0.0}


def body():
    with LOCK:
        STATE["scrapes"] += 1
        n = STATE["scrapes"]
    t = time.time() - START
    lines = [
        "# HELP e2e_requests_total Requests by route and code.",
        "# TYPE e2e_requests_total counter",
    ]
    for route, rate in (("/api/login", 3), ("/api/book", 7), ("/", 1)):
        for code, share in (("200", 0.9), ("500", 0.1)):
            lines.append(
                'e2e_requests_total{route="%s",code="%s"} %d' % (route, code, int(n * rate * share * 10))
            )
    lines += [
        "# HELP e2e_temperature_celsius A gauge that moves.",
        "# TYPE e2e_temperature_celsius gauge",
        'e2e_temperature_celsius{room="a"} %.6f' % (20 + 5 * math.sin(t / 7)),
        'e2e_temperature_celsius{room="b \\"quoted\\" \\\\ path"} %.3f' % (18 + (n % 13) * 0.25),
        "# HELP e2e_latency_seconds Request latency.",
        "# TYPE e2e_latency_seconds histogram",
    ]
    total = 0
    for le, share in (("0.05", 0.5), ("0.1", 0.7), ("0.5", 0.9), ("1", 0.97), ("+Inf", 1.0)):
        c = int(n * 20 * share)
        lines.append('e2e_latency_seconds_bucket{le="%s"} %d' % (le, c))
        total = c
    lines += [
        "e2e_latency_seconds_sum %.4f" % (n * 20 * 0.137),
        "e2e_latency_seconds_count %d" % total,
        "# TYPE e2e_big_value gauge",
        "e2e_big_value 1.0e+300",
        "e2e_tiny_value 5e-310",
        "e2e_negative_zero -0.0",
        "# HELP e2e_flag A gauge the test sets through /set?flag=V.",
        "# TYPE e2e_flag gauge",
        "e2e_flag %g" % STATE["flag"],
    ]
    return ("\n".join(lines) + "\n").encode()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        path, _, query = self.path.partition("?")
        if path == "/set":
            for kv in query.split("&"):
                k, _, v = kv.partition("=")
                if k == "flag":
                    with LOCK:
                        STATE["flag"] = float(v)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if path != "/metrics":
            self.send_error(404)
            return
        b = body()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1])
    http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
