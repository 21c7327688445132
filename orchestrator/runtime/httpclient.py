"""A tiny HTTP/1.0 client for a part's own pages (``/readyz``, ``/metrics``) and the BFF's API.

HTTP/1.0 so the server closes the connection after the answer and never
chunks the body: the whole exchange is one write and one read to EOF on
asyncio streams, without a client library in the runtime's dependencies.
Used to wait for a child process to become ready and by the bench.
"""

from __future__ import annotations

import asyncio
import contextlib
import urllib.parse
from collections.abc import Mapping

__all__ = ["http_get", "http_request"]


async def http_request(
    url: str,
    *,
    method: str = "GET",
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    timeout: float = 5.0,
) -> tuple[int, bytes]:
    """One HTTP/1.0 request (so no chunked body); returns status and body.

    Raises:
        OSError: cannot connect; TimeoutError: no answer in ``timeout`` s;
        ValueError: the answer is not HTTP.
    """
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or 80
    path = parts.path or "/"
    lines = [f"{method} {path} HTTP/1.0", f"Host: {host}:{port}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body or method != "GET":
        lines.append(f"Content-Length: {len(body)}")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(request)
            await writer.drain()
            data = await reader.read()
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    head, _, payload = data.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    status = int(status_line[1]) if len(status_line) > 1 else 0
    return status, payload


async def http_get(url: str, *, timeout: float = 5.0) -> tuple[int, bytes]:
    """GET ``url``; returns status and body.

    Raises:
        OSError: cannot connect; TimeoutError: no answer in ``timeout`` s.
    """
    return await http_request(url, timeout=timeout)
