"""A conversation sent again runs once: the retry attaches to it, history holds it once."""

from __future__ import annotations

from switchboard.orchestrator import ConversationClient, OrchestratorService, Requester
from tests.helpers import metric


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
