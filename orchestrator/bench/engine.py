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

The peer, same run, when FastStream is installed (the ``bench`` extra): the
same two hops as FastStream subscribers, ``broker.request`` inside the
relay's (:mod:`.peer`), driven with the same ``nc.request`` and payload.
The three alternate; the row's ``peer_*`` extras and a second table row
show it (``ratio_to_peer``: Switchboard's throughput over FastStream's).

A second row per level, ``engine-2rounds``, asks a two-round conversation
(``workload.TWO_ROUNDS``: round 2 plans again from round 1's results, by the
offline rules) against that level's one-round runs: ``ratio`` is what a
second round leaves of the throughput.

With ``tracing`` (``--tracing``), a second orchestrator and agent, same run, same rounds,
trace every conversation (``OTEL_TRACES_EXPORTER=none``: spans made, batched and
dropped, no collector needed) on a subject prefix of their own; the row's
``traced_*`` extras show them and ``ratio_to_traced`` is the untraced pair's throughput
over theirs -- the cost of tracing on. The untraced pair is tracing off: the default.

Each row also says where the time goes: the CPU each process spent per
request, ``cpu_us_<part>`` (orchestrator, agent, nats, bench) and
``baseline_cpu_us_<part>`` (relay, echo, nats, bench), ``peer_cpu_us_<part>``,
with their totals.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence

from ..core.requester import Requester
from ..core.subjects import Subjects
from .chain import (
    RawChain,
    bench_connection,
    faststream_available,
    faststream_chain,
    raw_chain,
)
from .conversations import Conversations, sample_payload
from .core import alternate, drive
from .cpu import CpuAccount, cpu_summary
from .stats import BenchResult, Run, second_side
from .system import (
    BenchLogs,
    Part,
    bench_logs,
    limits_env,
    nats_server,
    switchboard_part,
    together,
)
from .workload import NOOP, NOOP_SPEC, TWO_ROUNDS

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
    peer: bool | None = None,
    tracing: bool = False,
    progress: Callable[[str], None] = lambda _: None,
) -> list[BenchResult]:
    """Measure conversations through real orchestrator + agent processes against the raw chain.

    ``peer``: also the FastStream chain (default: when FastStream is installed).
    ``tracing``: also an orchestrator and agent that trace (see the module).
    """
    if peer is None:
        peer = faststream_available()
        if not peer:
            progress("engine: FastStream is not installed (the bench extra): no peer row")
    top = max(concurrency)
    env = {**limits_env(top), "SWITCHBOARD_SUBJECT_PREFIX": subject_prefix, **(part_env or {})}
    traced_prefix = f"{subject_prefix}traced"
    traced_env = {
        **env,
        "SWITCHBOARD_SUBJECT_PREFIX": traced_prefix,
        "OTEL_TRACES_EXPORTER": "none",
    }
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
            faststream_chain(nc, server.url) if peer else _nothing(),
            _traced_pair(server.url, logs, traced_env) if tracing else _nothing(),
        ) as started,
        Requester(nc, subjects=Subjects(subject_prefix), max_pending=8 * top + 100) as requester,
        Requester(nc, subjects=Subjects(traced_prefix), max_pending=8 * top + 100) as traced_req,
    ):
        agent: Part = started[0]
        orchestrator: Part = started[1]
        chain: RawChain = started[2]
        peer_chain: RawChain | None = started[3]
        traced_pair: tuple[Part, Part] | None = started[4]
        conversations = Conversations(requester, NOOP)
        ours_send = conversations.sender()
        two_rounds = Conversations(requester, NOOP, message=TWO_ROUNDS, rounds=2)
        two_send = two_rounds.sender()
        traced = Conversations(traced_req, NOOP)
        traced_send = traced.sender() if traced_pair else None
        if traced_pair:
            await traced.warm_up(min(200, requests), min(10, top))
        raw_send = chain.sender(sample_payload(NOOP))
        peer_send = peer_chain.sender(sample_payload(NOOP)) if peer_chain else None
        await conversations.warm_up(min(200, requests), min(10, top))
        await two_rounds.warm_up(min(50, requests), min(10, top))
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
            sides: list[Callable[[], Awaitable[Run]]] = [
                base_cpu.around(
                    functools.partial(drive, raw_send, requests=requests, concurrency=level)
                ),
                ours_cpu.around(
                    functools.partial(drive, ours_send, requests=requests, concurrency=level)
                ),
            ]
            peer_cpu = CpuAccount({**(peer_chain.pids if peer_chain else {}), **common})
            if peer_send is not None:
                await drive(peer_send, requests=warm, concurrency=level)
                sides.append(
                    peer_cpu.around(
                        functools.partial(drive, peer_send, requests=requests, concurrency=level)
                    )
                )
            traced_cpu = CpuAccount(
                {"orchestrator": traced_pair[1].pid, "agent": traced_pair[0].pid, **common}
                if traced_pair
                else common
            )
            if traced_send is not None:
                await drive(traced_send, requests=warm, concurrency=level)
                sides.append(
                    traced_cpu.around(
                        functools.partial(drive, traced_send, requests=requests, concurrency=level)
                    )
                )
            base, ours, *theirs = await alternate(rounds, *sides)
            traced_runs = theirs.pop() if traced_send is not None else None
            peer_extras = (
                {
                    **second_side("peer", "faststream", ours, theirs[0], base),
                    **peer_cpu.per_request_us("peer_"),
                }
                if theirs
                else {}
            )
            if traced_runs is not None:
                peer_extras.update(
                    second_side("traced", "tracing on", ours, traced_runs, base),
                    **traced_cpu.per_request_us("traced_"),
                )
            result = BenchResult.compare(
                "engine",
                level,
                ours,
                base,
                **ours_cpu.per_request_us(),
                **base_cpu.per_request_us("baseline_"),
                **peer_extras,
            )
            progress(
                f"engine c={level}: switchboard {result.rps:.0f} req/s, raw chain "
                f"{result.baseline_rps:.0f} req/s, ratio {result.ratio:.2f}, p50 "
                f"{result.p50_ms:.2f} ms (raw {result.baseline_p50_ms:.2f} ms), errors "
                f"{result.errors}"
                + (f" (first: {conversations.first_error})" if conversations.first_error else "")
            )
            if traced_runs is not None:
                progress(
                    f"engine c={level}: tracing on {peer_extras['traced_rps']:.0f} req/s, p50 "
                    f"{peer_extras['traced_p50_ms']:.2f} ms, tracing off / on "
                    f"{peer_extras['ratio_to_traced']:.2f}, errors {peer_extras['traced_errors']}"
                    + (f" (first: {traced.first_error})" if traced.first_error else "")
                )
            if "peer_rps" in peer_extras:
                progress(
                    f"engine c={level}: faststream {peer_extras['peer_rps']:.0f} req/s, "
                    f"switchboard / faststream {peer_extras['ratio_to_peer']:.2f}, errors "
                    f"{peer_extras['peer_errors']}"
                )
            progress(cpu_summary(ours_cpu, base_cpu))
            results.append(result)
            # What a second round costs: two-round conversations (3 agent steps, the offline
            # rules planning round 2), against this level's one-round runs as the baseline.
            await drive(two_send, requests=warm, concurrency=level)
            two_cpu = CpuAccount({"orchestrator": orchestrator.pid, "agent": agent.pid, **common})
            [two] = await alternate(
                rounds,
                two_cpu.around(
                    functools.partial(drive, two_send, requests=requests, concurrency=level)
                ),
            )
            two_result = BenchResult.compare(
                "engine-2rounds",
                level,
                two,
                ours,
                compared_to="engine (one round)",
                **two_cpu.per_request_us(),
            )
            progress(
                f"engine-2rounds c={level}: {two_result.rps:.0f} conversations/s, "
                f"{two_result.ratio:.2f} of one round's, p50 {two_result.p50_ms:.2f} ms "
                f"(one round {two_result.baseline_p50_ms:.2f} ms), errors {two_result.errors}"
                + (f" (first: {two_rounds.first_error})" if two_rounds.first_error else "")
            )
            results.append(two_result)
    return results


@contextlib.asynccontextmanager
async def _traced_pair(
    nats_url: str, logs: BenchLogs, env: Mapping[str, str]
) -> AsyncIterator[tuple[Part, Part]]:
    """The traced agent and orchestrator (on their own subject prefix, in ``env``)."""
    async with together(
        switchboard_part("traced-agent", ["agent", AGENT], nats_url=nats_url, logs=logs, env=env),
        switchboard_part(
            "traced-orchestrator", ["orchestrator"], nats_url=nats_url, logs=logs, env=env
        ),
    ) as (agent, orchestrator):
        yield agent, orchestrator


@contextlib.asynccontextmanager
async def _nothing() -> AsyncIterator[None]:
    """A peer that is not there (FastStream is not installed)."""
    yield None
