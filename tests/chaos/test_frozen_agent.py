"""Chaos 7: an agent process is frozen (SIGSTOP) mid-task, then thawed (SIGCONT).

A frozen process is worse than a dead one: its TCP connection stays open, so
nats-server keeps routing work to it and nobody gets "no responders". This is
what heartbeats are for. Each conversation runs ``sleepy`` (in the process that
freezes) and ``whoami`` (in another) in parallel: the sleepy steps already in
the frozen process fail as *silent* within a few heartbeats, new ones as *not
accepted*, while the whoami steps answer their own users. When the process is
thawed it wakes to a backlog -- the tasks it had, the tasks nobody collected,
the cancel notices for both -- and none of its late replies may reach anyone:
the orchestrator drops them as strays. Then the same process serves again and
nothing is left pending anywhere.
"""

from __future__ import annotations

import asyncio
import signal
from typing import TYPE_CHECKING

import pytest

from switchboard.orchestrator import EmbeddedNatsServer

from .report import Outcome, Report, first_whole

if TYPE_CHECKING:
    from .conftest import Deploy, Parts

pytestmark = pytest.mark.slow

USERS = 12
TIMEOUT_S = 20.0
AGENTS = ["sleepy", "whoami"]
#: Silence is noticed after 3 missed heartbeats (0.2 s each); this is the bound we assert.
NOTICED_WITHIN = 3.0


async def test_agent_process_frozen_mid_task_then_thawed(
    nats_server: EmbeddedNatsServer, parts: Parts, deploy: Deploy
) -> None:
    report = Report("an agent process frozen (SIGSTOP) mid-task, then thawed (SIGCONT)")
    system = await deploy(
        nats_server.url,
        agents={
            "sleepy": ["tests.support.agents:sleepy"],
            "whoami": ["tests.support.agents:whoami"],
        },
        wait_for=AGENTS,
    )
    orchestrator, bff = system.orchestrator, system.bff
    sleepy, helpers = system.agents["sleepy"], system.agents["whoami"]

    def ask(user: str, token: str, seconds: float) -> asyncio.Task[Outcome]:
        return asyncio.ensure_future(
            report.sleep_whoami(
                bff.gateway, user, token, seconds, timeout_s=TIMEOUT_S, agents=AGENTS
            )
        )

    async with report.bounded(90):
        first = await ask("warmup", "warmup-1", 0.1)
        assert first.code == "ok", report.summary()

        # Long enough that the frozen process still holds them when it is thawed.
        held = [ask(f"u{u:02d}", f"u{u:02d}-a", 12.0) for u in range(USERS)]
        await sleepy.wait_total("switchboard_endpoint_in_flight", USERS, endpoint="sleepy")
        # A worker says `accepted` at its first heartbeat tick (0.2 s), not on arrival (quick
        # work never does): let it, so the steps it holds are in its hands when it freezes.
        # Frozen before that, a step is indistinguishable from one still queued, and fails
        # as not accepted, as the steps sent during the freeze do.
        await asyncio.sleep(1.0)
        report.note(f"{USERS} sleepy steps in flight; SIGSTOP the sleepy process")
        sleepy.send_signal(signal.SIGSTOP)
        frozen = report.now()
        # Sent while it is frozen: nats-server still hands their sleepy steps to it.
        meanwhile = [ask(f"u{u:02d}", f"u{u:02d}-b", 0.1) for u in range(USERS)]
        cut = await asyncio.gather(*held)
        noticed = max(o.ended - report.t0 for o in cut) - frozen
        report.note(f"the held conversations answered {noticed:.2f} s after the freeze")
        unaccepted = await asyncio.gather(*meanwhile)
        report.note("the conversations sent during the freeze answered")

        strays_before = await orchestrator.total("switchboard_correlation_stray_replies_total")
        sleepy.send_signal(signal.SIGCONT)
        thawed = report.now()
        report.note(f"SIGCONT after {thawed - frozen:.2f} s frozen")
        # Its catalog entry may have lapsed while it could not answer $SRV.INFO: probe.
        probe, attempt = await first_whole(ask, AGENTS)
        report.note(f"first full success after the thaw: probe {attempt}")
        again = await asyncio.gather(*(ask(f"u{u:02d}", f"u{u:02d}-c", 0.5) for u in range(USERS)))
        busy = await parts.wait_idle(orchestrator, sleepy, helpers)
        report.note(f"busy gauges after the load: {busy or 'none'}")
        silent = await orchestrator.total(
            "switchboard_correlation_timeouts_total", target="ai.agents.sleepy", phase="silent"
        )
        queued = await orchestrator.total(
            "switchboard_correlation_timeouts_total",
            target="ai.agents.sleepy",
            phase="not_accepted",
        )
        strays = await orchestrator.total("switchboard_correlation_stray_replies_total")
        notices = await sleepy.total("switchboard_cancel_notices_total", direction="received")
        report.note(
            f"orchestrator: sleepy timeouts silent {silent:.0f}, not accepted {queued:.0f}; "
            f"stray replies {strays_before:.0f} -> {strays:.0f}; "
            f"sleepy received {notices:.0f} cancel notices"
        )

    summary = report.summary()
    report.assert_sound()
    # The steps it held failed by silence, long before the deadline; whoami still answered.
    for outcome in cut:
        assert outcome.code == "partial:timeout", summary
        assert outcome.failed_agents == ("sleepy",), summary
        assert outcome.ok_agents == ("whoami",), summary
        assert "silent" in outcome.detail, outcome.detail
    assert noticed < NOTICED_WITHIN, summary
    assert silent >= USERS, summary
    # The steps sent to it while frozen were never accepted: a clear error, whoami answered.
    for outcome in unaccepted:
        assert outcome.code == "partial:timeout", summary
        assert outcome.failed_agents == ("sleepy",), summary
        assert outcome.ok_agents == ("whoami",), summary
        assert "accepted" in outcome.detail, outcome.detail
    assert queued >= USERS, summary
    # Thawed: it heard the cancel notices for what it held, and nothing it sent late
    # reached a user (every answer above passed its whoami check in assert_sound).
    assert notices >= USERS, summary
    assert probe.code == "ok", summary
    for outcome in again:
        assert outcome.code == "ok", summary
        assert set(outcome.ok_agents) == set(AGENTS), summary
    assert not busy, f"parts still busy: {busy}\n{summary}"
    assert bff.pending == 0, summary
