"""Chaos 2: one node of the 3-node NATS cluster is killed under load (the operations "must show").

The cluster runs the shipped deploy/nats/cluster-node.conf (auth.conf users,
authenticated routes, JetStream). The parts log in as their own NATS users and
get every node's URL (``NATS_URL`` list, as behind the headless Service; the
config's ``no_advertise`` means clients learn no other node from the server).
The client (the test, as the BFF user) sits on a different node than the
orchestrator, so every conversation crosses the routes. Then the
orchestrator's node is SIGKILLed: the parts on it reconnect to the others and
traffic resumes; the node comes back and rejoins.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from tests.support.cluster import NatsCluster, password
from tests.support.nats_users import login

from .report import REPLY_MARGIN, Report, arithmetic, finish, ok_since, run_users, until

if TYPE_CHECKING:
    from .conftest import ClientFactory, Part, Parts

pytestmark = pytest.mark.slow

USERS = 12
TIMEOUT_S = 4.0
ORCHESTRATOR = "switchboard-orchestrator-orchestrator"
AGENT = "switchboard-agent-calculator"


async def test_one_cluster_node_killed_under_load(
    nats_cluster: NatsCluster, parts: Parts, client: ClientFactory
) -> None:
    cluster = nats_cluster
    report = Report("one node of the 3-node NATS cluster SIGKILLed under load")
    orchestrator = await parts.orchestrator(
        "orchestrator",
        nats_url=cluster.url_list(0),
        SWITCHBOARD_HISTORY_REPLICAS="3",
        **login("orchestrator", "_INBOX_orchestrator"),
    )
    agents: list[Part] = [
        await parts.agent(
            f"calculator-{i}",
            "calculator",
            nats_url=cluster.url_list(i),
            **login("agent-calculator"),
        )
        for i in (1, 2)
    ]
    await parts.ready(orchestrator, *agents)
    await orchestrator.wait_agents("calculator")
    placement = await cluster.where()
    victim = placement[ORCHESTRATOR][0]  # the orchestrator's node goes down
    home = (victim + 1) % len(cluster.nodes)  # the client stays up, on another node
    bff = await client(
        cluster.urls(home),
        inbox_prefix="_INBOX_bff",
        user="bff",
        password=password("bff"),
        dont_randomize=True,
    )
    placement = await cluster.where()
    report.note(f"placement (connection -> node): {_placement(placement)}")
    assert placement["chaos-client"] == [home], placement
    assert placement[ORCHESTRATOR] != placement["chaos-client"], placement

    async def one(user: int, n: int) -> None:
        a, b = 1000 + user, 100 + n
        outcome = await report.converse(
            bff.gateway,
            f"u{user:02d}",
            f"what is {a}*{b}+{user}?",
            timeout_s=TIMEOUT_S,
            check=arithmetic(a * b + user),
            agents=["calculator"],
        )
        await asyncio.sleep(0.02 if outcome.code == "ok" else 0.1)

    stop = asyncio.Event()
    async with report.bounded(100, context=cluster.logs):
        load = asyncio.create_task(run_users(USERS, one, stop))
        try:
            await until(lambda: report.count("ok") >= 50, load)
            report.note(f"{report.count('ok')} ok across nodes; SIGKILL nats-{victim}")
            await cluster.kill(victim)
            killed = report.now()
            await until(lambda: ok_since(report, killed + 4.0) >= 50, load, timeout=40)
            moved = await cluster.where()
            report.note(f"after the kill: {_placement(moved)}")
            report.note(f"{ok_since(report, killed + 4.0)} ok started >4 s after the kill")
            await cluster.restart(victim)
            report.note(f"nats-{victim} restarted and rejoined the cluster")
            restarted = report.now()
            await until(lambda: ok_since(report, restarted) >= 20, load, timeout=30)
        finally:
            stop.set()
            await finish(load, report, TIMEOUT_S + REPLY_MARGIN + 5)
        busy = await parts.wait_idle(orchestrator, *agents)
        report.note(f"busy gauges after the load: {busy or 'none'}")
        fresh = await report.converse(
            bff.gateway,
            "fresh",
            "what is 6*7?",
            timeout_s=TIMEOUT_S,
            check=arithmetic(42),
            agents=["calculator"],
        )
        reconnects = await orchestrator.total("switchboard_nats_reconnects_total")
        report.note(f"orchestrator reconnects {reconnects:.0f}; fresh conversation {fresh.code}")

    summary = report.summary()
    report.assert_sound()
    assert fresh.code == "ok", summary
    assert not busy, f"parts still busy: {busy}\n{summary}"
    assert bff.pending == 0, summary
    assert reconnects >= 1, summary
    assert victim not in moved.get(ORCHESTRATOR, []), summary
    assert len(moved.get(ORCHESTRATOR, [])) == 1, summary
    assert len(moved.get(AGENT, [])) == 2, summary
    late = [o for o in report.since(killed + 4.0) if o.user != "fresh"]
    assert late, summary
    assert all(o.code == "ok" for o in late), summary


def _placement(where: dict[str, list[int]]) -> str:
    return ", ".join(
        f"{name.removeprefix('switchboard-')}@nats-{'/'.join(map(str, nodes))}"
        for name, nodes in sorted(where.items())
    )
