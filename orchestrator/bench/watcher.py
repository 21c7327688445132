"""The watcher process of :mod:`.watch`: RSS and ``/healthz`` times of parts, sampled.

    python -m switchboard.orchestrator.bench.watcher OUT_JSON INTERVAL_S NAME=PID[=URL] ...

Every ``INTERVAL_S``: each part's ``VmRSS``, and for a part with a URL one
timed GET on a kept-alive HTTP/1.1 connection. On SIGTERM/SIGINT it writes
``{name: [[t, rss_mb, probe_ms or null], ...]}`` (``t``: ``time.monotonic()``)
to ``OUT_JSON`` and exits. Plain blocking code: it is a process of its own.
"""

from __future__ import annotations

import http.client
import json
import re
import signal
import sys
import threading
import time
import urllib.parse
from pathlib import Path
from types import FrameType

__all__ = ["main"]

_RSS = re.compile(r"^VmRSS:\s+(\d+)\s+kB", re.MULTILINE)

#: t, rss_mb, probe_ms (None: no probe, or it failed)
Sample = tuple[float, float, float | None]


def _rss_mb(pid: int) -> float:
    try:
        match = _RSS.search(Path(f"/proc/{pid}/status").read_text())
    except OSError:
        return 0.0
    return int(match.group(1)) / 1024 if match else 0.0


class _Probe:
    """GET one URL on a kept-alive connection; reconnect after a failure."""

    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.path = parts.path or "/"
        self.conn: http.client.HTTPConnection | None = None

    def ms(self) -> float | None:
        started = time.perf_counter()
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
            self.conn.request("GET", self.path)
            self.conn.getresponse().read()
        except (OSError, http.client.HTTPException):
            if self.conn is not None:
                self.conn.close()
            self.conn = None
            return None
        return (time.perf_counter() - started) * 1000


def main(out: Path, interval: float, specs: list[str]) -> None:
    parts: dict[str, tuple[int, _Probe | None]] = {}
    for spec in specs:
        name, pid_text, *url = spec.split("=", 2)
        parts[name] = (int(pid_text), _Probe(url[0]) if url else None)
    samples: dict[str, list[Sample]] = {name: [] for name in parts}
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print("ready", flush=True)
    while not stop.is_set():
        for name, (pid, probe) in parts.items():
            ms = probe.ms() if probe else None
            samples[name].append((time.monotonic(), _rss_mb(pid), ms))
        stop.wait(interval)
    out.write_text(json.dumps(samples))


if __name__ == "__main__":
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3:])
