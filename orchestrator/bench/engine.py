"""``switchboard bench engine``: the orchestrator against a raw nats-py two-hop chain.

System under test, each part its own process::

    bench (Requester) -> orchestrator process -> agent process (noop agent)
      ConversationRequest   plan (offline) -> AgentTask -> AgentResult -> answer

Baseline, same run, same NATS server, same payload, same concurrency and
request count::

    bench (nc.request) -> relay process (nc.request) -> echo process

Both make two request/reply hops through NATS; the difference is what
Switchboard does around them: planning, the DAG executor, deadlines,
heartbeats, progress events, metrics, the correlation tracker. For each
concurrency level the two alternate over ``rounds`` rounds; throughput is the
median round, latency percentiles are over every request of every round.

Each row also says where the time goes: the CPU each process spent per
request, ``cpu_us_<part>`` (orchestrator, agent, nats, bench) and
``baseline_cpu_us_<part>`` (relay, echo, nats, bench), with their totals.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping, Sequence

from ..core.requester import Requester
from ..core.subjects import Subjects
from .chain import RawChain, bench_connection, raw_chain
from .conversations import Conversations, sample_payload
from .core import alternate, drive
from .cpu import CpuAccount, cpu_summary
from .stats import BenchResult
from .system import Part, bench_logs, limits_env, nats_server, switchboard_part, together
from .workload import NOOP, NOOP_SPEC

__all__ = ["run_engine"]

AGENT = NOOP_SPEC


async def run_engine(
    *,
    nats_url: str | None = None,
    requests: int = 10_000,
    concurrency: Sequence[int] = (1, 10, 100),
    rounds: int = 3,
    subject_prefix: str = "ai",
    part_env: Mapping[str, str] | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> list[BenchResult]:
    """Measure conversations through real orchestrator + agent processes against the raw chain."""
    top = max(concurrency)
    env = {**limits_env(top), "SWITCHBOARD_SUBJECT_PREFIX": subject_prefix, **(part_env or {})}
    results: list[BenchResult] = []
    async with (
        bench_logs() as logs,
        nats_server(nats_url) as server,
        bench_connection(server.url) as nc,
        together(
            switchboard_part("agent", ["agent", AGENT], nats_url=server.url, logs=logs, env=env),
            switchboard_part(
                "orchestrator", ["orchestrator"], nats_url=server.url, logs=logs, env=env
            ),
            raw_chain(nc, server.url),
        ) as started,
        Requester(nc, subjects=Subjects(subject_prefix), max_pending=8 * top + 100) as requester,
    ):
        agent: Part = started[0]
        orchestrator: Part = started[1]
        chain: RawChain = started[2]
        conversations = Conversations(requester, NOOP)
        ours_send = conversations.sender()
        raw_send = chain.sender(sample_payload(NOOP))
        await conversations.warm_up(min(200, requests), min(10, top))
        progress(
            f"engine: up (agent pid {agent.pid}, orchestrator pid {orchestrator.pid}, "
            f"NATS {server.url})"
        )
        common = {"nats": server.pid, "bench": os.getpid()}
        for level in concurrency:
            warm = min(1_000, requests)
            await drive(raw_send, requests=warm, concurrency=level)
            await drive(ours_send, requests=warm, concurrency=level)
            ours_cpu = CpuAccount({"orchestrator": orchestrator.pid, "agent": agent.pid, **common})
            base_cpu = CpuAccount({**chain.pids, **common})
            base, ours = await alternate(
                rounds,
                base_cpu.around(
                    functools.partial(drive, raw_send, requests=requests, concurrency=level)
                ),
                ours_cpu.around(
                    functools.partial(drive, ours_send, requests=requests, concurrency=level)
                ),
            )
            result = BenchResult.compare(
                "engine",
                level,
                ours,
                base,
                **ours_cpu.per_request_us(),
                **base_cpu.per_request_us("baseline_"),
            )
            progress(
                f"engine c={level}: switchboard {result.rps:.0f} req/s, raw chain "
                f"{result.baseline_rps:.0f} req/s, ratio {result.ratio:.2f}, p50 "
                f"{result.p50_ms:.2f} ms (raw {result.baseline_p50_ms:.2f} ms), errors "
                f"{result.errors}"
                + (f" (first: {conversations.first_error})" if conversations.first_error else "")
            )
            progress(cpu_summary(ours_cpu, base_cpu))
            results.append(result)
    return results
