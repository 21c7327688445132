"""A history bucket that cannot answer costs neither the answer nor the deadline.

A conversation with a ``conversation_id`` reads (and then writes) its history
in the JetStream KV bucket. When that bucket cannot answer -- here the 3-node
cluster lost two nodes, so the R3 bucket has no quorum; in the chaos runs the
same happened for a few seconds when the node of the bucket's leader was
killed -- the orchestrator gives memory a small budget, logs the failure and
answers without it (it once waited nats-py's 5 s default and ended with
``internal``, past the deadline).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from switchboard.bff.schemas import ChatRequest
from switchboard.orchestrator import SwitchboardError
from tests.support.cluster import NatsCluster, password
from tests.support.nats_users import login

from .report import Report

if TYPE_CHECKING:
    from .conftest import ClientFactory, Parts

pytestmark = pytest.mark.slow

TIMEOUT_S = 4.0


async def test_an_unavailable_history_bucket_costs_no_answer_and_no_deadline(
    nats_cluster: NatsCluster, parts: Parts, client: ClientFactory
) -> None:
    cluster = nats_cluster
    report = Report("history bucket without quorum")
    url = cluster[0].url  # everything on node 0, which survives
    orchestrator = await parts.orchestrator(
        "orchestrator",
        nats_url=url,
        SWITCHBOARD_HISTORY_REPLICAS="3",
        **login("orchestrator", "_INBOX_orchestrator"),
    )
    agent = await parts.agent("calculator", "calculator", nats_url=url, **login("agent-calculator"))
    await parts.ready(orchestrator, agent)
    await orchestrator.wait_agents("calculator")
    bff = await client(url, inbox_prefix="_INBOX_bff", user="bff", password=password("bff"))

    async def ask(n: int) -> str:
        outcome = report.begin("alice", TIMEOUT_S)
        body = ChatRequest(
            message=f"what is 6*{n}?",
            timeout_s=TIMEOUT_S,
            agents=["calculator"],
            conversation_id="conv-alice-history",
        )
        try:
            reply = await bff.gateway.chat("alice", body, correlation_id=outcome.correlation_id)
        except SwitchboardError as exc:
            outcome.code, outcome.detail = exc.code.value, str(exc)
        else:
            outcome.code = "partial" if reply.partial else "ok"
        outcome.ended = time.monotonic()
        return outcome.code

    try:
        assert await ask(1) == "ok"  # the bucket works while the cluster is whole
        await cluster.kill(1)
        await cluster.kill(2)
        report.note("nats-1 and nats-2 killed: the history bucket has no quorum")
        await ask(2)
    finally:
        report.print()
    outcome = report.outcomes[-1]
    summary = report.summary()
    assert outcome.code == "ok", summary  # answered, without its history
    assert outcome.overrun <= 0.5, summary
