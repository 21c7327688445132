"""Serving an ASGI app with uvicorn inside the process's event loop, as a runtime component.

The runtime owns the process's signals, so uvicorn must not install its own
handlers (``QuietServer``); the listening socket is bound here first, so a taken
address is an ``OSError`` for the caller instead of uvicorn's ``sys.exit``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

import uvicorn

from ..core.errors import ConfigurationError

__all__ = ["HttpServer", "QuietServer", "bind_socket"]

#: Seconds the server waits past its grace before it cancels what still runs.
STOP_MARGIN_S = 2.0


class QuietServer(uvicorn.Server):
    """A uvicorn server that leaves process signals to its owner."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


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


class HttpServer:
    """uvicorn on ``host:port`` inside the process's event loop; ``stop`` drains connections."""

    def __init__(
        self,
        app: Any,
        *,
        host: str,
        port: int,
        grace: float = 10.0,
        trusted_proxies: Sequence[str] = (),
        address_hint: str = "",
        on_stop: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self.app = app
        #: Runs beside the graceful stop with its grace (e.g. the requester's ``drain``):
        #: what cannot finish in time is answered before the server would cancel it.
        self.on_stop = on_stop
        #: Appended to a bind error, e.g. "; choose another with --http-host/--http-port".
        self.address_hint = address_hint
        #: Peers whose X-Forwarded-For/-Proto are believed; none by default, so a client
        #: cannot choose the address it is rate-limited by.
        self.trusted_proxies = list(trusted_proxies)
        self.host = host
        self.port = port
        self.grace = grace
        self._server: QuietServer | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._server is not None and self._server.started

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        """Bind and serve.

        Raises:
            ConfigurationError: the address is in use or not available.
        """
        try:
            sock = bind_socket(self.host, self.port)
        except OSError as exc:
            raise ConfigurationError(
                f"Cannot listen on {self.host}:{self.port} "
                f"({exc.strerror or exc}){self.address_hint}."
            ) from exc
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            host=self.host,
            port=self.port,
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
            interface="asgi3",
            timeout_graceful_shutdown=max(1, int(self.grace)),
            timeout_keep_alive=30,
            backlog=4096,
            proxy_headers=bool(self.trusted_proxies),
            forwarded_allow_ips=self.trusted_proxies or None,
        )
        self._server = QuietServer(config)
        self._task = asyncio.get_running_loop().create_task(
            self._server.serve(sockets=[sock]), name="switchboard-http-server"
        )
        while not self._server.started and not self._task.done():  # noqa: ASYNC110 (a flag)
            await asyncio.sleep(0.005)
        if self._task.done():
            sock.close()
            self._task.result()

    async def stop(self, grace: float = 10.0) -> None:
        server, task = self._server, self._task
        self._server = self._task = None
        if server is None or task is None:
            return
        # uvicorn cancels what still runs after its own timeout -- a bare 500 for the client
        # and a traceback in the log -- so it gets a margin past the grace, in which
        # ``on_stop`` makes everything still waiting answer (shutting_down) on its own.
        server.config.timeout_graceful_shutdown = max(1, math.ceil(grace + STOP_MARGIN_S))
        server.should_exit = True
        if self.on_stop is None:
            await task
            return
        try:
            await self.on_stop(grace)
        finally:
            await task
