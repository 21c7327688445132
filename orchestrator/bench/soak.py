"""``switchboard bench soak``: many conversations in a row; memory and pending work after.

``requests`` conversations (default 100,000) at one concurrency level go
through real orchestrator and agent processes (from the bench's Requester
over NATS), or with ``through_bff`` through ``switchboard up`` over HTTP
(BFF, orchestrator, agents; load from a separate ``wrk`` / Python process).
The resident memory (``VmRSS`` in ``/proc/<pid>/status``) of every part is
read after a warm-up (``rss_start_mb_<part>``) and at the end
(``rss_end_mb_<part>``, ``rss_growth_mb_<part>``; ``rss_growth_mb`` is the
largest), and each part's ``/metrics`` is scraped for the gauges that count
unfinished work -- ``switchboard_correlation_pending``,
``switchboard_endpoint_in_flight``, ``switchboard_http_in_flight`` -- which
must all be back to 0 (``pending_after``, and ``pending_after_<part>``).

The run goes in chunks (a progress line with every part's RSS after each);
throughput and latencies are over all of them. Baseline, same run: the raw
two-hop nats-py chain at the same concurrency over ``min(requests, 20000)``
requests (a rate; no need to soak it).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from nats.aio.client import Client as NATS

from ..core.requester import Requester
from ..core.subjects import Subjects
from .chain import RawChain, bench_connection, raw_chain
from .conversations import Conversations, sample_payload
from .core import drive
from .e2e import CHAT, user_keys, wait_for_answer
from .load import Generator, choose_generator, http_load
from .stats import BenchResult, Run
from .system import (
    BenchLogs,
    Part,
    bench_logs,
    limits_env,
    nats_server,
    rss_mb,
    switchboard_part,
    switchboard_up,
    together,
    wait_pending_zero,
)
from .workload import MESSAGE, NOOP, NOOP_SPEC

__all__ = ["run_soak"]

BASELINE_REQUESTS = 20_000

Chunk = Callable[[int], Awaitable[Run]]


@dataclass
class _System:
    parts: list[Part]
    chunk: Chunk
    generator: str


def _merge(runs: list[Run]) -> Run:
    return Run(
        requests=sum(r.requests for r in runs),
        wall_s=sum(r.wall_s for r in runs),
        latencies=[x for r in runs for x in r.latencies],
        errors=sum(r.errors for r in runs),
    )


@contextlib.asynccontextmanager
async def _over_nats(
    nc: NATS,
    url: str,
    logs: BenchLogs,
    env: dict[str, str],
    concurrency: int,
    subject_prefix: str,
) -> AsyncIterator[_System]:
    agent_spec = NOOP_SPEC
    async with (
        together(
            switchboard_part("agent", ["agent", agent_spec], nats_url=url, logs=logs, env=env),
            switchboard_part("orchestrator", ["orchestrator"], nats_url=url, logs=logs, env=env),
        ) as parts,
        Requester(
            nc, subjects=Subjects(subject_prefix), max_pending=8 * concurrency + 100
        ) as requester,
    ):
        agent, orchestrator = parts
        talk = Conversations(requester, NOOP)
        send = talk.sender()
        await talk.warm_up(10, 1)

        async def chunk(requests: int) -> Run:
            return await drive(send, requests=requests, concurrency=concurrency)

        yield _System([orchestrator, agent], chunk, "nats")


@contextlib.asynccontextmanager
async def _over_http(
    url: str, logs: BenchLogs, env: dict[str, str], concurrency: int, generator: Generator
) -> AsyncIterator[_System]:
    tool = choose_generator(generator)
    keys = user_keys(max(concurrency, 1))
    key_list = list(keys.values())
    env = {**env, "SWITCHBOARD_API_KEYS": ",".join(f"{u}:{k}" for u, k in keys.items())}
    body = msgspec.json.encode({"message": MESSAGE, "agents": [NOOP]})
    async with switchboard_up(nats_url=url, logs=logs, agents=NOOP_SPEC, env=env) as system:
        await wait_for_answer(system.url, key_list[0], body)
        parts = []
        for name in ("bff", "orchestrator", "agents"):
            part = system.parts[name]
            parts.append(Part("agent" if name == "agents" else name, part.pid, part.metrics_url))

        async def chunk(requests: int) -> Run:
            load = await http_load(
                system.url,
                CHAT,
                body=body,
                keys=key_list,
                requests=requests,
                connections=concurrency,
                generator=tool,
                workdir=logs.path,
            )
            return load.run

        yield _System(parts, chunk, tool)


async def run_soak(
    *,
    nats_url: str | None = None,
    requests: int = 100_000,
    concurrency: int = 100,
    through_bff: bool = False,
    generator: Generator = "auto",
    chunks: int = 10,
    subject_prefix: str = "ai",
    part_env: Mapping[str, str] | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> list[BenchResult]:
    """Soak the system with ``requests`` conversations; report RSS growth and pending work."""
    env = {
        **limits_env(concurrency),
        "SWITCHBOARD_SUBJECT_PREFIX": subject_prefix,
        **(part_env or {}),
    }
    async with (
        bench_logs() as logs,
        nats_server(nats_url) as server,
        bench_connection(server.url) as nc,
    ):
        url = server.url
        system_cm = (
            _over_http(url, logs, env, concurrency, generator)
            if through_bff
            else _over_nats(nc, url, logs, env, concurrency, subject_prefix)
        )
        async with together(system_cm, raw_chain(nc, url)) as started:
            system: _System = started[0]
            chain: RawChain = started[1]
            warm = min(2_000, max(1, requests // 10))
            await system.chunk(warm)
            start = {part.name: await rss_mb(part.pid) for part in system.parts}
            runs: list[Run] = []
            size = max(1, -(-requests // max(1, chunks)))
            done = 0
            while done < requests:
                step = min(size, requests - done)
                runs.append(await system.chunk(step))
                done += step
                now = {part.name: await rss_mb(part.pid) for part in system.parts}
                progress(
                    f"soak: {done}/{requests} conversations, {runs[-1].rps:.0f} req/s, errors "
                    f"{sum(r.errors for r in runs)}, RSS "
                    + ", ".join(f"{name} {mb:.1f} MB" for name, mb in now.items())
                )
            pending = {
                part.name: await wait_pending_zero(part.metrics_url) for part in system.parts
            }
            end = {part.name: await rss_mb(part.pid) for part in system.parts}
            raw_send = chain.sender(sample_payload(NOOP))
            await drive(raw_send, requests=min(requests, 1_000), concurrency=concurrency)
            base = await drive(
                raw_send, requests=min(requests, BASELINE_REQUESTS), concurrency=concurrency
            )
    extras: dict[str, Any] = {"through": "bff" if through_bff else "nats"}
    if through_bff:
        extras["load_generator"] = system.generator
    for name in start:
        extras[f"rss_start_mb_{name}"] = round(start[name], 1)
        extras[f"rss_end_mb_{name}"] = round(end[name], 1)
        extras[f"rss_growth_mb_{name}"] = round(end[name] - start[name], 1)
    extras["rss_growth_mb"] = max(extras[f"rss_growth_mb_{name}"] for name in start)
    for name, gauges in pending.items():
        extras[f"pending_after_{name}"] = int(sum(gauges.values()))
    extras["pending_after"] = sum(int(sum(g.values())) for g in pending.values())
    result = BenchResult.compare("soak", concurrency, [_merge(runs)], [base], **extras)
    progress(
        f"soak: {result.requests} conversations at {result.rps:.0f} req/s (raw chain "
        f"{result.baseline_rps:.0f}), errors {result.errors}, RSS growth "
        + ", ".join(f"{n} {extras[f'rss_growth_mb_{n}']:+.1f} MB" for n in start)
        + f", pending after {extras['pending_after']}"
    )
    return [result]
