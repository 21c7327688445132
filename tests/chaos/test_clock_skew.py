"""A part whose wall clock is wrong neither expires nor stretches anyone's work.

Each part runs under Debian's ``faketime`` (libfaketime), its wall clock 20 s
ahead or behind the rest, its monotonic clock untouched -- a machine whose
NTP is off. Budgets travel as the time left (``Switchboard-Timeout``), read
on arrival against the receiver's own monotonic clock, so the skew changes
nothing: every task runs once and answers, and the agent's ``time_left()``
is the budget it was given.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from switchboard.agents import call_agent
from switchboard.orchestrator.core import (
    ConversationReply,
    ConversationRequest,
    Deadline,
    NoRespondersError,
    Requester,
)
from switchboard.orchestrator.runtime import EmbeddedNatsServer, free_port


@pytest.fixture(autouse=True)
def _faketime_installed() -> None:
    assert shutil.which("faketime"), "faketime is not installed: apt-get install faketime"


SKEWS = ["+20s", "-20s"]

#: An agent that reports the time it was given, as it sees it.
TIME_LEFT_AGENT = textwrap.dedent(
    """
    from switchboard.agents import agent

    @agent("timeleft", "Says how much time it has. Example: 'how long'")
    async def timeleft(task, ctx):
        return round(ctx.time_left(), 3)
    """
)


@asynccontextmanager
async def skewed(
    skew: str | None, *args: str, nats_url: str, tmp_path: Path, metrics_port: int = 0
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``python -m switchboard ARGS`` with its wall clock ``skew`` off (None: not skewed)."""
    env = {
        **os.environ,
        "SWITCHBOARD_NATS_URL": nats_url,
        "SWITCHBOARD_METRICS_PORT": str(metrics_port),
        "SWITCHBOARD_LOG_LEVEL": "warning",
        "PYTHONPATH": str(tmp_path),
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }
    command = [sys.executable, "-m", "switchboard", *args]
    if skew is not None:
        command = ["faketime", "-f", skew, *command]
    log = (tmp_path / f"{args[0]}-{skew}.log").open("wb")
    # faketime runs the command as its child: a session of their own, so both are stopped
    process = await asyncio.create_subprocess_exec(
        *command,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 30)
        log.close()


async def _until_served(call: object, process: asyncio.subprocess.Process) -> object:
    for _ in range(300):
        try:
            return await call()  # type: ignore[operator]
        except NoRespondersError:
            assert process.returncode is None, "the part exited"
            await asyncio.sleep(0.1)
    pytest.fail("the part never answered")


@pytest.mark.parametrize("skew", SKEWS)
async def test_an_agent_with_a_skewed_clock_runs_its_tasks_on_the_budget_given(
    skew: str, nats_server: EmbeddedNatsServer, requester: Requester, tmp_path: Path
) -> None:
    (tmp_path / "timeleft_agent.py").write_text(TIME_LEFT_AGENT)
    async with skewed(
        skew, "agent", "calculator", "timeleft_agent:timeleft",
        nats_url=nats_server.url, tmp_path=tmp_path,
    ) as agent:  # fmt: skip
        result = await _until_served(
            lambda: call_agent(requester, "calculator", "17*23", timeout=8), agent
        )
        assert result.ok, result.error  # type: ignore[attr-defined]
        assert "391" in str(result.output)  # type: ignore[attr-defined]
        told = await call_agent(requester, "timeleft", "how long", timeout=8)
        assert told.ok, told.error
        assert 6.0 < float(told.output) <= 8.0, told.output  # not 8 -+ 20 s


@pytest.mark.parametrize("skew", SKEWS)
async def test_an_orchestrator_with_a_skewed_clock_answers_conversations(
    skew: str, nats_server: EmbeddedNatsServer, requester: Requester, tmp_path: Path
) -> None:
    async with (
        skewed(None, "agent", "calculator", nats_url=nats_server.url, tmp_path=tmp_path),
        skewed(skew, "orchestrator", nats_url=nats_server.url, tmp_path=tmp_path) as orch,
    ):

        async def converse() -> ConversationReply:
            return await requester.call(
                requester.subjects.converse,
                ConversationRequest(
                    correlation_id="conv-skew-1", user_id="skew", message="what is 17*23?"
                ),
                ConversationReply,
                correlation_id="conv-skew-1",
                deadline=Deadline.after(15),
            )

        reply = await _until_served(converse, orch)
        # the catalog may not list the agent yet on the first answer: ask until it does
        for _ in range(100):
            if "391" in reply.answer:  # type: ignore[attr-defined]
                break
            await asyncio.sleep(0.1)
            reply = await converse()
        assert reply.error is None, reply.error  # type: ignore[attr-defined]
        assert "391" in reply.answer  # type: ignore[attr-defined]


async def test_work_whose_budget_is_spent_on_arrival_is_dropped_counted_and_logged(
    nats_server: EmbeddedNatsServer, requester: Requester, tmp_path: Path
) -> None:
    port = free_port()
    async with skewed(
        None, "agent", "calculator", nats_url=nats_server.url, tmp_path=tmp_path, metrics_port=port
    ) as agent:
        await _until_served(lambda: call_agent(requester, "calculator", "1+1", timeout=8), agent)
        nc = requester.nc
        await nc.publish(
            requester.subjects.agent("calculator"),
            b'{"correlation_id":"conv-spent-1","task_id":"s1","agent":"calculator",'
            b'"instruction":"2+2"}',
            reply=nc.new_inbox(),
            headers={"Correlation-Id": "conv-spent-1", "Switchboard-Timeout": "0"},
        )
        await nc.flush()
        lines: list[dict[str, object]] = []
        for _ in range(100):
            log = (tmp_path / "agent-None.log").read_text()
            lines = [json.loads(line) for line in log.splitlines() if "conv-spent-1" in line]
            if lines:
                break
            await asyncio.sleep(0.1)
        assert [(line["level"], line["event"]) for line in lines] == [
            ("warning", "request dropped: its time was spent when it arrived")
        ]
        async with httpx.AsyncClient() as http:
            text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
        assert 'switchboard_endpoint_expired_total{endpoint="calculator"} 1.0' in text
