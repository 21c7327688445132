"""``/metrics``, ``/healthz``, ``/readyz`` (and small debug views) for processes with no web app.

A tiny ASGI app, served by :class:`~.httpserver.HttpServer` inside the process's own
event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import msgspec
from prometheus_client import make_asgi_app

from .httpserver import HttpServer

__all__ = ["HealthServer", "ReadinessCheck"]

#: name -> check; ready when every check returns True.
ReadinessCheck = Mapping[str, Callable[[], bool]]

_json = msgspec.json.Encoder()

Scope = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]


class HealthServer:
    """Serves the health, readiness and metrics endpoints of one process.

    ``checks`` decide readiness (e.g. ``{"nats": lambda: nc.is_connected}``);
    ``debug`` maps extra GET paths to functions returning JSON-encodable data
    (e.g. ``{"/debug/pending": requester.pending}``).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        checks: ReadinessCheck | None = None,
        debug: Mapping[str, Callable[[], Any]] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.checks = dict(checks or {})
        self.debug = dict(debug or {})
        self._metrics = make_asgi_app()
        self._http: HttpServer | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def readiness(self) -> dict[str, bool]:
        results = {}
        for name, check in self.checks.items():
            try:
                results[name] = bool(check())
            except Exception:
                results[name] = False
        return results

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/metrics":
            await self._metrics(scope, receive, send)
            return
        if path == "/healthz":
            await _respond(send, 200, {"status": "ok"})
        elif path == "/readyz":
            checks = self.readiness()
            ready = all(checks.values())
            await _respond(
                send,
                200 if ready else 503,
                {"status": "ready" if ready else "not ready", "checks": checks},
            )
        elif path in self.debug:
            await _respond(send, 200, self.debug[path]())
        else:
            await _respond(send, 404, {"status": "not found", "paths": self.paths()})

    def paths(self) -> list[str]:
        return ["/healthz", "/readyz", "/metrics", *sorted(self.debug)]

    async def start(self) -> None:
        """Bind and serve (port 0 picks a free port, read back into ``port``).

        Raises:
            ConfigurationError: the address is taken or not ours to bind.
        """
        self._http = HttpServer(
            self,
            host=self.host,
            port=self.port,
            grace=1.0,
            address_hint="; choose another with --metrics-host/--metrics-port (0: any free port)",
        )
        await self._http.start()
        self.port = self._http.port

    async def stop(self) -> None:
        http, self._http = self._http, None
        if http is not None:
            await http.stop(grace=1.0)


async def _respond(send: Send, status: int, body: Any) -> None:
    data = _json.encode(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})
