"""A normal run under the shipped NATS permissions is quiet: no warning, no unknown stray.

The orchestrator and an agent run as their own processes, logged in as their
users of deploy/nats/auth.conf; this test is the BFF (user ``bff``, inbox
``_INBOX_bff``) and holds a few conversations, then stays long enough for the
inbox watchdogs to probe. A permission violation, an inbox re-subscription or
an ``unknown`` stray reply here is a false alarm: those are the signals meant
to reveal a rogue part or forged replies.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import nats
import pytest

from switchboard.orchestrator.core import (
    ConversationReply,
    ConversationRequest,
    Deadline,
    NoRespondersError,
    Requester,
    RequestOptions,
    new_request_id,
)
from switchboard.orchestrator.runtime import EmbeddedNatsServer, free_port
from tests.helpers import metric
from tests.support.nats_users import login, password, shipped_server

pytestmark = pytest.mark.slow

#: Longer than two inbox probes (5 s apart) of every part.
QUIET_FOR = 11.0


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedNatsServer]:
    with shipped_server() as srv:
        yield srv


@asynccontextmanager
async def part(
    args: list[str], env: dict[str, str], log: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "switchboard",
            *args,
            env={**os.environ, **env, "SWITCHBOARD_LOG_FORMAT": "json"},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            yield process
        finally:
            if process.returncode is None:
                process.terminate()
                await asyncio.wait_for(process.wait(), 30)


def _noisy(log: Path) -> list[str]:
    lines = []
    for line in log.read_text().splitlines():
        try:
            level = json.loads(line).get("level")
        except ValueError:
            level = "unparsed"
        if level not in ("debug", "info"):
            lines.append(line)
    return lines


async def test_a_normal_run_under_the_shipped_permissions_logs_no_warning(
    server: EmbeddedNatsServer, tmp_path: Path
) -> None:
    metrics_port = free_port()
    common = {"SWITCHBOARD_NATS_URL": server.url, "SWITCHBOARD_LOG_LEVEL": "info"}
    orchestrator_env = {
        **common,
        **login("orchestrator", "_INBOX_orchestrator"),
        "SWITCHBOARD_METRICS_PORT": str(metrics_port),
    }
    agent_env = {**common, **login("agent-calculator"), "SWITCHBOARD_METRICS_PORT": "0"}
    orchestrator_log, agent_log = tmp_path / "orchestrator.log", tmp_path / "agent.log"
    nc = await nats.connect(
        server.url, user="bff", password=password("bff"), inbox_prefix=b"_INBOX_bff"
    )
    unknown = metric("switchboard_correlation_stray_replies_total", reason="unknown")
    try:
        async with (
            part(["orchestrator"], orchestrator_env, orchestrator_log),
            part(["agent", "calculator"], agent_env, agent_log),
            Requester(nc, inbox_prefix="_INBOX_bff", probe_interval=1.0) as requester,
        ):

            async def converse(n: int) -> ConversationReply:
                return await requester.call(
                    requester.subjects.converse,
                    ConversationRequest(
                        correlation_id=f"conv-bff-{n}", user_id="bff", message=f"what is {n}*3?"
                    ),
                    ConversationReply,
                    correlation_id=f"conv-bff-{n}",
                    deadline=Deadline.after(10),
                    # as the BFF's ConversationClient sends them: claimed in JetStream KV
                    options=RequestOptions(request_id=new_request_id()),
                )

            for _ in range(300):  # until both parts are up and the agent is discovered
                try:
                    if "= 3" in (await converse(1)).answer:
                        break
                except NoRespondersError:
                    pass
                await asyncio.sleep(0.1)
            replies = await asyncio.gather(*(converse(n) for n in range(2, 42)))
            assert [r.error for r in replies] == [None] * 40
            assert all(f"= {3 * n}" in r.answer for n, r in zip(range(2, 42), replies, strict=True))
            await asyncio.sleep(QUIET_FOR)
            async with httpx.AsyncClient() as http:
                scraped = (await http.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
    finally:
        await nc.close()
    assert _noisy(orchestrator_log) == []
    assert _noisy(agent_log) == []
    assert 'switchboard_correlation_stray_replies_total{reason="unknown"}' not in scraped
    assert metric("switchboard_correlation_stray_replies_total", reason="unknown") == unknown
