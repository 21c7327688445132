"""NATS connections: the one module that knows nats-py's exceptions.

:func:`connect` opens a connection the way Switchboard's own processes want it
(reconnect forever, metrics and logs on connection events); the library's
classes accept any ``nats.aio.client.Client`` you configured yourself.
:class:`map_nats_errors` maps nats-py errors to Switchboard's tree, most
specific first, from one table; it is the only place that does (``wire``
raises the same errors, built by the same functions, for the checks it makes
itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable
from types import TracebackType
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
from .tasks import stop_task
from .urls import without_credentials

__all__ = [
    "ConnectionEvents",
    "connect",
    "is_permission_error",
    "map_nats_errors",
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


# -- nats-py's errors, translated ------------------------------------------------------------
#
# One sentence per way nats-py refuses or fails a message. The map below uses them for
# nats-py's exceptions; ``wire.publish``, which makes the same checks itself on the hot path,
# raises them directly.


def _naming(subject: str | None, correlation_id: str | None) -> tuple[str, str]:
    """' <correlation id>' and ' to <subject>', for the sentences below (empty if unknown)."""
    return (f" {correlation_id}" if correlation_id else "", f" to {subject}" if subject else "")


def no_responders_error(subject: str | None, correlation_id: str | None) -> NoRespondersError:
    where, _ = _naming(subject, correlation_id)
    return NoRespondersError(
        f"No responders for request{where}: nothing subscribes to {subject}.",
        subject=subject,
        correlation_id=correlation_id,
    )


def timeout_error(subject: str | None, correlation_id: str | None) -> RequestTimeoutError:
    where, to = _naming(subject, correlation_id)
    return RequestTimeoutError(
        f"Request{where}{to} timed out.", subject=subject, correlation_id=correlation_id
    )


def too_large_error(
    subject: str | None, correlation_id: str | None, *, size: int = -1, limit: int = -1
) -> PayloadTooLargeError:
    _, to = _naming(subject, correlation_id)
    return PayloadTooLargeError(
        f"The message{to} is larger than the NATS server's max_payload.", size=size, limit=limit
    )


def buffer_full_error(subject: str | None, correlation_id: str | None) -> OverloadedError:
    where, to = _naming(subject, correlation_id)
    return OverloadedError(
        f"Cannot send{where}{to}: NATS is disconnected and the outbound buffer is full.",
        subject=subject,
        correlation_id=correlation_id,
    )


def draining_error(subject: str | None, correlation_id: str | None) -> ShuttingDownError:
    where, to = _naming(subject, correlation_id)
    return ShuttingDownError(
        f"Cannot send{where}{to}: the NATS connection is draining (shutting down).",
        subject=subject,
        correlation_id=correlation_id,
    )


def closed_error(subject: str | None, correlation_id: str | None) -> ConnectionClosedError:
    where, to = _naming(subject, correlation_id)
    return ConnectionClosedError(
        f"Cannot send{where}{to}: the NATS connection is closed.",
        subject=subject,
        correlation_id=correlation_id,
    )


def bad_subject_error(subject: str | None, correlation_id: str | None) -> RequestError:
    where, _ = _naming(subject, correlation_id)
    return RequestError(
        f"Cannot send{where}: {subject!r} is not a valid NATS subject.",
        subject=subject,
        correlation_id=correlation_id,
    )


def bad_header_error(
    subject: str | None, correlation_id: str | None, *, name: str | None = None
) -> RequestError:
    where, to = _naming(subject, correlation_id)
    which = f"{name!r} is not" if name is not None else "a header name is not"
    return RequestError(
        f"Cannot send{where}{to}: {which} a valid NATS header name (an RFC 7230 token).",
        subject=subject,
        correlation_id=correlation_id,
    )


def _failed(subject: str | None, correlation_id: str | None, cause: BaseException) -> RequestError:
    where, to = _naming(subject, correlation_id)
    return RequestError(
        f"NATS failed for request{where}{to}: {type(cause).__name__}.",
        subject=subject,
        correlation_id=correlation_id,
    )


#: nats-py's exceptions and Switchboard's, most specific first (the first match wins).
#: Each entry builds our error from the subject and correlation id.
_NATS_ERRORS: tuple[tuple[type[Exception], Callable[..., SwitchboardError]], ...] = (
    (nats.errors.NoRespondersError, no_responders_error),
    (nats.errors.TimeoutError, timeout_error),
    (nats.errors.MaxPayloadError, too_large_error),
    (nats.errors.OutboundBufferLimitError, buffer_full_error),
    (nats.errors.ConnectionDrainingError, draining_error),
    (nats.errors.ConnectionClosedError, closed_error),
    (nats.errors.BadSubjectError, bad_subject_error),
    (nats.errors.BadHeaderError, bad_header_error),
)
#: What else :class:`map_nats_errors` translates (to "NATS failed"): the rest of nats-py's
#: errors, and the socket errors it lets through when it writes inline.
_NATS_FAILURES = (nats.errors.Error, ConnectionError)


class map_nats_errors:  # lower case: used like contextlib.suppress, and named like it
    """Translate the nats-py errors raised in the block into Switchboard's, at one boundary.

    ::

        with map_nats_errors(subject=subject, correlation_id=cid):
            await nc.subscribe(subject, cb=handler)

    Use it around every call into nats-py that can fail (publish, subscribe, flush, request).
    A nats-py error becomes the matching Switchboard error, most specific first, raised
    ``from`` the original; a nats-py error without a match (or a socket error nats-py let
    through) becomes :class:`~switchboard.orchestrator.core.errors.RequestError`. Anything
    else -- a ``TypeError`` from a bug, a ``CancelledError``, one of our own errors -- passes
    through untouched (httpx's ``map_httpcore_exceptions`` does the same).

    Raises:
        RequestError: or the subclass for the nats-py error raised in the block.
    """

    __slots__ = ("correlation_id", "subject")

    def __init__(self, *, subject: str | None = None, correlation_id: str | None = None) -> None:
        self.subject = subject
        self.correlation_id = correlation_id

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is None or not isinstance(exc, _NATS_FAILURES):
            return
        for foreign, ours in _NATS_ERRORS:
            if isinstance(exc, foreign):
                raise ours(self.subject, self.correlation_id) from exc
        raise _failed(self.subject, self.correlation_id, exc) from exc


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

    connected_once = False

    async def error(exc: Exception) -> None:
        kind = "permissions" if is_permission_error(exc) else type(exc).__name__
        NATS_ERRORS.labels(kind).inc()
        # Before the first connection, each failed attempt is reported once, by the
        # ConnectionClosedError below: a warning per attempt only repeated it six times.
        say = log.warning if connected_once else log.debug
        say("nats async error", name=name, error=str(exc), kind=kind)
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
    except BaseException:  # cancelled while connecting
        fatal.cancel()
        await _abandon(nc, connecting)
        raise
    if connecting in done:
        problem = connecting.exception()
    else:
        problem = fatal.result() if fatal.done() else TimeoutError(f"no connection in {budget:g}s")
    fatal.cancel()  # if nothing fatal happened
    if problem is not None:
        await _abandon(nc, connecting)
        if not isinstance(problem, TimeoutError | nats.errors.Error | OSError):
            raise problem  # a bug: as it came, with nothing left running
        raise ConnectionClosedError(
            f"Could not connect to NATS at {without_credentials(servers)}: {_reason(problem)}."
        ) from problem
    nc.options["max_reconnect_attempts"] = reconnect_attempts
    connected_once = True
    NATS_CONNECTED.set(1)
    log.info("nats connected", name=name, server=_where(nc))
    return nc


def _reason(exc: BaseException) -> str:
    """Why a first connection failed, in words."""
    if isinstance(exc, nats.errors.AuthorizationError):
        return "the credentials were refused"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed ({exc.reason or exc})"
    return f"{type(exc).__name__}: {exc}"


async def _abandon(nc: NATS, connecting: asyncio.Future[Any]) -> None:
    """Stop a first connection attempt and close its client: nothing is left running.

    Raises:
        asyncio.CancelledError: the caller was cancelled meanwhile (the client is closed).
    """
    try:
        with contextlib.suppress(Exception):  # its failure is the one being reported
            await stop_task(connecting)
    finally:
        with contextlib.suppress(Exception):
            await nc.close()


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
