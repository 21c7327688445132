"""A conversation sent again runs once: the retry attaches to it, history holds it once."""

from __future__ import annotations

import asyncio
import time

import pytest
from nats.aio.client import Client as NATS

from switchboard.orchestrator import (
    CLAIM_LAPSE,
    CLAIM_RENEW,
    ConversationClient,
    ConversationReply,
    ConversationRequest,
    KVBucket,
    OrchestratorService,
    RemoteError,
    RequestClaims,
    Requester,
    RequestOptions,
    Settings,
    encode,
    new_correlation_id,
    new_request_id,
    reply_deadline,
)
from tests.helpers import metric
from tests.support.agents import ALL as TEST_AGENTS
from tests.support.system import agents_running, orchestrator_running


async def test_a_conversation_retried_after_not_accepted_in_time_runs_and_is_saved_once(
    system: OrchestratorService, requester: Requester
) -> None:
    """The orchestrator is slower to say ``accepted`` (its heartbeat tick) than the client
    waits: the client gives the first attempt up and sends it again, with the same id."""
    sleepy_ok = metric("switchboard_endpoint_requests_total", endpoint="sleepy", outcome="ok")
    attached = metric(
        "switchboard_endpoint_deduplicated_total", endpoint="orchestrator", how="attached"
    )
    client = ConversationClient(requester, heartbeat=0.2, accept_timeout=0.05)
    reply = await client.ask("sleep 0.5", user_id="tester", conversation_id="retried", timeout=10)
    assert reply.error is None and not reply.partial
    assert (
        metric("switchboard_endpoint_deduplicated_total", endpoint="orchestrator", how="attached")
        == attached + 1
    )
    assert metric("switchboard_endpoint_requests_total", endpoint="sleepy", outcome="ok") == (
        sleepy_ok + 1
    )
    history = await client.history("tester", "retried", correlation_id="conv-tester-h1")
    assert [turn.message for turn in history.turns] == ["sleep 0.5"]


async def test_a_retry_on_another_replica_does_not_run_the_conversation_again(
    settings: Settings, requester: Requester
) -> None:
    """Attempts of one request spread over two replicas: one claims it in JetStream and
    runs it; the other waits for its stored reply. (20 attempts: all on one replica
    has a chance of 2**-19.)"""
    sleepy_ok = metric("switchboard_endpoint_requests_total", endpoint="sleepy", outcome="ok")
    replayed = metric("switchboard_claims_total", outcome="replayed")
    correlation_id = new_correlation_id("tester")
    request = ConversationRequest(
        correlation_id=correlation_id,
        user_id="tester",
        message="sleep 0.5",
        conversation_id="two-replicas",
        timeout_s=10,
    )
    options = RequestOptions(request_id=new_request_id())
    deadline = reply_deadline(10)
    async with (
        agents_running(settings, *TEST_AGENTS),
        orchestrator_running(settings) as first,
        orchestrator_running(settings) as second,
    ):
        replies = await asyncio.gather(
            *(
                requester.call(
                    requester.subjects.converse,
                    request,
                    ConversationReply,
                    correlation_id=correlation_id,
                    deadline=deadline,
                    options=options,
                )
                for _ in range(20)
            )
        )
        assert first.converse.stats.num_requests == second.converse.stats.num_requests == 1
        history = await ConversationClient(requester).history(
            "tester", "two-replicas", correlation_id="conv-tester-h2"
        )
    assert {reply.answer for reply in replies} == {replies[0].answer}
    assert all(reply.error is None for reply in replies)
    assert metric("switchboard_endpoint_requests_total", endpoint="sleepy", outcome="ok") == (
        sleepy_ok + 1
    )
    assert metric("switchboard_claims_total", outcome="replayed") == replayed + 1
    assert [turn.message for turn in history.turns] == ["sleep 0.5"]


async def test_a_request_whose_claimer_died_gets_a_clear_error_not_a_second_run(
    system: OrchestratorService, settings: Settings, requester: Requester, nats_client: NATS
) -> None:
    """A replica claimed the request, then died before answering: the retry on this one
    runs nothing and says why at the deadline."""
    correlation_id, request_id = new_correlation_id("tester"), new_request_id()
    request = ConversationRequest(
        correlation_id=correlation_id, user_id="tester", message="sleep 0.1", timeout_s=1
    )
    claims = KVBucket(nats_client, f"{settings.history_bucket}-claims")
    await claims.open()
    key = RequestClaims.key(correlation_id, request_id, encode(request))
    assert await claims.create(key, b"running")
    sleepy_ok = metric("switchboard_endpoint_requests_total", endpoint="sleepy", outcome="ok")
    with pytest.raises(RemoteError) as caught:
        await requester.call(
            requester.subjects.converse,
            request,
            ConversationReply,
            correlation_id=correlation_id,
            deadline=reply_deadline(1),
            options=RequestOptions(request_id=request_id),
        )
    assert caught.value.code.value == "timeout"
    assert "another orchestrator replica" in str(caught.value)
    assert metric("switchboard_endpoint_requests_total", endpoint="sleepy", outcome="ok") == (
        sleepy_ok
    )


async def test_a_claim_its_replica_stopped_renewing_is_taken_over_and_answered_once(
    system: OrchestratorService, settings: Settings, requester: Requester, nats_client: NATS
) -> None:
    """A replica claimed the request and froze (or died) at once: after CLAIM_LAPSE without
    a renewal, the replica that has the retry takes the claim over and answers."""
    correlation_id, request_id = new_correlation_id("tester"), new_request_id()
    request = ConversationRequest(
        correlation_id=correlation_id, user_id="tester", message="sleep 0.1", timeout_s=10
    )
    claims = KVBucket(nats_client, f"{settings.history_bucket}-claims")
    await claims.open()
    key = RequestClaims.key(correlation_id, request_id, encode(request))
    stale = await claims.create(key, b"running")
    assert stale is not None
    taken = metric("switchboard_claims_total", outcome="taken_over")
    sleepy_ok = metric("switchboard_endpoint_requests_total", endpoint="sleepy", outcome="ok")
    started = time.monotonic()
    reply = await requester.call(
        requester.subjects.converse,
        request,
        ConversationReply,
        correlation_id=correlation_id,
        deadline=reply_deadline(10),
        options=RequestOptions(request_id=request_id),
    )
    assert reply.error is None and not reply.partial
    assert time.monotonic() - started >= CLAIM_LAPSE
    assert metric("switchboard_claims_total", outcome="taken_over") == taken + 1
    assert metric("switchboard_endpoint_requests_total", endpoint="sleepy", outcome="ok") == (
        sleepy_ok + 1
    )
    # The old claimer, waking, cannot write over the new one's answer (fenced by revision).
    assert await claims.swap(key, b"late answer", stale) is None
    assert not await claims.delete(key, stale)
    found = await claims.get(key)
    assert found is not None and found[0] != b"late answer"


async def test_conversations_that_end_as_their_claim_is_renewed_are_answered_at_once(
    system: OrchestratorService, requester: Requester
) -> None:
    """A renewal in flight when the conversation ends is let finish, never cut short: a
    nats-py publish cancelled half-way can leave the reply behind it unsent."""
    client = ConversationClient(requester, heartbeat=0.5, accept_timeout=5.0)
    started = time.monotonic()
    for _ in range(3):
        replies = await asyncio.gather(
            *(client.ask(f"sleep {CLAIM_RENEW}", user_id=f"u{n}", timeout=30) for n in range(8))
        )
        assert all(reply.error is None for reply in replies)
    assert time.monotonic() - started < 3 * (CLAIM_RENEW + 2.0)
