"""Large answers end to end (agent -> orchestrator -> BFF -> HTTP): each byte sent once.

A conversation's output used to cross every hop three or four times (``step_finished``,
``answered``, and the reply's ``answer`` beside ``steps[].output``): a 900 KB answer was
an HTTP 413, and a burst of large SSE answers made nats-server drop a part as a slow
consumer, failing everyone's requests on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from switchboard.agents import builtin_agents
from switchboard.orchestrator import MAX_ANSWER_BYTES, EmbeddedNatsServer
from switchboard.orchestrator.testing import running_nats
from tests.helpers import metric
from tests.support.agents import large
from tests.support.system import (
    agents_running,
    bff_running,
    make_settings,
    orchestrator_running,
)


@contextlib.asynccontextmanager
async def system(nats_url: str, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(nats_url, http_port=0, **overrides)
    async with (
        agents_running(settings, large, builtin_agents()["calculator"]),
        orchestrator_running(settings),
        bff_running(settings) as http,
    ):
        yield http


@pytest.fixture
def nats_url(nats_server: EmbeddedNatsServer) -> str:
    return nats_server.url


def ask_for(size: int) -> dict[str, Any]:
    """A chat body whose answer is ``size`` characters (the ``large`` test agent)."""
    return {"message": f"large {size}", "agents": ["large"], "timeout_s": 60}


async def sse(http: httpx.AsyncClient, body: dict[str, Any]) -> list[tuple[str, str]]:
    """The (event, data) pairs of one SSE chat."""
    events: list[tuple[str, str]] = []
    event = ""
    async with http.stream("POST", "/v1/chat/stream", json=body, timeout=90) as r:
        assert r.status_code == 200
        async for line in r.aiter_lines():
            if line.startswith("event:"):
                event = line.removeprefix("event:").strip()
            elif line.startswith("data:"):
                events.append((event, line.removeprefix("data:").strip()))
    return events


async def test_the_largest_documented_answer_gets_through_as_json(nats_url: str) -> None:
    size = MAX_ANSWER_BYTES - 2  # its JSON: the text and two quotes
    async with system(nats_url) as http:
        r = await http.post("/v1/chat", json=ask_for(size), timeout=90)
        assert r.status_code == 200, r.text[:300]
        reply = r.json()
        assert len(reply["answer"]) == size
        assert reply["partial"] is False
        (step,) = reply["steps"]
        # The answer holds the output: the step keeps a preview, not a second copy.
        assert step["status"] == "ok"
        assert step["output_truncated"] is True
        assert step["output_size"] == size + 2
        assert len(step["output"]) < 2_000
        assert len(r.content) < size + 16_000


async def test_the_largest_documented_answer_streams_once(nats_url: str) -> None:
    size = MAX_ANSWER_BYTES - 2
    async with system(nats_url) as http:
        events = await sse(http, ask_for(size))
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "reply", kinds
    reply = json.loads(events[-1][1])
    assert len(reply["answer"]) == size
    finished = json.loads(next(data for kind, data in events if kind == "step_finished"))
    assert finished["detail"]["truncated"] is True
    assert finished["detail"]["size"] == size + 2
    answered = json.loads(next(data for kind, data in events if kind == "answered"))
    assert answered["detail"]["truncated"] is True
    assert answered["detail"]["size"] == size + 2
    assert answered["detail"]["partial"] is False
    # Everything the stream carried: the answer once, plus previews and the plan.
    assert sum(len(data) for _, data in events) < size + 16_000


async def test_an_answer_over_the_limit_is_a_502_naming_its_size(nats_url: str) -> None:
    size = MAX_ANSWER_BYTES + 1_000
    too_large = metric("switchboard_conversations_total", outcome="too_large")
    async with system(nats_url) as http:
        r = await http.post("/v1/chat", json=ask_for(size), timeout=90)
        assert r.status_code == 502, r.text[:300]
        assert metric("switchboard_conversations_total", outcome="too_large") == too_large + 1
        problem = r.json()
        assert problem["code"] == "too_large"
        assert problem["title"] == "Answer too large"
        assert f"{size + 2} bytes" in problem["detail"]
        assert f"limit of {MAX_ANSWER_BYTES} bytes" in problem["detail"]
        # The same through SSE: an error event with the same problem.
        events = await sse(http, ask_for(size))
        kind, data = events[-1]
        assert kind == "error"
        assert json.loads(data)["code"] == "too_large"
        assert json.loads(data)["status"] == 502
        # Small answers still work on the same parts.
        ok = await http.post("/v1/chat", json={"message": "what is 2+2", "agents": ["calculator"]})
        assert ok.status_code == 200


def varz(server: EmbeddedNatsServer) -> dict[str, Any]:
    url = f"http://127.0.0.1:{server.monitor_port}/varz"
    with urllib.request.urlopen(url, timeout=5) as response:
        data: dict[str, Any] = json.load(response)
    return data


async def test_a_large_answer_crosses_each_hop_once(nats_url: str) -> None:
    size = 500_000
    async with running_nats(monitor_port=-1) as server, system(server.url) as http:
        for stream in (False, True):
            before = await asyncio.to_thread(varz, server)
            if stream:
                assert (await sse(http, ask_for(size)))[-1][0] == "reply"
            else:
                assert (await http.post("/v1/chat", json=ask_for(size), timeout=90)).is_success
            after = await asyncio.to_thread(varz, server)
            # Two hops carry it (agent -> orchestrator, orchestrator -> BFF): about twice
            # the answer in and out of the server, not 5-8 times.
            sent_in = after["in_bytes"] - before["in_bytes"]
            sent_out = after["out_bytes"] - before["out_bytes"]
            assert 2 * size <= sent_in < 2.2 * size, (stream, sent_in)
            assert 2 * size <= sent_out < 2.2 * size, (stream, sent_out)


@pytest.mark.parametrize("stream", [True, False], ids=["sse", "json"])
async def test_a_burst_of_large_answers_leaves_other_users_alone(stream: bool) -> None:
    # SSE chats used to cut the BFF off NATS as a slow consumer, JSON chats the orchestrator:
    # either way every request on that connection failed ("worker went silent").
    chats, size = 100, 450_000  # what old releases sent four times: 180 MB to the BFF
    async with (
        running_nats(monitor_port=-1) as server,
        system(server.url, max_inflight_per_user=200) as http,
    ):
        burst_done = asyncio.Event()
        small_results: list[int] = []

        async def small_user() -> None:
            while not burst_done.is_set():
                r = await http.post(
                    "/v1/chat", json={"message": "what is 2+2", "agents": ["calculator"]}
                )
                small_results.append(r.status_code)
                await asyncio.sleep(0.05)

        async def one() -> str:
            if stream:
                kind, data = (await sse(http, ask_for(size)))[-1]
                assert kind == "reply", data[:300]
                return str(json.loads(data)["answer"])
            r = await http.post("/v1/chat", json=ask_for(size), timeout=90)
            assert r.status_code == 200, r.text[:300]
            return str(r.json()["answer"])

        async def burst() -> list[str]:
            try:
                return await asyncio.gather(*(one() for _ in range(chats)))
            finally:
                burst_done.set()

        async with asyncio.TaskGroup() as group:
            small = group.create_task(small_user())
            answers = group.create_task(burst())
        await small
        assert [len(answer) for answer in answers.result()] == [size] * chats
        assert small_results and set(small_results) == {200}, small_results
        stats = await asyncio.to_thread(varz, server)
        assert stats["slow_consumers"] == 0, stats["slow_consumer_stats"]
