"""``/metrics``, ``/healthz``, ``/readyz`` (and small debug views) for processes with no web app.

A tiny ASGI app served by uvicorn inside the process's own event loop. It
never touches signal handlers: the process runtime owns those.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import msgspec
import uvicorn
from prometheus_client import make_asgi_app

__all__ = ["HealthServer", "QuietServer", "ReadinessCheck", "bind_socket"]

#: name -> check; ready when every check returns True.
ReadinessCheck = Mapping[str, Callable[[], bool]]

_json = msgspec.json.Encoder()

Scope = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]


class QuietServer(uvicorn.Server):
    """A uvicorn server that leaves process signals to its owner."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


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
        self._server: QuietServer | None = None
        self._task: asyncio.Task[None] | None = None

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
            OSError: the address is taken or not ours to bind.
        """
        sock = bind_socket(self.host, self.port)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self,
            host=self.host,
            port=self.port,
            lifespan="off",
            log_level="warning",
            access_log=False,
            interface="asgi3",
            log_config=None,
        )
        self._server = QuietServer(config)
        self._task = asyncio.get_running_loop().create_task(
            self._server.serve(sockets=[sock]), name="switchboard-health-server"
        )
        while not self._server.started and not self._task.done():  # noqa: ASYNC110 (a flag)
            await asyncio.sleep(0.005)
        if self._task.done():  # failed to start: the socket is still ours to close
            sock.close()
            self._task.result()

    async def stop(self) -> None:
        server, task = self._server, self._task
        self._server = self._task = None
        if server is None or task is None:
            return
        server.should_exit = True
        await task


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket (bound here so errors are ours, not a uvicorn ``sys.exit``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


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
