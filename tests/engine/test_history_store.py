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
