"""The GlobalMessageConsumer: one wildcard inbox subscription routing every reply.

nats-py runs a subscription's callback one message at a time, so the callback
here does nothing but hand the message to the tracker (a dict lookup and a
future's ``set_result``); nothing slow ever runs inside it.

The subscription is watched: a probe message is sent to the inbox now and
then (and right after a reconnect or a permissions error); if it does not come
back, the subscription is considered dead, re-created, logged and counted.
nats-py re-subscribes by itself after a reconnect; the probe also catches what
it cannot see, such as the server dropping the subscription after a
permissions change.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import structlog
from nats.aio.client import Client as NATS
from nats.nuid import NUID

from .connection import ConnectionEvents, is_permission_error, map_nats_errors
from .correlation import CorrelationTracker
from .metrics import CONSUMER_RESUBSCRIBES
from .tasks import stop_task

if TYPE_CHECKING:
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription

__all__ = ["GlobalMessageConsumer"]

log = structlog.get_logger("switchboard.consumer")

#: Probe tokens start with this; the tracker's tokens (16 hex digits) never do.
_PROBE = "~probe"


class GlobalMessageConsumer:
    """Subscribes ``<inbox_prefix>.<nuid>.*`` once and routes replies to the tracker.

    ``inbox_prefix`` should match the NATS permissions of the process (e.g.
    ``_INBOX_bff`` so that only the BFF may subscribe to its inboxes).
    """

    def __init__(
        self,
        nc: NATS,
        tracker: CorrelationTracker,
        *,
        inbox_prefix: str = "_INBOX",
        probe_interval: float = 5.0,
        probe_timeout: float = 2.0,
        events: ConnectionEvents | None = None,
    ) -> None:
        self._nc = nc
        self._tracker = tracker
        self.prefix = f"{inbox_prefix}.{NUID().next().decode()}."
        self._prefix_len = len(self.prefix)
        self._probe_interval = probe_interval
        self._probe_timeout = probe_timeout
        self._sub: Subscription | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._check_now = asyncio.Event()
        self._probes: dict[str, asyncio.Future[None]] = {}
        self._probe_seq = 0
        self._events = events
        if events is not None:
            events.on_reconnect.append(self._on_reconnect)
            events.on_error.append(self._on_error)

    @property
    def running(self) -> bool:
        return self._sub is not None

    def reply_subject(self, token: str) -> str:
        return self.prefix + token

    async def start(self) -> None:
        """Subscribe and start the watchdog (idempotent)."""
        if self._sub is not None:
            return
        await self._subscribe()
        self._watchdog = asyncio.get_running_loop().create_task(
            self._watch(), name=f"switchboard-consumer-watchdog {self.prefix}"
        )

    async def stop(self) -> None:
        """Stop the watchdog and unsubscribe (idempotent).

        Cancelled while the watchdog winds down, it still unsubscribes, then re-raises.
        """
        watchdog, self._watchdog = self._watchdog, None
        try:
            await stop_task(watchdog)
        finally:
            sub, self._sub = self._sub, None
            for fut in self._probes.values():
                fut.cancel()
            self._probes.clear()
            if self._events is not None:
                with contextlib.suppress(ValueError):
                    self._events.on_reconnect.remove(self._on_reconnect)
                with contextlib.suppress(ValueError):
                    self._events.on_error.remove(self._on_error)
            if sub is not None and not self._nc.is_closed:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()

    async def probe(self) -> bool:
        """Send a message to our own inbox and wait for it: is the subscription alive?"""
        self._probe_seq += 1
        token = f"{_PROBE}{self._probe_seq}"
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._probes[token] = fut
        try:
            await self._nc.publish(self.prefix + token, b"")
            async with asyncio.timeout(self._probe_timeout):
                await fut
        except (TimeoutError, Exception):
            return False
        finally:
            self._probes.pop(token, None)
        return True

    async def resubscribe(self, reason: str) -> None:
        """Replace the subscription (the old one is dead or suspect)."""
        CONSUMER_RESUBSCRIBES.inc()
        log.warning("inbox subscription re-created", prefix=self.prefix, reason=reason)
        old, self._sub = self._sub, None
        if old is not None:
            with contextlib.suppress(Exception):
                await old.unsubscribe()
        await self._subscribe()

    # -- internals ----------------------------------------------------------------------------

    async def _subscribe(self) -> None:
        subject = self.prefix + "*"
        with map_nats_errors(subject=subject):
            self._sub = await self._nc.subscribe(
                subject,
                cb=self._on_msg,
                pending_msgs_limit=1_000_000,
                pending_bytes_limit=256 * 1024 * 1024,
            )

    async def _on_msg(self, msg: Msg) -> None:
        token = msg.subject[self._prefix_len :]
        try:
            if token.startswith(_PROBE):
                fut = self._probes.get(token)
                if fut is not None and not fut.done():
                    fut.set_result(None)
                return
            self._tracker.route(token, msg)
        except Exception:  # never let a reply kill the subscription's task
            log.exception("failed to route a reply", subject=msg.subject)

    async def _on_reconnect(self) -> None:
        self._check_now.set()

    async def _on_error(self, exc: Exception) -> None:
        if is_permission_error(exc) and self.prefix.rstrip(".") in str(exc):
            self._check_now.set()

    async def _watch(self) -> None:
        failures = 0
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._probe_interval):
                    await self._check_now.wait()
            self._check_now.clear()
            if not self._nc.is_connected:
                continue
            if await self.probe():
                failures = 0
                continue
            failures += 1
            try:
                await self.resubscribe(f"probe failed ({failures} in a row)")
            except Exception as exc:  # NATS trouble: try again at the next round
                log.warning("re-subscribing the inbox failed", error=str(exc))

    def __repr__(self) -> str:
        state = "running" if self._sub is not None else "stopped"
        return f"<GlobalMessageConsumer {self.prefix}* {state}>"
