"""Chaos 8: one of two orchestrator replicas is frozen (SIGSTOP) under load, then thawed.

Users talk without pause to two replicas in one queue group. When one freezes
(a stop-the-world pause, a wedged event loop, a VM stall) nats-server still
hands it about half the new conversations. The BFF notices a conversation in
its hands by the missing heartbeats (a clear ``timeout`` well before the
deadline) and one it never took by the missing ``accepted``: nobody took that
one, so it is sent again, and lands on the other replica or -- again on the
frozen one -- ends in a clear ``timeout`` too. The other replica keeps
answering. Thawed, the replica wakes to requests whose
waiters are gone and to their cancel notices; whatever it still sends must not
reach anyone (the BFF drops it as stray), and it serves normally again.
"""

from __future__ import annotations

import asyncio
import signal
from typing import TYPE_CHECKING

import pytest

from switchboard.orchestrator import EmbeddedNatsServer
from switchboard.orchestrator.core.metrics import CORRELATION_STRAY

from .report import REPLY_MARGIN, Report, finish, ok_since, run_users, until

if TYPE_CHECKING:
    from .conftest import Deploy, Parts

pytestmark = pytest.mark.slow

USERS = 12
TIMEOUT_S = 10.0
FROZEN_S = 4.0
AGENTS = ["sleepy", "whoami"]
SERVED = "switchboard_endpoint_requests_total"
#: The chaos client asks for heartbeats every 0.3 s (silent after 0.9 s) and gives a
#: conversation 2 s to be accepted, twice: the slowest clear error while frozen, with slack.
ACCEPT_S = 2.0
NOTICED_WITHIN = 2 * ACCEPT_S + 1.5


async def test_orchestrator_replica_frozen_under_load_then_thawed(
    nats_server: EmbeddedNatsServer, parts: Parts, deploy: Deploy
) -> None:
    report = Report("one of two orchestrator replicas frozen (SIGSTOP) under load, then thawed")
    system = await deploy(
        nats_server.url,
        orchestrators=["orchestrator-a", "orchestrator-b"],
        wait_for=AGENTS,
    )
    (freezing, staying), agents, bff = system.orchestrators, system.agents["agents"], system.bff

    async def one(user: int, n: int) -> None:
        name = f"u{user:02d}"
        await report.sleep_whoami(
            bff.gateway, name, f"{name}-{n}", 0.3, timeout_s=TIMEOUT_S, agents=AGENTS
        )

    stop = asyncio.Event()
    async with report.bounded(90):
        load = asyncio.create_task(run_users(USERS, one, stop))
        try:
            await until(lambda: report.count("ok") >= 3 * USERS, load)
            served_a = await freezing.total(SERVED, endpoint="orchestrator")
            report.note(f"a served {served_a:.0f} so far; SIGSTOP a")
            freezing.send_signal(signal.SIGSTOP)
            frozen = report.now()
            served_b = await staying.total(SERVED, endpoint="orchestrator")
            await asyncio.sleep(FROZEN_S)
            during_b = await staying.total(SERVED, endpoint="orchestrator") - served_b
            strays_before = client_strays()
            freezing.send_signal(signal.SIGCONT)
            thawed = report.now()
            report.note(f"SIGCONT after {thawed - frozen:.2f} s; b served {during_b:.0f} meanwhile")
            # Served normally again: a full round per user after the thaw, both replicas busy.
            await until(lambda: ok_since(report, thawed + 1.0) >= 3 * USERS, load)
            after_a = await freezing.total(SERVED, endpoint="orchestrator")
            report.note(f"a served {after_a - served_a:.0f} after the freeze (incl. its backlog)")
        finally:
            stop.set()
            await finish(load, report, TIMEOUT_S + REPLY_MARGIN + 5)
        busy = await parts.wait_idle(freezing, staying, agents)
        report.note(f"busy gauges after the load: {busy or 'none'}")
        strays = client_strays()
        report.note(f"stray replies dropped by the client: {strays_before:.0f} -> {strays:.0f}")

    summary = report.summary()
    # Everything ended clearly, in time, with its own user's answer; while frozen some
    # conversations could only end in a timeout.
    report.assert_sound(allowed={"ok", "timeout"})
    caught = [o for o in report.outcomes if o.code == "timeout"]
    for outcome in caught:
        assert frozen - 1.0 < outcome.ended - report.t0 < thawed + 1.0, summary
        assert outcome.ended - outcome.started < NOTICED_WITHIN, summary
        assert "silent" in outcome.detail or "accepted" in outcome.detail, outcome.detail
    # Sent to the frozen replica, not accepted, sent again, answered by the other one.
    rescued = [
        o
        for o in report.since(frozen)
        if o.code == "ok" and o.ended - o.started >= ACCEPT_S and o.started - report.t0 < thawed
    ]
    report.note(f"{len(caught)} timeouts, {len(rescued)} answered after a second send")
    assert rescued, f"no conversation was sent again\n{report.summary()}"
    assert during_b > 0, f"the other replica must have kept answering\n{summary}"
    assert after_a > served_a, f"the thawed replica must serve again\n{summary}"
    late = [o for o in report.since(thawed + 1.0) if o.code != "ok"]
    assert not late, summary
    assert not busy, f"parts still busy: {busy}\n{summary}"
    assert bff.pending == 0, summary


def client_strays() -> float:
    """Stray replies dropped by the trackers of this process (the test's BFF)."""
    return sum(
        sample.value
        for metric in CORRELATION_STRAY.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    )
