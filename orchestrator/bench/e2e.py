"""``switchboard bench e2e``: HTTP through the whole system against the raw two-hop chain.

System under test: ``switchboard up`` (its BFF, orchestrator and agents
processes; the agent is the bench's ``noop``) with one API key per
simulated user, loaded over HTTP by a separate load-generator process
(``wrk``, or the Python fallback)::

    load generator --HTTP POST /v1/chat--> BFF --NATS--> orchestrator --NATS--> agent

Baseline, same run, same NATS server, same concurrency and request count:
the raw two-hop nats-py chain (bench -> relay -> echo) driven from the
bench process. The comparison is deliberately harsh -- the system adds an
HTTP hop, authentication, JSON validation and a third process -- and shows
what the whole stack costs over the NATS hops alone.

Second baseline, same run, same load generator: a hand-written HTTP front
(:mod:`.front`, a bare ASGI app on uvicorn doing ``nc.request``) to the same
raw chain -- the same three processes and hops as the system, with nothing
else. Its numbers are the row's ``front_*`` extras and a second table row
(``ratio_to_front``: the system's throughput over the front's). For each
concurrency level the three alternate over ``rounds`` rounds.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import msgspec
from nats.nuid import NUID

from ..runtime.child import free_port
from .chain import RawChain, bench_connection, raw_chain
from .conversations import BenchError, check_reply, sample_payload
from .core import alternate, drive
from .cpu import CpuAccount, cpu_summary
from .load import Generator, choose_generator, http_load
from .processes import python_process
from .stats import BenchResult, Run, second_side
from .system import (
    UpSystem,
    bench_logs,
    http_request,
    limits_env,
    nats_server,
    switchboard_up,
    together,
)
from .workload import MESSAGE, NOOP, NOOP_SPEC

__all__ = ["CHAT", "run_e2e", "user_keys", "wait_for_answer"]

CHAT = "/v1/chat"


def user_keys(users: int) -> dict[str, str]:
    """``users`` simulated users and their API keys (fresh for each run)."""
    token = NUID().next().decode()
    return {f"bench{i:04d}": f"bench-{token}-{i:04d}" for i in range(users)}


async def wait_for_answer(
    url: str, key: str, body: bytes, *, patience: float = 20.0, check: bool = True
) -> None:
    """Wait until one chat request gets a complete answer (the agent is in the catalog).

    ``check=False``: any 200 will do (the hand-written front echoes the body back).

    Raises:
        BenchError: none came within ``patience`` seconds.
    """
    give_up = time.monotonic() + patience
    last = ""
    while time.monotonic() < give_up:
        try:
            status, data = await http_request(
                url + CHAT,
                method="POST",
                body=body,
                headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
                timeout=10,
            )
            if status == 200:
                if check:
                    check_reply(data)
                return
            last = f"HTTP {status}: {data[:300]!r}"
        except (OSError, TimeoutError, BenchError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        await asyncio.sleep(0.2)
    raise BenchError(f"No chat request worked within {patience:.0f}s; the last: {last}")


async def run_e2e(
    *,
    nats_url: str | None = None,
    requests: int = 5_000,
    concurrency: Sequence[int] = (1, 10, 100),
    rounds: int = 3,
    users: int | None = None,
    generator: Generator = "auto",
    subject_prefix: str = "ai",
    part_env: Mapping[str, str] | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> list[BenchResult]:
    """Measure HTTP chat requests through ``switchboard up`` against the raw chain."""
    top = max(concurrency)
    tool = choose_generator(generator)
    keys = user_keys(users or max(top, 1))
    key_list = list(keys.values())
    env = {
        **limits_env(top),
        "SWITCHBOARD_SUBJECT_PREFIX": subject_prefix,
        "SWITCHBOARD_API_KEYS": ",".join(f"{user}:{key}" for user, key in keys.items()),
        **(part_env or {}),
    }
    body = msgspec.json.encode({"message": MESSAGE, "agents": [NOOP]})
    async with (
        bench_logs() as logs,
        nats_server(nats_url) as server,
        bench_connection(server.url) as nc,
        together(
            switchboard_up(
                nats_url=server.url,
                logs=logs,
                agents=NOOP_SPEC,
                env=env,
            ),
            raw_chain(nc, server.url),
        ) as started,
    ):
        system: UpSystem = started[0]
        chain: RawChain = started[1]
        front_port = free_port()
        front_url = f"http://127.0.0.1:{front_port}"
        async with python_process(
            "switchboard.orchestrator.bench.front", server.url, str(front_port), chain.subject
        ) as front:
            assert front.pid is not None
            await wait_for_answer(front_url, key_list[0], body, check=False)
            await wait_for_answer(system.url, key_list[0], body)
            progress(
                f"e2e: up at {system.url} ("
                + ", ".join(f"{name} pid {part.pid}" for name, part in system.parts.items())
                + f"), front at {front_url} (pid {front.pid}), load from {tool}"
            )
            results = await _measure(
                system=system,
                chain=chain,
                front=(front_url, front.pid),
                body=body,
                keys=key_list,
                users=len(keys),
                tool=tool,
                workdir=logs.path,
                nats_pid=server.pid,
                requests=requests,
                concurrency=concurrency,
                rounds=rounds,
                progress=progress,
            )
    return results


async def _measure(
    *,
    system: UpSystem,
    chain: RawChain,
    front: tuple[str, int],
    body: bytes,
    keys: list[str],
    users: int,
    tool: str,
    workdir: Path,
    nats_pid: int | None,
    requests: int,
    concurrency: Sequence[int],
    rounds: int,
    progress: Callable[[str], None],
) -> list[BenchResult]:
    """At each level: the system, the raw chain and the front, alternating."""
    results: list[BenchResult] = []
    raw_send = chain.sender(sample_payload(NOOP))
    front_url, front_pid = front

    async def http(requests: int, level: int, url: str = system.url) -> Run:
        load = await http_load(
            url,
            CHAT,
            body=body,
            keys=keys,
            requests=requests,
            connections=level,
            generator=tool,
            workdir=workdir,
        )
        if load.run.errors:
            progress(f"e2e c={level}: {load.run.errors} errors ({url}): {load.detail}")
        return load.run

    common = {"nats": nats_pid, "bench": os.getpid()}
    parts = {("agent" if n == "agents" else n): p.pid for n, p in system.parts.items()}
    for level in concurrency:
        warm = min(1_000, requests)
        await http(warm, level)
        await drive(raw_send, requests=warm, concurrency=level)
        await http(warm, level, front_url)
        ours_cpu = CpuAccount({**parts, **common})
        base_cpu = CpuAccount({**chain.pids, **common})
        front_cpu = CpuAccount({"front": front_pid, **chain.pids, **common})
        ours, base, theirs = await alternate(
            rounds,
            ours_cpu.around(functools.partial(http, requests, level)),
            base_cpu.around(
                functools.partial(drive, raw_send, requests=requests, concurrency=level)
            ),
            front_cpu.around(functools.partial(http, requests, level, front_url)),
        )
        result = BenchResult.compare(
            "e2e",
            level,
            ours,
            base,
            load_generator=tool,
            users=users,
            **ours_cpu.per_request_us(),
            **base_cpu.per_request_us("baseline_"),
            **second_side("front", "asgi-front", ours, theirs, base),
            **front_cpu.per_request_us("front_"),
        )
        progress(
            f"e2e c={level}: HTTP {result.rps:.0f} req/s, raw chain {result.baseline_rps:.0f}"
            f" req/s, ratio {result.ratio:.2f}, p50 {result.p50_ms:.2f} ms, p99 "
            f"{result.p99_ms:.2f} ms ({tool}); hand-written front "
            f"{result.extras['front_rps']:.0f} req/s, ratio to it "
            f"{result.extras['ratio_to_front']:.2f}"
        )
        progress(cpu_summary(ours_cpu, base_cpu))
        results.append(result)
    return results
