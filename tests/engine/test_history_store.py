"""Conversation memory comes back by itself when its bucket is lost.

An operator deletes the bucket, or NATS returns with an empty store: the next
turn re-creates the bucket and is kept (it used to log "not saved" on every
turn until the orchestrator restarted).
"""

from __future__ import annotations

import asyncio
import shutil

from nats.aio.client import Client as NATS

from switchboard.orchestrator.core import ConversationTurn
from switchboard.orchestrator.engine import HistoryStore
from switchboard.orchestrator.runtime import EmbeddedNatsServer
from tests.helpers import eventually


def _turn(n: int) -> ConversationTurn:
    return ConversationTurn(correlation_id=f"conv-u-{n}", message=f"q{n}", answer=f"a{n}", ts=n)


async def test_a_deleted_bucket_is_created_again_by_the_next_turn(nats_client: NATS) -> None:
    store = HistoryStore(nats_client, bucket="history-lost")
    await store.start()
    await store.append("u", "c1", _turn(1))
    assert [t.message for t in await store.load("u", "c1")] == ["q1"]

    await nats_client.jetstream().delete_key_value("history-lost")

    await store.append("u", "c1", _turn(2))  # no error: the bucket is made again
    assert [t.message for t in await store.load("u", "c1")] == ["q2"]
    await store.append("u", "c1", _turn(3))
    assert [t.message for t in await store.load("u", "c1")] == ["q2", "q3"]
    info = await nats_client.jetstream().stream_info("KV_history-lost")
    assert info.config.description == "Switchboard conversation history"


async def test_nats_back_with_an_empty_store_gets_the_bucket_again(
    nats_server: EmbeddedNatsServer, nats_client: NATS
) -> None:
    store = HistoryStore(nats_client, bucket="history-wiped")
    await store.start()
    await store.append("u", "c1", _turn(1))

    await asyncio.to_thread(nats_server.kill)
    await asyncio.to_thread(shutil.rmtree, nats_server.store_dir)  # the store is lost
    await asyncio.to_thread(nats_server.start)
    await eventually(lambda: nats_client.is_connected)

    await store.append("u", "c1", _turn(2))
    assert [t.message for t in await store.load("u", "c1")] == ["q2"]


async def test_turns_keep_their_steps_bounded_and_old_turns_still_read(
    nats_client: NATS,
) -> None:
    from switchboard.orchestrator.core import TurnStep

    store = HistoryStore(nats_client, bucket="history-steps")
    await store.start()
    # A turn as releases before steps stored it: message and answer only.
    old = b'[{"correlation_id":"conv-u-0","message":"q0","answer":"a0","ts":0.0}]'
    kv = await nats_client.jetstream().key_value("history-steps")
    await kv.put(store.key("u", "c1"), old)
    [turn] = await store.load("u", "c1")
    assert (turn.message, turn.steps) == ("q0", [])

    many = [
        TurnStep(id=f"s{i}", agent="text", instruction="x" * 5_000, output="y" * 5_000)
        for i in range(100)
    ]
    turn = ConversationTurn(correlation_id="conv-u-1", message="q1", answer="a1", steps=many)
    await store.append("u", "c1", turn)
    _, kept = await store.load("u", "c1")
    assert len(kept.steps) == 32
    assert all(len(s.instruction) <= 200 and len(s.output) <= 200 for s in kept.steps)
    assert kept.steps[0].output.endswith("...")
