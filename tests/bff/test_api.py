"""The HTTP API in-process against real NATS: auth, isolation, errors, backpressure."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from switchboard.agents import builtin_agents
from switchboard.bff import build_bff
from switchboard.orchestrator import MAX_MESSAGE_CHARS, ConfigurationError, Runtime, Settings
from tests.helpers import eventually, metric
from tests.support.agents import ALL as TEST_AGENTS
from tests.support.system import (
    agents_running,
    bff_running,
    make_settings,
    orchestrator_running,
)

ALICE = "alice-key-0123456789"
BOB = "bob-key-0123456789ab"


@contextlib.asynccontextmanager
async def system(nats_url: str, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(nats_url, http_port=0, **overrides)
    async with (
        agents_running(settings, *builtin_agents().values(), *TEST_AGENTS),
        orchestrator_running(settings),
        bff_running(settings) as http,
    ):
        yield http


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def nats_url(nats_server: Any) -> str:
    return str(nats_server.url)


async def test_a_missing_or_wrong_key_is_401(nats_url: str) -> None:
    async with system(nats_url, api_keys=f"alice:{ALICE}") as http:
        for headers in ({}, bearer("wrong-key-0000000000"), {"Authorization": "Basic abc"}):
            r = await http.post("/v1/chat", json={"message": "what is 1+1"}, headers=headers)
            assert r.status_code == 401
            assert r.headers["content-type"] == "application/problem+json"
            assert r.headers["www-authenticate"].startswith("Bearer")
            assert r.json()["code"] == "unauthorized"
        ok = await http.post("/v1/chat", json={"message": "what is 1+1"}, headers=bearer(ALICE))
        assert ok.status_code == 200
        assert ok.json()["correlation_id"].startswith("conv-alice-")


async def test_a_user_cannot_read_another_users_conversation(nats_url: str) -> None:
    async with system(nats_url, api_keys=f"alice:{ALICE},bob:{BOB}") as http:
        r = await http.post(
            "/v1/chat",
            json={"message": "what is 2+2", "conversation_id": "trip"},
            headers=bearer(ALICE),
        )
        assert r.status_code == 200
        mine = await http.get("/v1/conversations/trip", headers=bearer(ALICE))
        assert mine.status_code == 200
        assert [t["message"] for t in mine.json()["turns"]] == ["what is 2+2"]
        theirs = await http.get("/v1/conversations/trip", headers=bearer(BOB))
        assert theirs.status_code == 404  # not 403: nothing says it exists
        assert theirs.json()["code"] == "not_found"
        missing = await http.get("/v1/conversations/nothing-here", headers=bearer(ALICE))
        assert missing.status_code == 404
        assert missing.json() | {"correlation_id": None} == theirs.json() | {"correlation_id": None}


async def test_a_non_loopback_bind_without_keys_is_refused(nats_url: str) -> None:
    settings = make_settings(nats_url, http_host="0.0.0.0", http_port=0)
    runtime = Runtime(settings, part="bff", name="test", health=False, configure_logs=False)
    await runtime.connect()
    try:
        with pytest.raises(ConfigurationError, match=r"Refusing to listen on 0\.0\.0\.0"):
            await build_bff(runtime)
    finally:
        await runtime.shutdown()


async def test_the_cli_refuses_a_public_bind_without_keys(nats_url: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "switchboard",
        "bff",
        "--nats-url",
        nats_url,
        "--http-host",
        "0.0.0.0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert b"Refusing to listen on 0.0.0.0 without API keys" in err


@pytest.mark.parametrize(
    "entry",
    [
        "a.b:k-0123456789abcdef",
        "*:k-0123456789abcdef",
        "has space:k-0123456789abcdef",
        "justakey",
        "u:short",
    ],
)
def test_bad_key_entries_are_configuration_errors(entry: str) -> None:
    from switchboard.bff import ApiKeys

    with pytest.raises(ConfigurationError) as caught:
        ApiKeys.from_settings(Settings(api_keys=entry))
    assert "k-0123456789abcdef" not in str(caught.value)  # never echo a key


def test_a_keys_file_may_hold_digests_only(tmp_path: Path) -> None:
    from switchboard.bff import ApiKeys

    digest = hashlib.sha256(b"carol-secret-key-123").hexdigest()
    path = tmp_path / "keys"
    path.write_text(f"# users\ncarol:sha256:{digest}\ndave:dave-plain-key-12345\n")
    keys = ApiKeys.from_settings(Settings(api_keys_file=str(path)))
    assert keys.authenticate("Bearer carol-secret-key-123") == "carol"
    assert keys.authenticate("Bearer dave-plain-key-12345") == "dave"
    assert "carol-secret" not in repr(keys)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b"", 400),
        (b'{"message": 42}', 400),
        (b'{"message": ""}', 400),
        (b'{"message": "hi", "agents": ["a.b"]}', 400),
        (b'{"message": "hi", "conversation_id": "a.b"}', 400),
        (b'{"message": "hi", "timeout_s": -1}', 400),
        (b'["message"]', 400),
        (b'{"message": "' + b"x" * 40_000 + b'"}', 400),
        (b'{"message": "' + b"x" * 600_000 + b'"}', 413),
    ],
)
async def test_bad_bodies_are_4xx_problems_never_500(
    nats_url: str, body: bytes, status: int
) -> None:
    async with system(nats_url) as http:
        for path in ("/v1/chat", "/v1/chat/stream"):
            r = await http.post(path, content=body, headers={"content-type": "application/json"})
            assert r.status_code == status, r.text
            assert r.headers["content-type"] == "application/problem+json"
            problem = r.json()
            assert problem["status"] == status
            assert problem["code"] in ("bad_request", "too_large")
            assert "Traceback" not in r.text


async def test_a_burst_past_the_per_user_limit_gets_fast_429s(nats_url: str) -> None:
    async with system(nats_url, max_inflight_per_user=2) as http:
        slow = [
            asyncio.create_task(http.post("/v1/chat", json={"message": "sleep 2"}))
            for _ in range(2)
        ]
        await eventually(lambda: metric("switchboard_http_in_flight") >= 2)
        before = metric("switchboard_http_rejected_total", reason="user_limit")
        started = asyncio.get_running_loop().time()
        refused = await asyncio.gather(
            *(http.post("/v1/chat", json={"message": "what is 1+1"}) for _ in range(20))
        )
        elapsed = asyncio.get_running_loop().time() - started
        assert [r.status_code for r in refused] == [429] * 20
        assert elapsed < 1.5  # refused at once, not queued behind the slow ones
        assert refused[0].headers["retry-after"] == "1"
        assert metric("switchboard_http_rejected_total", reason="user_limit") == before + 20
        assert all(r.status_code == 200 for r in await asyncio.gather(*slow))
        ok = await http.post("/v1/chat", json={"message": "what is 1+1"})  # recovered
        assert ok.status_code == 200


async def test_the_instance_limit_applies_across_users(nats_url: str) -> None:
    keys = ",".join(f"u{i}:key-u{i}-0123456789abc" for i in range(4))
    async with system(nats_url, api_keys=keys, max_inflight=2) as http:
        slow = [
            asyncio.create_task(
                http.post(
                    "/v1/chat",
                    json={"message": "sleep 1.5"},
                    headers=bearer(f"key-u{i}-0123456789abc"),
                )
            )
            for i in range(2)
        ]
        await eventually(lambda: metric("switchboard_http_in_flight") >= 2)
        before = metric("switchboard_http_rejected_total", reason="instance_limit")
        r = await http.post(
            "/v1/chat", json={"message": "what is 1+1"}, headers=bearer("key-u3-0123456789abc")
        )
        assert r.status_code == 429
        assert r.headers["retry-after"] == "1"
        assert "capacity" in r.json()["detail"]
        assert metric("switchboard_http_rejected_total", reason="instance_limit") == before + 1
        await asyncio.gather(*slow)


async def test_a_disconnecting_client_cancels_the_work(nats_url: str) -> None:
    before = metric("switchboard_endpoint_cancelled_total", endpoint="sleepy")
    async with system(nats_url) as http:
        request = asyncio.create_task(http.post("/v1/chat", json={"message": "sleep 30"}))
        await eventually(lambda: metric("switchboard_endpoint_in_flight", endpoint="sleepy") == 1)
        request.cancel()  # the HTTP client goes away
        await asyncio.gather(request, return_exceptions=True)
        await eventually(
            lambda: metric("switchboard_endpoint_cancelled_total", endpoint="sleepy") == before + 1
        )
        await eventually(lambda: metric("switchboard_endpoint_in_flight", endpoint="sleepy") == 0)
        assert metric("switchboard_http_in_flight") == 0


async def test_a_disconnecting_sse_client_cancels_the_work(nats_url: str) -> None:
    before = metric("switchboard_endpoint_cancelled_total", endpoint="sleepy")
    async with system(nats_url) as http:
        async with http.stream("POST", "/v1/chat/stream", json={"message": "sleep 30"}) as r:
            async for line in r.aiter_lines():
                if "step_progress" in line:
                    break  # the agent is working: hang up
        await eventually(
            lambda: metric("switchboard_endpoint_cancelled_total", endpoint="sleepy") == before + 1
        )
        await eventually(lambda: metric("switchboard_http_in_flight") == 0)


async def test_a_message_at_the_limit_fits_however_its_client_escapes_it(nats_url: str) -> None:
    # Python's json (and so ``requests``) writes ASCII only: 6 bytes per CJK character, 12
    # per emoji. With a 128 KiB body limit a 22,000-character Chinese message was a 413.
    async with system(nats_url) as http:
        for char in ("\u4e2d", "\U0001f600"):
            body = json.dumps({"message": "echo " + char * (MAX_MESSAGE_CHARS - 5)})
            r = await http.post(
                "/v1/chat", content=body, headers={"content-type": "application/json"}
            )
            assert r.status_code == 200, r.text[:200]
            too_long = json.dumps({"message": char * (MAX_MESSAGE_CHARS + 1)})
            r = await http.post(
                "/v1/chat", content=too_long, headers={"content-type": "application/json"}
            )
            assert (r.status_code, r.json()["code"]) == (400, "bad_request"), r.text[:200]


async def test_a_client_cannot_pick_the_address_it_is_rate_limited_by(nats_url: str) -> None:
    # uvicorn believed X-Forwarded-For from 127.0.0.1 by default: a new header per guess
    # was a new address, and 200 guesses drew 200 401s and not one 429.
    async with system(nats_url, api_keys=f"alice:{ALICE}") as http:
        codes = [
            (
                await http.get(
                    "/v1/agents",
                    headers={**bearer(f"guess-{i:016d}"), "X-Forwarded-For": f"10.9.0.{i}"},
                )
            ).status_code
            for i in range(25)
        ]
        assert codes[20:] == [429] * 5


async def test_behind_a_trusted_proxy_each_client_is_limited_on_its_own(nats_url: str) -> None:
    # Behind an ingress every request comes from the proxy's address: without the
    # forwarded address, one client's bad guesses would lock every user out.
    async with system(nats_url, api_keys=f"alice:{ALICE}", trusted_proxies="127.0.0.0/8") as http:
        attacker = {"X-Forwarded-For": "203.0.113.9"}
        for i in range(21):
            await http.get("/v1/agents", headers={**bearer(f"guess-{i:016d}"), **attacker})
        blocked = await http.get("/v1/agents", headers={**bearer(ALICE), **attacker})
        assert blocked.status_code == 429
        # A proxy appends the peer it saw: a forged first entry changes nothing.
        forged = {"X-Forwarded-For": "198.51.100.1, 203.0.113.9"}
        assert (
            await http.get("/v1/agents", headers={**bearer(ALICE), **forged})
        ).status_code == 429
        someone_else = {"X-Forwarded-For": "198.51.100.7"}
        ok = await http.get("/v1/agents", headers={**bearer(ALICE), **someone_else})
        assert ok.status_code == 200


async def test_a_proxy_setting_that_is_not_an_address_is_refused(nats_url: str) -> None:
    settings = make_settings(nats_url, http_port=0, trusted_proxies="10.0.0.0/8,ingress")
    with pytest.raises(ConfigurationError, match="'ingress' is not an IP address"):
        async with bff_running(settings):
            pass


async def test_brute_forcing_keys_is_rate_limited(nats_url: str) -> None:
    async with system(nats_url, api_keys=f"alice:{ALICE}") as http:
        codes = [
            (await http.get("/v1/agents", headers=bearer(f"guess-{i:016d}"))).status_code
            for i in range(25)
        ]
        assert codes[:20] == [401] * 20
        assert codes[20:] == [429] * 5
        blocked = await http.get("/v1/agents", headers=bearer(ALICE))
        assert blocked.status_code == 429  # even the right key, from a blocked address
        assert int(blocked.headers["retry-after"]) >= 1


async def test_agents_health_metrics_and_offline_docs(nats_url: str) -> None:
    async with system(nats_url) as http:
        agents = (await http.get("/v1/agents")).json()
        assert {"calculator", "clock", "text", "llm", "summarizer"} <= {a["name"] for a in agents}
        assert all(a["description"] for a in agents)
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = await http.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"nats": True, "inbox": True}
        await http.post("/v1/chat", json={"message": "what is 1+1"})
        metrics = (await http.get("/metrics")).text
        assert 'switchboard_http_requests_total{method="POST",route="/v1/chat",status="200"}' in (
            metrics
        )
        docs = await http.get("/docs")
        assert docs.status_code == 200
        assert "/docs-assets/swagger-ui-bundle.js" in docs.text
        assert "cdn" not in docs.text.lower()
        assert (await http.get("/docs-assets/swagger-ui-bundle.js")).status_code == 200
        spec = (await http.get("/docs/openapi.json")).json()
        assert {"/v1/chat", "/v1/chat/stream", "/v1/agents"} <= set(spec["paths"])
        # Every status these routes give is documented (cancelled: 409, not ready: 503).
        for path in ("/v1/chat", "/v1/chat/stream"):
            assert "409" in spec["paths"][path]["post"]["responses"], path
        assert {"200", "503"} <= set(spec["paths"]["/readyz"]["get"]["responses"])
        page = await http.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")


async def test_sse_requests_dropped_before_the_stream_starts_free_their_slots(
    nats_url: str,
) -> None:
    # A client that sends the request and resets the connection at once: the event
    # generator is never started, so a slot released only in its ``finally`` leaked.
    async with system(nats_url, max_inflight_per_user=3) as http:
        body = b'{"message": "what is 2+2"}'
        head = (
            "POST /v1/chat/stream HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        for _ in range(10):
            _, writer = await asyncio.open_connection(http.base_url.host, http.base_url.port)
            writer.write(head + body)
            await writer.drain()
            writer.transport.abort()
        await eventually(lambda: metric("switchboard_http_in_flight") == 0, timeout=10)
        ok = await http.post("/v1/chat", json={"message": "what is 1+1"})
        assert ok.status_code == 200, ok.text


async def test_static_paths_no_file_can_have_are_not_found(nats_url: str) -> None:
    # A NUL byte made os.stat raise ValueError: a 500 and an error-level traceback per request.
    async with system(nats_url) as http:
        for prefix in ("/static", "/docs-assets"):
            for name in ("a%00b", "%00", "favicon.svg%00.png", "..%2f..%2fpyproject.toml"):
                r = await http.get(f"{prefix}/{name}")
                assert r.status_code == 404, (prefix, name, r.status_code, r.text)
        assert (await http.get("/static/favicon.svg")).status_code == 200


async def test_slots_and_held_answers_are_given_back_on_the_event_loop(
    nats_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The limiter's counters are the loop's: a release from a thread pool races with it
    # (and costs a thread hop per request).
    import threading

    from switchboard.bff import InFlightLimiter

    threads: list[str] = []
    give_back, release = InFlightLimiter._give_back, InFlightLimiter._release

    def recording_give_back(self: InFlightLimiter, size: int) -> None:
        threads.append(threading.current_thread().name)
        give_back(self, size)

    def recording_release(self: InFlightLimiter, user: str) -> None:
        threads.append(threading.current_thread().name)
        release(self, user)

    monkeypatch.setattr(InFlightLimiter, "_give_back", recording_give_back)
    monkeypatch.setattr(InFlightLimiter, "_release", recording_release)
    async with system(nats_url) as http:
        plain = await http.post("/v1/chat", json={"message": "what is 1+1"})
        streamed = await http.post("/v1/chat/stream", json={"message": "what is 1+1"})
        assert plain.status_code == streamed.status_code == 200
        await eventually(lambda: len(threads) >= 4)  # 2 slots, 2 held answers
    assert set(threads) == {threading.current_thread().name}, threads
