"""Conversation memory in a JetStream KV bucket, per user, bounded.

Key ``<user_id>.<conversation_id>``: a user can only ever read keys under
their own user id, so the same conversation id used by two users names two
different histories. Writes are compare-and-set, so two orchestrator
replicas answering the same conversation at once do not lose a turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import msgspec
import structlog
from nats.aio.client import Client as NATS

from ..core.codec import decode, encode
from ..core.conversation import ConversationTurn, Plan, StepResult, TurnStep
from ..core.errors import DecodeError
from ..core.kv import KVBucket, Revision
from .aggregator import output_text

__all__ = ["NEW_CONVERSATION", "HistoryStore", "Snapshot", "turn_steps"]

log = structlog.get_logger("switchboard.history")

#: Longest message/answer kept per turn (characters).
MAX_TURN_CHARS = 4_000
#: Most steps kept per turn, and the longest instruction and output preview of each.
MAX_TURN_STEPS = 32
MAX_STEP_CHARS = 200


def _cut(text: str, limit: int = MAX_STEP_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def turn_steps(plan: Plan, results: Sequence[StepResult]) -> list[TurnStep]:
    """A turn's steps as history keeps them: agent, instruction, status, output preview."""
    instructions = {step.id: step.instruction for step in plan.steps}
    kept = []
    for result in results[:MAX_TURN_STEPS]:
        if result.status == "ok":
            shown = output_text(result.output)
        else:
            shown = result.error.message if result.error is not None else ""
        kept.append(
            TurnStep(
                id=result.id,
                agent=result.agent,
                instruction=_cut(instructions.get(result.id, "")),
                status=result.status,
                output=_cut(shown),
                round=result.round,
            )
        )
    return kept


class Snapshot(NamedTuple):
    """A conversation's turns as read, and the revision they were read at (None: none)."""

    turns: list[ConversationTurn]
    revision: Revision | None


#: The snapshot of a conversation that starts now (nothing to read).
NEW_CONVERSATION = Snapshot([], None)


class HistoryStore:
    """Loads and appends conversation turns."""

    def __init__(
        self,
        nc: NATS,
        *,
        bucket: str = "switchboard-history",
        max_turns: int = 20,
        ttl: float | None = 30 * 24 * 3600,
        replicas: int = 1,
    ) -> None:
        self.max_turns = max_turns
        self._kv = KVBucket(nc, bucket, ttl=ttl, replicas=replicas)

    async def start(self) -> None:
        await self._kv.open()

    async def stop(self, grace: float = 0.0) -> None:
        return None

    @staticmethod
    def key(user_id: str, conversation_id: str) -> str:
        return f"{user_id}.{conversation_id}"

    async def load(self, user_id: str, conversation_id: str) -> list[ConversationTurn]:
        return (await self.read(user_id, conversation_id)).turns

    async def read(self, user_id: str, conversation_id: str) -> Snapshot:
        """The turns of a conversation and the revision they were read at, for
        :meth:`append` to write without reading them again."""
        found = await self._kv.get(self.key(user_id, conversation_id))
        if found is None:
            return Snapshot([], None)
        try:
            return Snapshot(decode(found[0], list[ConversationTurn], max_bytes=None), found[1])
        except DecodeError:
            log.warning(
                "unreadable history ignored", user_id=user_id, conversation_id=conversation_id
            )
            return Snapshot([], found[1])

    async def append(
        self,
        user_id: str,
        conversation_id: str,
        turn: ConversationTurn,
        *,
        known: Snapshot | None = None,
    ) -> None:
        """Add ``turn``; ``known``: what :meth:`read` gave (``NEW_CONVERSATION``: one that
        starts with this turn), written over without reading again unless someone wrote
        since (compare-and-set)."""
        turn = ConversationTurn(
            correlation_id=turn.correlation_id,
            message=turn.message[:MAX_TURN_CHARS],
            answer=turn.answer[:MAX_TURN_CHARS],
            ts=turn.ts,
            steps=[
                msgspec.structs.replace(s, instruction=_cut(s.instruction), output=_cut(s.output))
                for s in turn.steps[:MAX_TURN_STEPS]
            ],
        )
        key = self.key(user_id, conversation_id)
        for _ in range(10):
            if known is None:
                known = await self.read(user_id, conversation_id)
            turns = [*known.turns, turn][-self.max_turns :]
            revision, known = known.revision, None
            if await self._kv.put_if(key, encode(turns), revision):
                return
        log.warning("history not saved: too much contention", key=key)
