"""NATS connections: the one module that knows nats-py's exceptions.

:func:`connect` opens a connection the way Switchboard's own processes want it
(reconnect forever, metrics and logs on connection events); the library's
classes accept any ``nats.aio.client.Client`` you configured yourself.
:func:`translate_nats_error` maps nats-py errors to Switchboard's tree, most
specific first, and is the only place that does.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import nats
import nats.errors
import structlog
from nats.aio.client import Client as NATS

from .errors import (
    ConnectionClosedError,
    NoRespondersError,
    OverloadedError,
    PayloadTooLargeError,
    RequestError,
    RequestTimeoutError,
    ShuttingDownError,
    SwitchboardError,
)
from .metrics import NATS_CONNECTED, NATS_DISCONNECTS, NATS_ERRORS, NATS_RECONNECTS
from .urls import without_credentials

__all__ = [
    "ConnectionEvents",
    "connect",
    "is_permission_error",
    "translate_nats_error",
]

log = structlog.get_logger("switchboard.nats")

Listener = Callable[[], Awaitable[None]]
ErrorListener = Callable[[Exception], Awaitable[None]]


class ConnectionEvents:
    """Fans nats-py's single callbacks out to several listeners (consumer, health)."""

    def __init__(self) -> None:
        self.on_reconnect: list[Listener] = []
        self.on_disconnect: list[Listener] = []
        self.on_error: list[ErrorListener] = []


def is_permission_error(exc: BaseException) -> bool:
    """Whether an async error from the server is a permissions violation."""
    return isinstance(exc, nats.errors.Error) and "permissions violation" in str(exc).lower()


def translate_nats_error(
    exc: BaseException, *, subject: str | None = None, correlation_id: str | None = None
) -> SwitchboardError:
    """The Switchboard error for a nats-py exception raised by publish/request/subscribe."""
    where = f" {correlation_id}" if correlation_id else ""
    to = f" to {subject}" if subject else ""
    if isinstance(exc, SwitchboardError):
        return exc
    if isinstance(exc, nats.errors.NoRespondersError):
        return NoRespondersError(
            f"No responders for request{where}: nothing subscribes to {subject}.",
            subject=subject,
            correlation_id=correlation_id,
        )
    if isinstance(exc, nats.errors.TimeoutError | asyncio.TimeoutError):
        return RequestTimeoutError(
            f"Request{where}{to} timed out.", subject=subject, correlation_id=correlation_id
        )
    if isinstance(exc, nats.errors.MaxPayloadError):
        return PayloadTooLargeError(
            f"The message{to} is larger than the NATS server's max_payload.", size=-1, limit=-1
        )
    if isinstance(exc, nats.errors.OutboundBufferLimitError):
        return OverloadedError(
            f"Cannot send{where}{to}: NATS is disconnected and the outbound buffer is full.",
            subject=subject,
            correlation_id=correlation_id,
        )
    if isinstance(exc, nats.errors.ConnectionDrainingError):
        return ShuttingDownError(
            f"Cannot send{where}{to}: the NATS connection is draining (shutting down).",
            subject=subject,
            correlation_id=correlation_id,
        )
    if isinstance(exc, nats.errors.ConnectionClosedError):
        return ConnectionClosedError(
            f"Cannot send{where}{to}: the NATS connection is closed.",
            subject=subject,
            correlation_id=correlation_id,
        )
    if isinstance(exc, nats.errors.BadSubjectError):
        return RequestError(
            f"Cannot send{where}: {subject!r} is not a valid NATS subject.",
            subject=subject,
            correlation_id=correlation_id,
        )
    return RequestError(
        f"NATS failed for request{where}{to}: {type(exc).__name__}.",
        subject=subject,
        correlation_id=correlation_id,
    )


async def connect(
    servers: str | list[str],
    *,
    name: str,
    events: ConnectionEvents | None = None,
    connect_timeout: float = 5.0,
    first_attempts: int = 5,
    budget: float | None = None,
    **options: Any,
) -> NATS:
    """Connect to NATS for a Switchboard process.

    Reconnects forever (a service must outlive a NATS restart), reports the
    connection state in metrics and logs, and fans connection events out to
    ``events``. ``options`` go to ``nats.connect`` unchanged (credentials,
    TLS, ``inbox_prefix`` ...). The first connection gets ``first_attempts`` tries and at
    most ``budget`` seconds (default: what the attempts can take, about 28 s).

    Raises:
        ConnectionClosedError: the first connection could not be made.
    """
    events = events or ConnectionEvents()

    async def disconnected() -> None:
        NATS_CONNECTED.set(0)
        if nc.is_closed or nc.is_draining:  # our own shutdown, not a failure
            return
        NATS_DISCONNECTS.inc()
        log.warning("nats disconnected", name=name)
        for listener in events.on_disconnect:
            await listener()

    async def reconnected() -> None:
        NATS_CONNECTED.set(1)
        NATS_RECONNECTS.inc()
        log.info("nats reconnected", name=name, server=_where(nc))
        for listener in events.on_reconnect:
            await listener()

    async def error(exc: Exception) -> None:
        kind = "permissions" if is_permission_error(exc) else type(exc).__name__
        NATS_ERRORS.labels(kind).inc()
        log.warning("nats async error", name=name, error=str(exc), kind=kind)
        for listener in events.on_error:
            await listener(exc)

    async def closed() -> None:
        NATS_CONNECTED.set(0)
        log.info("nats connection closed", name=name)

    # Reconnect forever once connected, but give the FIRST connection a bounded number of
    # attempts and a time budget: a wrong password, an untrusted certificate or an
    # unreachable server at start is a configuration error to report (and let the
    # supervisor / Kubernetes restart us), never a silent hang. (nats-py itself hangs after
    # a failed TLS verification on the first connect.)
    reconnect_attempts = options.pop("max_reconnect_attempts", -1)
    options.setdefault("reconnect_time_wait", 0.5)
    if budget is None:
        budget = (connect_timeout + options["reconnect_time_wait"]) * first_attempts + 1.0
    connect_timeout = min(connect_timeout, budget)
    fatal: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    async def first_error(exc: Exception) -> None:
        if (
            not nc.is_connected
            and not fatal.done()
            and isinstance(exc, ssl.SSLError | nats.errors.AuthorizationError)
        ):
            fatal.set_result(exc)
        await error(exc)

    nc = _TlsKeepingClient()
    connecting: asyncio.Future[Any] = asyncio.ensure_future(
        nc.connect(
            servers,
            name=name,
            connect_timeout=connect_timeout,  # type: ignore[arg-type]  # it takes floats
            disconnected_cb=disconnected,
            reconnected_cb=reconnected,
            error_cb=first_error,
            closed_cb=closed,
            allow_reconnect=True,
            max_reconnect_attempts=first_attempts,
            **options,
        )
    )
    try:
        done, _ = await asyncio.wait(
            {connecting, fatal}, timeout=budget, return_when=asyncio.FIRST_COMPLETED
        )
        if connecting in done:
            connecting.result()
        else:
            problem: BaseException = (
                fatal.result() if fatal.done() else TimeoutError(f"no connection in {budget:g}s")
            )
            raise problem
    except (TimeoutError, nats.errors.Error, OSError) as exc:
        connecting.cancel()
        with contextlib.suppress(BaseException):
            await connecting
        with contextlib.suppress(Exception):
            await nc.close()
        if isinstance(exc, nats.errors.AuthorizationError):
            reason = "the credentials were refused"
        elif isinstance(exc, ssl.SSLError):
            reason = f"TLS failed ({exc.reason or exc})"
        else:
            reason = f"{type(exc).__name__}: {exc}"
        raise ConnectionClosedError(
            f"Could not connect to NATS at {without_credentials(servers)}: {reason}."
        ) from exc
    finally:
        if not fatal.done():
            fatal.cancel()
    nc.options["max_reconnect_attempts"] = reconnect_attempts
    NATS_CONNECTED.set(1)
    log.info("nats connected", name=name, server=_where(nc))
    return nc


class _TlsKeepingClient(NATS):
    """nats-py that never sends CONNECT (credentials) in clear when TLS was asked for.

    nats-py 2.16 upgrades to TLS only when the server's INFO says ``tls_required``: with a
    ``tls://`` URL or a TLS context, a server (or someone in the middle) that does not ask
    for TLS got the credentials in plaintext. CONNECT is built right after the upgrade
    would have happened, on every connect and reconnect: that is where this checks.
    (nats.py fixed it upstream after 2.16: nats-io/nats.py#912.)
    """

    def _connect_command(self) -> bytes:
        wants_tls = self.options.get("tls") is not None or (
            self._current_server is not None and self._current_server.uri.scheme == "tls"
        )
        if wants_tls and not _is_tls(self):
            raise _PlaintextRefused()
        return super()._connect_command()


class _PlaintextRefused(ssl.SSLError):
    reason = "the server did not offer TLS; credentials are not sent in plaintext"

    def __str__(self) -> str:
        return self.reason


def _is_tls(nc: NATS) -> bool:
    writer = getattr(nc._transport, "_io_writer", None)
    return writer is not None and writer.get_extra_info("ssl_object") is not None


def _where(nc: NATS) -> str:
    url = nc.connected_url  # host and port only: a URL may carry user:password
    return f"{url.hostname}:{url.port}" if url is not None else "?"
