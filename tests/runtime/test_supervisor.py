"""``switchboard up`` as an operator sees it: restarts, overload, clean shutdown."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator

import httpx
import pytest

from tests.support.up import UpProcess, start_up


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


@pytest.fixture
def fresh_up() -> Iterator[UpProcess]:
    """A ``switchboard up`` of the test's own (it gets parts killed)."""
    up = start_up()
    yield up
    assert up.stop() == 0, up.output()


async def test_a_killed_agents_part_is_restarted(fresh_up: UpProcess) -> None:
    async with httpx.AsyncClient(base_url=fresh_up.url, timeout=60) as http:
        assert (await http.post("/v1/chat", json={"message": "what is 2+2"})).status_code == 200
        old_pid = fresh_up.pids["agents"]
        in_flight = [
            asyncio.create_task(http.post("/v1/chat", json={"message": f"what is {i}*3"}))
            for i in range(10)
        ]
        os.kill(old_pid, signal.SIGKILL)
        match = await asyncio.to_thread(fresh_up.wait_for_line, r"agents restarted \(pid (\d+)", 30)
        assert int(match.group(1)) != old_pid
        for response in await asyncio.gather(*in_flight):
            if response.status_code == 200:  # answered, maybe partially, never wrongly
                body = response.json()
                for step in body["steps"]:
                    if step["status"] != "ok":
                        assert step["error"]["code"] in ("timeout", "no_responders")
            else:
                assert response.headers["content-type"] == "application/problem+json"
        for _ in range(100):  # the new agents process serves again
            r = await http.post("/v1/chat", json={"message": "what is 6*7"})
            if r.status_code == 200 and "42" in r.json()["answer"]:
                break
            await asyncio.sleep(0.2)
        else:
            raise AssertionError("the restarted agents never answered")


async def test_a_burst_far_above_the_limits_is_refused_fast_and_memory_stays_bounded() -> None:
    up = start_up("--agents", "all,tests.support.agents:sleepy")
    try:
        bff = up.pids["bff"]
        limits = httpx.Limits(max_connections=500, max_keepalive_connections=500)
        async with httpx.AsyncClient(base_url=up.url, timeout=60, limits=limits) as http:
            await http.post("/v1/chat", json={"message": "what is 1+1"})
            before = rss_mb(bff)
            loop = asyncio.get_running_loop()

            async def timed(started: float) -> tuple[int, float, str | None]:
                r = await http.post("/v1/chat", json={"message": "sleep 1"})
                return r.status_code, loop.time() - started, r.headers.get("retry-after")

            for _ in range(3):
                started = loop.time()
                burst = await asyncio.gather(*(timed(started) for _ in range(500)))
                answered = [t for code, t, _ in burst if code == 200]
                refused = [t for code, t, _ in burst if code == 429]
                assert len(answered) + len(refused) == 500  # nothing else, nothing queued
                assert len(answered) >= 8  # the local user's limit was used
                assert len(refused) >= 400
                assert all(after == "1" for code, _, after in burst if code == 429)
            growth = rss_mb(bff) - before
            assert growth < 50, f"the BFF grew by {growth:.1f} MB"
            ok = await http.post("/v1/chat", json={"message": "what is 3*3"})
            assert ok.status_code == 200
            assert "9" in ok.json()["answer"]
    finally:
        assert up.stop() == 0, up.output()


def test_sigterm_stops_everything_cleanly() -> None:
    up = start_up()
    pids = dict(up.pids)
    up.send_signal(signal.SIGTERM)
    assert up.wait(40) == 0
    assert "switchboard: stopped" in up.output()
    for name, pid in pids.items():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        raise AssertionError(f"{name} (pid {pid}) outlived the supervisor")
