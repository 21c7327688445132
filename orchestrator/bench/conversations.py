"""Sending bench conversations to a real orchestrator and checking every reply.

A conversation counts as a success only if the reply has no error, is not
partial and its one step (the bench agent) finished ``ok``: the bench
measures working requests, never fast failures.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from nats.nuid import NUID

from ..core.client import ConversationClient
from ..core.codec import decode, encode
from ..core.conversation import ConversationReply, ConversationRequest
from ..core.requester import Requester
from .core import drive
from .workload import MESSAGE

__all__ = ["BenchError", "Conversations", "check_rounds", "sample_payload"]

Send = Callable[[int], Awaitable[object]]


class BenchError(Exception):
    """A bench request came back wrong (an error reply, a partial answer ...)."""


def sample_payload(agent: str) -> bytes:
    """A ConversationRequest of the bench's usual size (the raw chain sends these bytes)."""
    return encode(
        ConversationRequest(
            correlation_id=f"bench-{NUID().next().decode()}-0000000",
            user_id="bench",
            message=MESSAGE,
            agents=[agent],
            timeout_s=30.0,
        )
    )


def check_reply(data: bytes) -> ConversationReply:
    """The reply, if it is a complete answer from the bench agent.

    Raises:
        BenchError: an error, a partial answer, or not exactly one ``ok`` step.
    """
    return check_answer(decode(data, ConversationReply, max_bytes=None))


def check_answer(reply: ConversationReply) -> ConversationReply:
    """``reply``, if it is a complete answer from the bench agent.

    Raises:
        BenchError: an error, a partial answer, or not exactly one ``ok`` step.
    """
    if reply.error is not None:
        raise BenchError(f"error reply: {reply.error.code}: {reply.error.message}")
    if reply.partial or len(reply.steps) != 1 or reply.steps[0].status != "ok":
        raise BenchError(f"unexpected reply: {reply.answer!r} steps={reply.steps!r}")
    return reply


def check_rounds(reply: ConversationReply, *, rounds: int) -> ConversationReply:
    """``reply``, if it is a complete answer whose last step ran in round ``rounds``.

    Raises:
        BenchError: an error, a partial answer, or another number of rounds.
    """
    if reply.error is not None:
        raise BenchError(f"error reply: {reply.error.code}: {reply.error.message}")
    last = reply.steps[-1] if reply.steps else None
    if reply.partial or last is None or last.status != "ok" or last.round != rounds:
        raise BenchError(f"unexpected reply: {reply.answer!r} steps={reply.steps!r}")
    return reply


@dataclass
class Conversations:
    """Makes ``send(i)`` functions for :func:`~switchboard.orchestrator.bench.core.drive`.

    Every conversation gets its own correlation id; the first failure is kept
    (``first_error``) so a run with errors can say why.
    """

    requester: Requester
    agent: str
    timeout: float = 30.0
    #: What to ask, and in how many rounds the answer must come (``workload.TWO_ROUNDS``: 2).
    message: str = MESSAGE
    rounds: int = 1
    first_error: str | None = None
    _ids: itertools.count[int] = field(default_factory=itertools.count, init=False)
    _run: str = field(default_factory=lambda: NUID().next().decode(), init=False)

    def sender(self) -> Send:
        # No retries: the bench counts a refused request as the failure it is.
        client = ConversationClient(self.requester, default_timeout=self.timeout, retries=0)
        agents = [self.agent]
        ids = self._ids
        run = self._run
        message = self.message
        check = (
            check_answer
            if self.rounds == 1
            else functools.partial(check_rounds, rounds=self.rounds)
        )

        async def conversation(i: int) -> object:
            try:
                reply = await client.ask(
                    message,
                    user_id="bench",
                    correlation_id=f"bench-{run}-{next(ids)}",
                    agents=agents,
                )
                return check(reply)
            except Exception as exc:
                if self.first_error is None:
                    self.first_error = f"{type(exc).__name__}: {exc}"
                raise

        return conversation

    async def warm_up(self, requests: int, concurrency: int, *, patience: float = 15.0) -> None:
        """Wait until a conversation works (the agent is in the catalog), then run a few more.

        Raises:
            BenchError: no conversation worked within ``patience`` seconds.
        """
        send = self.sender()
        give_up = time.monotonic() + patience
        while True:
            try:
                await send(0)
                break
            except Exception as exc:
                if time.monotonic() > give_up:
                    raise BenchError(
                        f"No bench conversation worked within {patience:.0f}s; the last failed "
                        f"with {self.first_error}"
                    ) from exc
                self.first_error = None
                await asyncio.sleep(0.2)
        if requests > 1:
            await drive(send, requests=requests - 1, concurrency=concurrency)
        self.first_error = None
