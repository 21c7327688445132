"""Shutdown has an upper bound, whatever a handler does with its cancellation.

An agent whose handler swallows cancellation used to keep its SIGTERM waiting
for as long as the handler liked (34 s with a 10 s grace): Kubernetes then
kills it mid-write. Now the part stops within its grace plus a short
cut-short window, says which handler overstayed, and its caller is told
``shutting_down`` instead of waiting for its deadline.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from switchboard.agents import call_agent
from switchboard.orchestrator.core import ErrorCode, NoRespondersError, RemoteError, Requester
from switchboard.orchestrator.runtime import EmbeddedNatsServer

STUBBORN = textwrap.dedent(
    """
    import asyncio
    from switchboard.agents import agent

    @agent("stubborn", "Never stops when asked. Example: 'stay'")
    async def stubborn(task, ctx):
        while True:
            try:
                await asyncio.sleep(30)
                return "done"
            except asyncio.CancelledError:
                pass  # swallowed: the bug this test guards against
    """
)

GRACE = 1.0


async def test_a_handler_that_swallows_cancellation_cannot_hold_the_shutdown(
    nats_server: EmbeddedNatsServer, requester: Requester, tmp_path: Path
) -> None:
    (tmp_path / "stubborn_agent.py").write_text(STUBBORN)
    log = tmp_path / "agent.log"
    with log.open("wb") as out:
        agent = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "switchboard", "agent", "stubborn_agent:stubborn",
            env={
                **os.environ,
                "PYTHONPATH": str(tmp_path),
                "SWITCHBOARD_NATS_URL": nats_server.url,
                "SWITCHBOARD_METRICS_PORT": "0",
                "SWITCHBOARD_SHUTDOWN_GRACE": str(GRACE),
                "SWITCHBOARD_LOG_FORMAT": "json",
            },
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            call = None
            for _ in range(300):
                call = asyncio.create_task(call_agent(requester, "stubborn", "stay", timeout=60))
                await asyncio.sleep(0.3)
                if not call.done():
                    break  # it is running in the agent
                with pytest.raises(NoRespondersError):
                    await call
            assert call is not None and not call.done()
            started = time.monotonic()
            agent.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(agent.wait(), 30)
            took = time.monotonic() - started
            with pytest.raises(RemoteError) as caught:
                await asyncio.wait_for(call, 5)  # answered, not left to its 60 s deadline
        finally:
            if agent.returncode is None:
                agent.kill()
                await agent.wait()
    assert caught.value.code is ErrorCode.SHUTTING_DOWN
    assert code == 0
    assert took < GRACE + 4.0, f"stopped after {took:.1f} s with a {GRACE} s grace"
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    overstayed = [line for line in lines if "overstayed" in line["event"]]
    assert overstayed, [line["event"] for line in lines]
    assert overstayed[0]["level"] == "warning"
    assert overstayed[0]["endpoint"] == "stubborn"
    assert overstayed[0]["correlation_ids"] == [caught.value.correlation_id]
