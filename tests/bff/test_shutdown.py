"""Stopping the BFF mid-conversation answers every caller: 503 shutting_down, never a bare 500.

A rollout stops BFF pods while long conversations run. What cannot finish
within the grace is answered as problem+json 503 ``shutting_down`` with
``Retry-After`` (JSON clients), or an ``error`` event (SSE clients): both
know to retry elsewhere. No error-level traceback is logged for it.
"""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import httpx

from switchboard.orchestrator.runtime import ChildProcess, EmbeddedNatsServer, free_port

GRACE = 1.5


async def test_a_bff_stopped_mid_conversation_answers_shutting_down(
    nats_server: EmbeddedNatsServer, tmp_path: Path
) -> None:
    env = {"SWITCHBOARD_NATS_URL": nats_server.url, "SWITCHBOARD_LOG_FORMAT": "json"}
    port, metrics = free_port(), free_port()
    agent = ChildProcess(
        "agent",
        ["agent", "tests.support.agents:sleepy"],
        env={**env, "SWITCHBOARD_METRICS_PORT": str(free_port())},
        log=tmp_path / "agent.log",
    )
    orchestrator = ChildProcess(
        "orchestrator",
        ["orchestrator"],
        env={**env, "SWITCHBOARD_METRICS_PORT": str(metrics)},
        log=tmp_path / "orchestrator.log",
        ready_url=f"http://127.0.0.1:{metrics}/readyz",
    )
    bff = ChildProcess(
        "bff",
        ["bff", "--http-port", str(port)],
        env={**env, "SWITCHBOARD_SHUTDOWN_GRACE": str(GRACE)},
        log=tmp_path / "bff.log",
        ready_url=f"http://127.0.0.1:{port}/readyz",
    )
    body = {"message": "sleep 20", "agents": ["sleepy"]}
    async with (
        agent,
        orchestrator,
        bff,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http,
    ):
        for _ in range(100):  # the orchestrator has discovered the agent
            agents = (await http.get("/v1/agents")).json()
            if any(a["name"] == "sleepy" for a in agents):
                break
            await asyncio.sleep(0.1)

        async def sse() -> list[tuple[str, str]]:
            events: list[tuple[str, str]] = []
            async with http.stream("POST", "/v1/chat/stream", json=body) as response:
                kind = ""
                async for line in response.aiter_lines():
                    if line.startswith("event:"):
                        kind = line.split(":", 1)[1].strip()
                    elif line.startswith("data:"):
                        events.append((kind, line.split(":", 1)[1].strip()))
            return events

        plain = asyncio.create_task(http.post("/v1/chat", json=body))
        stream = asyncio.create_task(sse())
        await asyncio.sleep(1.0)  # both conversations are running in the agent
        assert not plain.done() and not stream.done()
        bff.send_signal(signal.SIGTERM)
        response = await asyncio.wait_for(plain, 15)
        events = await asyncio.wait_for(stream, 15)
        assert await asyncio.wait_for(bff.wait(), 15) == 0

    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "shutting_down"
    assert "retry-after" in response.headers
    assert events, "the stream ended with nothing"
    kind, data = events[-1]
    assert kind == "error", events
    assert json.loads(data)["code"] == "shutting_down"
    errors = [
        line
        for line in (tmp_path / "bff.log").read_text().splitlines()
        if line.startswith("{") and json.loads(line)["level"] in ("error", "critical")
    ]
    assert errors == []
