"""The NATS service API (``$SRV.PING|INFO|STATS``), wire-compatible with ``nats.micro``.

Every agent and the orchestrator answer it, so ``nats micro ls``, ``nats
micro info <name>`` and ``nats micro stats <name>`` list them with their
descriptions, and the orchestrator discovers the live agent catalog the same
way. nats-py's own ``nats.micro`` runs endpoint handlers one at a time and
replies ``repr(exc)`` on errors; Switchboard serves its endpoints itself
(:class:`~switchboard.orchestrator.core.endpoint.Endpoint`) and only speaks the discovery
protocol here, with the same JSON schemas (``io.nats.micro.v1.*``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import msgspec
import structlog
from nats.aio.client import Client as NATS
from nats.nuid import NUID

from .endpoint import Endpoint

if TYPE_CHECKING:
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription

__all__ = [
    "EndpointInfo",
    "EndpointStatsInfo",
    "ServiceInfo",
    "ServicePing",
    "ServiceResponder",
    "ServiceStatsInfo",
    "discover",
]

log = structlog.get_logger("switchboard.discovery")

PREFIX = "$SRV"
VERBS = ("PING", "INFO", "STATS")


class ServicePing(msgspec.Struct, kw_only=True):
    type: str = "io.nats.micro.v1.ping_response"
    name: str
    id: str
    version: str
    metadata: dict[str, str] = msgspec.field(default_factory=dict)


class EndpointInfo(msgspec.Struct, kw_only=True):
    name: str
    subject: str
    queue_group: str
    metadata: dict[str, str] | None = None


class ServiceInfo(msgspec.Struct, kw_only=True):
    type: str = "io.nats.micro.v1.info_response"
    name: str
    id: str
    version: str
    description: str | None = None
    endpoints: list[EndpointInfo] = msgspec.field(default_factory=list)
    metadata: dict[str, str] = msgspec.field(default_factory=dict)


class EndpointStatsInfo(msgspec.Struct, kw_only=True):
    name: str
    subject: str
    queue_group: str
    num_requests: int
    num_errors: int
    last_error: str
    processing_time: int
    average_processing_time: int
    data: dict[str, int] | None = None


class ServiceStatsInfo(msgspec.Struct, kw_only=True):
    type: str = "io.nats.micro.v1.stats_response"
    name: str
    id: str
    version: str
    started: str
    endpoints: list[EndpointStatsInfo] = msgspec.field(default_factory=list)
    metadata: dict[str, str] = msgspec.field(default_factory=dict)


_encoder = msgspec.json.Encoder()


class ServiceResponder:
    """Answers ``$SRV.PING|INFO|STATS`` (all, by name, by name and id) for some endpoints."""

    def __init__(
        self,
        nc: NATS,
        *,
        name: str,
        version: str,
        description: str,
        endpoints: Sequence[Endpoint],
        metadata: dict[str, str] | None = None,
    ) -> None:
        self._nc = nc
        self.name = name
        self.version = version
        self.description = description
        self.metadata = dict(metadata or {})
        self.endpoints = list(endpoints)
        self.id = NUID().next().decode()
        self.started = datetime.now(UTC)
        self._subs: list[Subscription] = []

    def subjects(self) -> list[str]:
        return [
            subject
            for verb in VERBS
            for subject in (
                f"{PREFIX}.{verb}",
                f"{PREFIX}.{verb}.{self.name}",
                f"{PREFIX}.{verb}.{self.name}.{self.id}",
            )
        ]

    async def start(self) -> None:
        if self._subs:
            return
        for subject in self.subjects():
            verb = subject.split(".")[1]
            self._subs.append(await self._nc.subscribe(subject, cb=self._handler(verb)))

    async def stop(self, grace: float = 0.0) -> None:
        subs, self._subs = self._subs, []
        if self._nc.is_closed:
            return
        for sub in subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    def ping(self) -> ServicePing:
        return ServicePing(name=self.name, id=self.id, version=self.version, metadata=self.metadata)

    def info(self) -> ServiceInfo:
        return ServiceInfo(
            name=self.name,
            id=self.id,
            version=self.version,
            description=self.description,
            metadata=self.metadata,
            endpoints=[
                EndpointInfo(
                    name=e.name,
                    subject=e.subject,
                    queue_group=e.queue or "",
                    metadata=e.metadata or None,
                )
                for e in self.endpoints
            ],
        )

    def stats(self) -> ServiceStatsInfo:
        return ServiceStatsInfo(
            name=self.name,
            id=self.id,
            version=self.version,
            metadata=self.metadata,
            started=self.started.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            endpoints=[
                EndpointStatsInfo(
                    name=e.name,
                    subject=e.subject,
                    queue_group=e.queue or "",
                    num_requests=e.stats.num_requests,
                    num_errors=e.stats.num_errors,
                    last_error=e.stats.last_error,
                    processing_time=e.stats.processing_time_ns,
                    average_processing_time=e.stats.average_processing_time_ns,
                    data={"in_flight": e.in_flight},
                )
                for e in self.endpoints
            ],
        )

    def _handler(self, verb: str):  # type: ignore[no-untyped-def]
        build = {"PING": self.ping, "INFO": self.info, "STATS": self.stats}[verb]

        async def answer(msg: Msg) -> None:
            if not msg.reply:
                return
            try:
                await self._nc.publish(msg.reply, _encoder.encode(build()))
            except Exception as exc:  # the asker times out; nothing else to do
                log.debug("service API reply not sent", verb=verb, error=str(exc))

        return answer

    def __repr__(self) -> str:
        return f"<ServiceResponder {self.name} {self.id} endpoints={len(self.endpoints)}>"


async def discover(
    nc: NATS,
    verb: str = "INFO",
    name: str | None = None,
    *,
    timeout: float = 1.0,
    quiet: float = 0.15,
) -> list[bytes]:
    """Ask every service (or those named ``name``) and collect the raw JSON replies.

    Returns once ``timeout`` has passed, or ``quiet`` seconds after the last
    reply (there is no telling how many services exist).
    """
    subject = f"{PREFIX}.{verb}" + (f".{name}" if name else "")
    inbox = nc.new_inbox()
    replies: asyncio.Queue[Msg] = asyncio.Queue()

    async def collect(msg: Msg) -> None:
        replies.put_nowait(msg)

    sub = await nc.subscribe(inbox, cb=collect)
    found: list[bytes] = []
    try:
        await nc.publish(subject, b"", reply=inbox)
        give_up = time.monotonic() + timeout
        while (left := give_up - time.monotonic()) > 0:
            wait = min(left, quiet) if found else left
            try:
                async with asyncio.timeout(wait):
                    msg = await replies.get()
            except TimeoutError:
                if found:
                    break
                continue
            if msg.headers and msg.headers.get("Status") == "503":
                break  # no responders at all
            found.append(msg.data)
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
    return found
