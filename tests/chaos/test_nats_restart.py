"""Chaos 1: the nats-server is killed (SIGKILL) and restarted on the same port under load.

The orchestrator and the agents run as processes, the test is the BFF; many
users talk at once, each asking ``whoami`` with a token of their own. While
NATS is gone every request ends by its deadline with a clear code; once it is
back the parts reconnect by themselves and traffic resumes; nothing is left
pending anywhere; no answer reaches the wrong user.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from switchboard.orchestrator import EmbeddedNatsServer

from .report import REPLY_MARGIN, Report, finish, ok_since, run_users, until, whoami

if TYPE_CHECKING:
    from .conftest import Deploy, Parts

pytestmark = pytest.mark.slow

USERS = 16
TIMEOUT_S = 3.0
AGENTS = ["whoami", "upper"]


async def test_nats_server_killed_and_restarted_under_load(
    nats_server: EmbeddedNatsServer, parts: Parts, deploy: Deploy
) -> None:
    report = Report("nats-server SIGKILL + restart on the same port, under load")
    url = nats_server.url
    system = await deploy(url, wait_for=AGENTS, reconnect_time_wait=0.1)
    orchestrator, agents, bff = system.orchestrator, system.agents["agents"], system.bff

    async def one(user: int, n: int) -> None:
        name = f"u{user:02d}"
        token = f"{name}-{n}"
        outcome = await report.converse(
            bff.gateway,
            name,
            f"whoami {token}",
            timeout_s=TIMEOUT_S,
            check=whoami(token),
            agents=AGENTS,
        )
        await asyncio.sleep(0.02 if outcome.code == "ok" else 0.1)  # a failing user does not spin

    stop = asyncio.Event()
    async with report.bounded(90):
        load = asyncio.create_task(run_users(USERS, one, stop))
        try:
            await until(lambda: report.count("ok") >= 60, load)
            report.note(f"{report.count('ok')} ok before the kill; SIGKILL nats-server")
            await asyncio.to_thread(nats_server.kill)
            await asyncio.sleep(1.5)
            await asyncio.to_thread(nats_server.start)
            assert nats_server.url == url, "restarted on another port"
            restarted = report.now()
            report.note(f"nats-server restarted on {url}")
            await until(lambda: ok_since(report, restarted + 5.0) >= 60, load, timeout=40)
            report.note(f"{ok_since(report, restarted + 5.0)} ok started >5 s after restart")
        finally:
            stop.set()
            await finish(load, report, TIMEOUT_S + REPLY_MARGIN + 5)
        busy = await parts.wait_idle(orchestrator, agents)
        report.note(f"busy gauges after the load: {busy or 'none'}")
        fresh = await report.converse(
            bff.gateway,
            "fresh",
            "whoami fresh-1",
            timeout_s=TIMEOUT_S,
            check=whoami("fresh-1"),
            agents=AGENTS,
        )
        reconnects = await orchestrator.total("switchboard_nats_reconnects_total")
        report.note(f"orchestrator reconnects {reconnects:.0f}; fresh conversation {fresh.code}")

    summary = report.summary()
    report.assert_sound()
    assert fresh.code == "ok", summary
    assert not busy, f"parts still busy: {busy}\n{summary}"
    assert bff.pending == 0, summary
    assert reconnects >= 1, summary
    assert await agents.total("switchboard_nats_reconnects_total") >= 1, summary
    # Requests that started well after the restart all succeed.
    late = [o for o in report.since(restarted + 5.0) if o.user != "fresh"]
    assert late, summary
    assert all(o.code == "ok" for o in late), summary
