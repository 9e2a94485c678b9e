"""Helpers shared by the end-to-end scripts."""
import json
import time


def wait(prefix, what, fn, timeout=60):
    """Polls fn until it returns something truthy; exits with a message
    naming `what` after `timeout` seconds."""
    deadline = time.time() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.time() > deadline:
            raise SystemExit(f"{prefix}: timed out waiting for {what}")
        time.sleep(0.5)


def read_jsonl(path):
    """The JSON documents of a file, one per line; none if it is missing."""
    try:
        with open(path) as f:
            return [json.loads(l) for l in f if l.strip()]
    except FileNotFoundError:
        return []
