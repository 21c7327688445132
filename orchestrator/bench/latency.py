"""``switchboard bench llm-latency``: many conversations waiting on a slow "model" at once.

``conversations`` (default 1,000) conversations are sent at once through a
real orchestrator process to an agent process whose handler waits ``delay``
seconds (``await asyncio.sleep(1)``: what waiting for a language model looks
like to the event loop). With enough concurrency everywhere, all of them end
about ``delay`` after they started: the report is the total wall time and
how far it is from that ideal (``wall_s``, ``overhead_s``).

Baseline, same run: the same number of requests at once through the raw
two-hop nats-py chain whose echo process waits the same ``delay``
(``baseline_wall_s``, ``baseline_overhead_s``). The run is repeated
``rounds`` times, alternating; the walls reported are the medians.
"""

from __future__ import annotations

import functools
import statistics
from collections.abc import Callable, Mapping

from ..core.requester import Requester
from ..core.subjects import Subjects
from .chain import RawChain, bench_connection, raw_chain
from .conversations import Conversations, sample_payload
from .core import alternate, drive
from .stats import BenchResult
from .system import bench_logs, limits_env, nats_server, switchboard_part, together
from .workload import DELAY_ENV, SLEEPER, SLEEPER_SPEC

__all__ = ["run_llm_latency"]


async def run_llm_latency(
    *,
    nats_url: str | None = None,
    conversations: int = 1_000,
    delay: float = 1.0,
    rounds: int = 1,
    subject_prefix: str = "ai",
    part_env: Mapping[str, str] | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> list[BenchResult]:
    """All ``conversations`` at once through orchestrator + slow agent, against the raw chain."""
    n = conversations
    env = {
        **limits_env(n),
        "SWITCHBOARD_SUBJECT_PREFIX": subject_prefix,
        DELAY_ENV: str(delay),
        **(part_env or {}),
    }
    agent = SLEEPER_SPEC
    async with (
        bench_logs() as logs,
        nats_server(nats_url) as server,
        bench_connection(server.url) as nc,
        together(
            switchboard_part("agent", ["agent", agent], nats_url=server.url, logs=logs, env=env),
            switchboard_part(
                "orchestrator", ["orchestrator"], nats_url=server.url, logs=logs, env=env
            ),
            raw_chain(nc, server.url, delay=delay),
        ) as started,
        Requester(nc, subjects=Subjects(subject_prefix), max_pending=2 * n + 100) as requester,
    ):
        chain: RawChain = started[2]
        talk = Conversations(requester, SLEEPER, timeout=max(30.0, 10 * delay + 10))
        ours_send = talk.sender()
        raw_send = chain.sender(sample_payload(SLEEPER), timeout=max(30.0, 10 * delay + 10))
        await talk.warm_up(min(20, n), min(20, n))
        await drive(raw_send, requests=min(20, n), concurrency=min(20, n))
        ours, base = await alternate(
            rounds,
            functools.partial(drive, ours_send, requests=n, concurrency=n),
            functools.partial(drive, raw_send, requests=n, concurrency=n),
        )
        wall = statistics.median(run.wall_s for run in ours)
        base_wall = statistics.median(run.wall_s for run in base)
        result = BenchResult.compare(
            "llm-latency",
            n,
            ours,
            base,
            delay_s=delay,
            wall_s=round(wall, 3),
            overhead_s=round(wall - delay, 3),
            baseline_wall_s=round(base_wall, 3),
            baseline_overhead_s=round(base_wall - delay, 3),
        )
        progress(
            f"llm-latency: {n} conversations waiting {delay:g}s each took {wall:.3f}s "
            f"(overhead {wall - delay:.3f}s; raw chain {base_wall:.3f}s), errors {result.errors}"
            + (f" (first: {talk.first_error})" if talk.first_error else "")
        )
        return [result]
