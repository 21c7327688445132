"""``switchboard up`` end to end over real HTTP: offline answers, SSE, many users at once."""

from __future__ import annotations

import asyncio
import json
import re

import httpx

from tests.support.up import USERS, UpProcess, key_for

UUID4 = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
CORRELATION = re.compile(rf"^conv-local-{UUID4}$")


async def test_a_multi_step_question_is_answered_offline(switchboard_up: UpProcess) -> None:
    async with httpx.AsyncClient(base_url=switchboard_up.url, timeout=30) as http:
        response = await http.post(
            "/v1/chat", json={"message": "what is 17*23, and what time is it in Tokyo?"}
        )
    assert response.status_code == 200
    body = response.json()
    assert "391" in body["answer"]
    assert "Tokyo" in body["answer"]
    assert CORRELATION.match(body["correlation_id"])
    assert response.headers["x-correlation-id"] == body["correlation_id"]
    assert [s["agent"] for s in body["steps"]] == ["calculator", "clock"]
    assert all(s["duration_ms"] > 0 for s in body["steps"])


async def test_sse_events_arrive_in_order_and_end_with_the_answer(
    switchboard_up: UpProcess,
) -> None:
    events: list[tuple[str, dict]] = []
    async with (
        httpx.AsyncClient(base_url=switchboard_up.url, timeout=30) as http,
        http.stream(
            "POST",
            "/v1/chat/stream",
            json={"message": "what is 6*7 then count the words of the result"},
        ) as r,
    ):
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        kind = None
        async for line in r.aiter_lines():
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and kind:
                events.append((kind, json.loads(line.split(":", 1)[1])))
    kinds = [k for k, _ in events]
    assert kinds[0] == "planned"
    assert kinds[-2:] == ["answered", "reply"]
    seqs = [data["seq"] for kind, data in events if kind != "reply"]
    assert seqs == sorted(seqs) == list(range(1, len(seqs) + 1))
    assert "42" in events[-1][1]["answer"]


async def test_200_users_x_5_requests_never_mix(switchboard_keys: UpProcess) -> None:
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=switchboard_keys.url, timeout=120, limits=limits) as http:

        async def user(u: int) -> list[str]:
            name = USERS[u]
            ids = []
            for n in range(5):
                a, b = u + 2, n + 3
                r = await http.post(
                    "/v1/chat",
                    json={"message": f"what is {a}*{b}"},
                    headers={"Authorization": f"Bearer {key_for(name)}"},
                )
                assert r.status_code == 200, r.text
                body = r.json()
                assert f"{a} * {b} = {a * b}" in body["answer"], body["answer"]
                assert re.match(rf"^conv-{name}-{UUID4}$", body["correlation_id"])
                ids.append(body["correlation_id"])
            return ids

        results = await asyncio.gather(*(user(u) for u in range(200)))
    ids = [i for batch in results for i in batch]
    assert len(ids) == 1000
    assert len(set(ids)) == 1000
