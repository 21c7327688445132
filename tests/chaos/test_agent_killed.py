"""Chaos 3: an agent process is killed (SIGKILL) mid-task.

Each conversation runs two steps in parallel: ``sleepy`` (in the process that
gets killed) and ``whoami`` (in another one). When the sleepy process dies,
only the sleepy steps fail -- noticed by their missing heartbeats in about a
second, far before the conversations' 20 s deadline -- while the whoami steps
still answer their own users. A replacement sleepy process is started and
conversations succeed again, with nothing left pending anywhere.
"""

from __future__ import annotations

import asyncio
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


async def test_agent_process_killed_mid_task(
    nats_server: EmbeddedNatsServer, parts: Parts, deploy: Deploy
) -> None:
    report = Report("an agent process SIGKILLed mid-task, then replaced")
    url = nats_server.url
    system = await deploy(
        url,
        agents={
            "sleepy": ["tests.support.agents:sleepy"],
            "whoami": ["tests.support.agents:whoami", "tests.support.agents:upper"],
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
        # Warm up: the orchestrator knows both agents and a conversation works end to end.
        first = await ask("warmup", "warmup-1", 0.1)
        assert first.code == "ok", report.summary()

        doomed = [ask(f"u{u:02d}", f"u{u:02d}-a", 5.0) for u in range(USERS)]
        await sleepy.wait_total("switchboard_endpoint_in_flight", USERS, endpoint="sleepy")
        # A worker says `accepted` at its first heartbeat tick (0.2 s), not on arrival: let
        # it, so the steps are in its hands when it dies (killed before that, a step is
        # indistinguishable from one still queued: not accepted, retried, no responders).
        await asyncio.sleep(1.0)
        report.note(f"{USERS} sleepy steps in flight; SIGKILL the sleepy process")
        await sleepy.kill()
        killed = report.now()
        cut = await asyncio.gather(*doomed)
        noticed = max(o.ended - report.t0 for o in cut) - killed
        report.note(f"every conversation answered {noticed:.2f} s after the kill")

        replacement = await parts.agent("sleepy-2", "tests.support.agents:sleepy", nats_url=url)
        await parts.ready(replacement)
        report.note("replacement sleepy process ready")
        # The orchestrator finds it (its catalog refreshes every 0.5 s); then all succeed.
        probe, attempt = await first_whole(ask, AGENTS)
        report.note(f"first full success after the replacement: probe {attempt}")
        again = await asyncio.gather(*(ask(f"u{u:02d}", f"u{u:02d}-b", 0.5) for u in range(USERS)))
        busy = await parts.wait_idle(orchestrator, helpers, replacement)
        report.note(f"busy gauges after the load: {busy or 'none'}")
        silent = await orchestrator.total(
            "switchboard_correlation_timeouts_total", target="ai.agents.sleepy", phase="silent"
        )
        report.note(f"orchestrator: {silent:.0f} sleepy requests timed out as silent")

    summary = report.summary()
    report.assert_sound()
    # Only the killed agent's steps failed, by missing heartbeats, long before the deadline.
    for outcome in cut:
        assert outcome.code == "partial:timeout", summary
        assert outcome.failed_agents == ("sleepy",), summary
        assert outcome.ok_agents == ("whoami",), summary
        assert "silent" in outcome.detail or "went" in outcome.detail, outcome.detail
    assert noticed < NOTICED_WITHIN, summary
    assert silent >= USERS, summary
    # After the replacement: everything succeeds again.
    assert probe.code == "ok", summary
    for outcome in again:
        assert outcome.code == "ok", summary
        assert set(outcome.ok_agents) == set(AGENTS), summary
    assert not busy, f"parts still busy: {busy}\n{summary}"
    assert bff.pending == 0, summary
