"""Chaos 4: one of two orchestrator replicas gets SIGTERM under load.

Two ``switchboard orchestrator`` processes share the queue group; users talk
without pause. The replica that is told to stop (SIGTERM, as Kubernetes does)
stops taking conversations, finishes the ones it is working on (short ones,
well within its 4 s grace: no ``shutting_down`` for them), and exits 0; new
conversations go to the other replica.
"""

from __future__ import annotations

import asyncio
import json
import signal
from typing import TYPE_CHECKING

import pytest

from switchboard.orchestrator import EmbeddedNatsServer

from .report import REPLY_MARGIN, Report, finish, ok_since, run_users, until, whoami

if TYPE_CHECKING:
    from .conftest import Deploy, Parts

pytestmark = pytest.mark.slow

USERS = 12
TIMEOUT_S = 10.0
GRACE_S = 4.0
AGENTS = ["sleepy", "whoami"]
SERVED = "switchboard_endpoint_requests_total"


async def test_orchestrator_replica_sigterm_under_load(
    nats_server: EmbeddedNatsServer, parts: Parts, deploy: Deploy
) -> None:
    report = Report("one of two orchestrator replicas gets SIGTERM under load")
    system = await deploy(
        nats_server.url,
        orchestrators=["orchestrator-a", "orchestrator-b"],
        orchestrator_env={"SWITCHBOARD_SHUTDOWN_GRACE": str(GRACE_S)},
        wait_for=AGENTS,
    )
    (leaving, staying), agents, bff = system.orchestrators, system.agents["agents"], system.bff

    async def one(user: int, n: int) -> None:
        name = f"u{user:02d}"
        await report.sleep_whoami(
            bff.gateway, name, f"{name}-{n}", 0.6, timeout_s=TIMEOUT_S, agents=AGENTS
        )

    stop = asyncio.Event()
    async with report.bounded(90):
        load = asyncio.create_task(run_users(USERS, one, stop))
        try:
            await until(lambda: report.count("ok") >= 3 * USERS, load)
            served_a = await leaving.total(SERVED, endpoint="orchestrator")
            served_b = await staying.total(SERVED, endpoint="orchestrator")
            in_flight = await leaving.total("switchboard_endpoint_in_flight")
            report.note(
                f"served so far: a {served_a:.0f}, b {served_b:.0f}; "
                f"a has {in_flight:.0f} in flight; SIGTERM a"
            )
            leaving.send_signal(signal.SIGTERM)
            termed = report.now()
            code = await leaving.wait(GRACE_S + 10)
            exited = report.now()
            report.note(f"a exited with {code} after {exited - termed:.2f} s")
            before_b = await staying.total(SERVED, endpoint="orchestrator")
            await until(lambda: ok_since(report, exited) >= 3 * USERS, load)
            after_b = await staying.total(SERVED, endpoint="orchestrator")
            report.note(f"b served {after_b - before_b:.0f} conversations after a left")
        finally:
            stop.set()
            await finish(load, report, TIMEOUT_S + REPLY_MARGIN + 5)
        crossing = [
            o for o in report.outcomes if o.started - report.t0 < termed < o.ended - report.t0
        ]
        report.note(
            f"{len(crossing)} conversations were in flight at the SIGTERM: "
            + ", ".join(sorted({o.code for o in crossing}))
        )
        busy = await parts.wait_idle(staying, agents)
        report.note(f"busy gauges after the load: {busy or 'none'}")
        fresh = await report.converse(
            bff.gateway,
            "fresh",
            "sleep 0.1; whoami fresh-1",
            timeout_s=TIMEOUT_S,
            check=whoami("fresh-1"),
            agents=AGENTS,
        )

    summary = report.summary()
    report.assert_sound(allowed={"ok"})
    assert fresh.code == "ok", summary
    assert served_a > 0 and served_b > 0, f"both replicas must have served\n{summary}"
    assert code == 0, f"exit {code}\n{leaving.log_tail()}"
    # Its in-flight conversations finished: they were answered, none was cut short.
    crossing = [o for o in report.outcomes if o.started - report.t0 < termed < o.ended - report.t0]
    report.note(f"{len(crossing)} conversations were in flight at the SIGTERM")
    assert crossing, summary
    assert all(o.code == "ok" for o in crossing), summary
    events = [json.loads(line) for line in leaving.log_text().splitlines() if line.startswith("{")]
    cut_short = [e for e in events if "cut short" in e.get("event", "")]
    assert not cut_short, f"{cut_short}\n{summary}"
    assert exited - termed < GRACE_S + 3, summary
    assert after_b > before_b, summary
    assert not busy, f"parts still busy: {busy}\n{summary}"
    assert bff.pending == 0, summary
