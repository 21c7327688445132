"""A small HTTP/1.1 load generator process: the fallback when ``wrk`` is not installed.

``switchboard bench e2e`` prefers Debian's ``wrk`` (C, one thread is plenty);
without it, this runs as a separate process so the bench's own event loop
is not the load generator::

    python -m switchboard.orchestrator.bench.httpload URL REQUESTS CONNECTIONS KEYS_FILE BODY_FILE

``CONNECTIONS`` keep-alive connections POST ``BODY_FILE`` to ``URL`` until
``REQUESTS`` answers came back; request *i* carries ``Authorization: Bearer``
with key ``i mod len(keys)`` (one key per line of ``KEYS_FILE``). Prints one
JSON line: ``requests``, ``duration_s``, ``errors`` (non-2xx answers and
broken connections), ``error_detail`` and ``quantiles_ms`` (the 0, 0.1, ...,
100th percentiles of the latency: 1001 values), the same shape the bench's
``wrk`` script prints.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
import urllib.parse
from pathlib import Path

__all__ = ["main", "quantiles"]

_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)
_CLOSE = re.compile(rb"\r\nconnection:\s*close", re.IGNORECASE)


def _content_length(head: bytes) -> int:
    """The body length the response head announces.

    Raises:
        ValueError: no Content-Length (this client reads no chunked bodies).
    """
    length = _LENGTH.search(head)
    if length is None:
        raise ValueError("no content-length in the response")
    return int(length.group(1))


def quantiles(values: list[float]) -> list[float]:
    """The 0th, 0.1th, ..., 100th percentiles (nearest rank) of ``values``: 1001 numbers."""
    if not values:
        return [0.0] * 1001
    ordered = sorted(values)
    n = len(ordered)
    return [ordered[min(n - 1, max(0, round(i / 1000 * n) - 1))] for i in range(1001)]


async def main(url: str, requests: int, connections: int, keys: list[str], body: bytes) -> None:
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or 80
    path = parts.path or "/"
    prebuilt = [
        (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body
        for key in keys or [""]
    ]
    latencies: list[float] = []
    errors: dict[str, int] = {}
    next_index = 0
    clock = time.perf_counter

    def failed(kind: str) -> None:
        errors[kind] = errors.get(kind, 0) + 1

    async def connection() -> None:
        nonlocal next_index
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        while next_index < requests:
            i = next_index
            next_index += 1
            started = clock()
            try:
                if writer is None or reader is None:
                    reader, writer = await asyncio.open_connection(host, port)
                writer.write(prebuilt[i % len(prebuilt)])
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head[9:12])
                await reader.readexactly(_content_length(head))
                if _CLOSE.search(head):
                    writer.close()
                    reader = writer = None
            except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
                failed(type(exc).__name__)
                if writer is not None:
                    writer.close()
                reader = writer = None
                latencies.append(clock() - started)
                continue
            latencies.append(clock() - started)
            if not 200 <= status < 300:
                failed(f"status_{status}")
        if writer is not None:
            writer.close()

    started = clock()
    await asyncio.gather(*(connection() for _ in range(max(1, min(connections, requests)))))
    duration = clock() - started
    print(
        json.dumps(
            {
                "requests": len(latencies),
                "duration_s": duration,
                "errors": sum(errors.values()),
                "error_detail": errors,
                "quantiles_ms": [round(q * 1000, 4) for q in quantiles(latencies)],
            }
        ),
        flush=True,
    )


def _run(argv: list[str]) -> None:
    if len(argv) != 5:
        raise SystemExit(__doc__)
    url, requests, connections, keys_file, body_file = argv
    keys = [k.strip() for k in Path(keys_file).read_text().splitlines() if k.strip()]
    body = Path(body_file).read_bytes()
    try:
        import uvloop

        uvloop.run(main(url, int(requests), int(connections), keys, body))
    except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
        asyncio.run(main(url, int(requests), int(connections), keys, body))


if __name__ == "__main__":
    _run(sys.argv[1:])
