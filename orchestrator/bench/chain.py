"""The raw two-hop chain (requester -> relay -> echo, plain nats-py) as a baseline to drive.

See :mod:`switchboard.orchestrator.bench.relay` for the two processes, and
:mod:`switchboard.orchestrator.bench.peer` for the same chain in FastStream. The requester
side is plain ``nc.request`` on the bench's own connection, with the same
payload the system under test gets.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import nats
from nats.aio.client import Client as NATS
from nats.nuid import NUID

from .processes import python_process
from .system import together

__all__ = [
    "RawChain",
    "bench_connection",
    "faststream_available",
    "faststream_chain",
    "raw_chain",
]

#: Big enough that a burst of replies never makes the bench's connection a slow consumer.
PENDING_SIZE = 256 * 1024 * 1024


@dataclass
class RawChain:
    """A running relay + echo pair; :meth:`sender` makes a ``send(i)`` for :func:`drive`."""

    nc: NATS
    subject: str
    pids: dict[str, int] = field(default_factory=dict)

    def sender(
        self, payload: bytes, *, timeout: float = 30.0
    ) -> Callable[[int], Awaitable[object]]:
        request = self.nc.request
        subject = self.subject

        async def raw(i: int) -> object:
            return await request(subject, payload, timeout=timeout)

        return raw


@contextlib.asynccontextmanager
async def bench_connection(url: str) -> AsyncIterator[NATS]:
    """The bench's own NATS connection (a big pending buffer, closed on the way out)."""
    nc: NATS = await nats.connect(url, pending_size=PENDING_SIZE, name="switchboard-bench")
    try:
        yield nc
    finally:
        await nc.close()


@contextlib.asynccontextmanager
async def _two_hops(
    module: str, kind: str, nc: NATS, url: str, delay: float
) -> AsyncIterator[RawChain]:
    token = NUID().next().decode()
    echo_subject = f"bench.{kind}.{token}.echo"
    relay_subject = f"bench.{kind}.{token}.relay"
    echo_args = ["echo", url, echo_subject] + ([str(delay)] if delay > 0 else [])
    async with together(
        python_process(module, *echo_args),
        python_process(module, "relay", url, relay_subject, echo_subject),
    ) as (echo, relay):
        yield RawChain(nc, relay_subject, {"relay": relay.pid, "echo": echo.pid})


def raw_chain(
    nc: NATS, url: str, *, delay: float = 0.0
) -> contextlib.AbstractAsyncContextManager[RawChain]:
    """Start the echo and relay processes (unique subjects); yield the chain to call."""
    return _two_hops("switchboard.orchestrator.bench.relay", "raw", nc, url, delay)


def faststream_available() -> bool:
    """Whether FastStream's NATS broker is installed (the ``bench`` extra): the peer can run."""
    try:
        return importlib.util.find_spec("faststream.nats") is not None
    except ModuleNotFoundError:  # no faststream at all
        return False


def faststream_chain(
    nc: NATS, url: str, *, delay: float = 0.0
) -> contextlib.AbstractAsyncContextManager[RawChain]:
    """The same two hops as FastStream subscribers (:mod:`.peer`); called the same way.

    Raises:
        ConfigurationError: FastStream is not installed (the ``bench`` extra), so a process
            exited while starting.
    """
    return _two_hops("switchboard.orchestrator.bench.peer", "faststream", nc, url, delay)
