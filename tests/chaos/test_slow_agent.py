"""Chaos 5: a slow agent -- its work takes far longer than the conversations' deadlines.

Users ask for ``sleep 30`` (plus a ``whoami`` of their own) with a 2 s
deadline: each conversation ends with a ``timeout`` by its deadline (a partial
answer whose sleepy step timed out, the whoami step still answered), none
hangs, and the slow handlers do not keep running: they are cut at their
deadline or cancelled by their requester (remote cancellation, shown
explicitly by clients that go away mid-conversation, as a closed browser tab
does: the cancel travels client -> orchestrator -> agent). Afterwards the
system serves normally.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from switchboard.orchestrator import EmbeddedNatsServer

from .report import Report, whoami

if TYPE_CHECKING:
    from .conftest import Deploy, Parts

pytestmark = pytest.mark.slow

USERS = 12
GONE = 6
TIMEOUT_S = 2.0
#: How late past its deadline a timed-out conversation may end.
SMALL_ALLOWANCE = 1.0
AGENTS = ["sleepy", "whoami"]
CANCELLED = "switchboard_endpoint_cancelled_total"


async def test_slow_agent_requests_end_by_their_deadlines(
    nats_server: EmbeddedNatsServer, parts: Parts, deploy: Deploy
) -> None:
    report = Report("a slow agent (30 s of work, 2 s deadlines)")
    system = await deploy(nats_server.url, wait_for=AGENTS)
    orchestrator, agents, bff = system.orchestrator, system.agents["agents"], system.bff

    async with report.bounded(60):
        slow = [
            report.converse(
                bff.gateway,
                f"u{u:02d}",
                f"sleep 30; whoami u{u:02d}-slow",
                timeout_s=TIMEOUT_S,
                check=whoami(f"u{u:02d}-slow"),
                agents=AGENTS,
            )
            for u in range(USERS)
        ]
        gone = [
            report.abandon(
                bff.gateway,
                f"g{u:02d}",
                f"sleep 30; whoami g{u:02d}-gone",
                timeout_s=20.0,
                after=1.0,
                agents=AGENTS,
            )
            for u in range(GONE)
        ]
        results = await asyncio.gather(*slow, *gone)
        ended = report.now()
        report.note(f"{USERS} slow conversations ended; {GONE} clients went away after 1 s")
        busy = await parts.wait_idle(orchestrator, agents, timeout=10)
        idle_after = report.now() - ended
        report.note(f"busy gauges {idle_after:.2f} s later: {busy or 'none'}")
        sleepy_cut = await agents.total(
            "switchboard_endpoint_requests_total", endpoint="sleepy", outcome="timeout"
        )
        sleepy_cancelled = await agents.total(CANCELLED, endpoint="sleepy")
        orchestrator_cancelled = await orchestrator.total(CANCELLED, endpoint="orchestrator")
        report.note(
            f"sleepy handlers cut at their deadline {sleepy_cut:.0f}, cancelled by their "
            f"requester {sleepy_cancelled:.0f}; orchestrator handlers cancelled "
            f"{orchestrator_cancelled:.0f}"
        )
        after = await asyncio.gather(
            *(
                report.converse(
                    bff.gateway,
                    f"u{u:02d}",
                    f"sleep 0.2; whoami u{u:02d}-after",
                    timeout_s=TIMEOUT_S,
                    check=whoami(f"u{u:02d}-after"),
                    agents=AGENTS,
                )
                for u in range(USERS)
            )
        )
        report.note("afterwards: " + ", ".join(sorted({o.code for o in after})))

    summary = report.summary()
    report.assert_sound(allowed={"ok", "timeout", "partial:timeout"})
    timed_out = results[:USERS]
    for outcome in timed_out:
        assert outcome.base_code == "timeout", summary
        assert outcome.overrun <= SMALL_ALLOWANCE, summary
        assert outcome.ended - outcome.started >= TIMEOUT_S - 0.1, summary
    assert all(o.code == "abandoned" for o in results[USERS:]), summary
    # No slow handler outlived its deadline or its requester: 30 s of sleep, gone in seconds.
    assert not busy, f"parts still busy: {busy}\n{summary}"
    assert sleepy_cut + sleepy_cancelled == USERS + GONE, summary
    assert sleepy_cancelled >= GONE, summary  # remote cancellation reached the agent
    assert orchestrator_cancelled >= GONE, summary
    assert all(o.code == "ok" for o in after), summary
    assert bff.pending == 0, summary
