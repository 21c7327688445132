"""``switchboard bench core``: the correlation tracker against raw nats-py ``nc.request``.

Same machine, same run, same NATS connection, same responder (a plain
nats-py echo process), same bytes on the wire: the baseline sends the same
payload with the same ``Correlation-Id`` and ``Switchboard-Timeout`` headers
that the tracker sends, so the comparison is the routing machinery alone.
For transparency the row also reports raw ``nc.request`` with no headers at
all (``bare_rps``): the price of the protocol's two headers in nats-py.

For each concurrency level every variant sends the same number of requests,
in alternating rounds; throughput is the median round, latency percentiles
are over every request of every round.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import nats
from nats.aio.client import Client as NATS

from ..core import headers as h
from ..core.deadline import Deadline
from ..core.requester import Requester
from ..runtime.embedded import EmbeddedNatsServer
from .processes import python_process
from .stats import BenchResult, Run

__all__ = ["alternate", "drive", "nats_for_bench", "run_core"]

SUBJECT = "bench.echo"
PAYLOAD = b'{"question": "what is 17 * 23?", "user": "bench"}'

Send = Callable[[int], Awaitable[object]]


async def drive(send: Send, *, requests: int, concurrency: int) -> Run:
    """Send ``requests`` requests from ``concurrency`` concurrent workers; time each."""
    latencies = [0.0] * requests
    errors = 0
    next_index = 0
    clock = time.perf_counter

    async def worker() -> None:
        nonlocal next_index, errors
        me = asyncio.current_task()
        assert me is not None
        while next_index < requests:
            # Python 3.11's asyncio.wait_for (inside nc.request) returns a reply that came in
            # as the task was cancelled and drops the cancellation: look, so Ctrl-C and
            # SIGTERM stop the run instead of letting it finish every request first.
            if me.cancelling():
                raise asyncio.CancelledError
            i = next_index
            next_index += 1
            started = clock()
            try:
                await send(i)
            except Exception:
                errors += 1
            latencies[i] = clock() - started

    started = clock()
    await asyncio.gather(*(worker() for _ in range(min(concurrency, requests))))
    wall = clock() - started
    return Run(requests=requests, wall_s=wall, latencies=latencies, errors=errors)


async def alternate(rounds: int, *sides: Callable[[], Awaitable[Run]]) -> list[list[Run]]:
    """Run every side once per round, in reverse order every other round; each side's runs.

    Alternating, so that neither side always runs first on a machine that warms up or
    slows down during the benchmark.
    """
    runs: list[list[Run]] = [[] for _ in sides]
    for r in range(rounds):
        order = list(enumerate(sides))
        if r % 2:
            order.reverse()
        for side, run in order:
            runs[side].append(await run())
    return runs


@contextlib.asynccontextmanager
async def nats_for_bench(url: str | None) -> AsyncIterator[str]:
    """The given NATS URL, or an embedded nats-server for the duration."""
    if url:
        yield url
        return
    server = EmbeddedNatsServer(jetstream=False)
    await asyncio.to_thread(server.start)
    try:
        yield server.url
    finally:
        await asyncio.to_thread(server.cleanup)


async def run_core(
    *,
    nats_url: str | None = None,
    requests: int = 10_000,
    concurrency: Sequence[int] = (1, 10, 100, 1000),
    rounds: int = 3,
    progress: Callable[[str], None] = lambda _: None,
) -> list[BenchResult]:
    """Measure the tracker against raw ``nc.request`` at each concurrency level."""
    results = []
    async with (
        nats_for_bench(nats_url) as url,
        python_process("switchboard.orchestrator.bench.responder", url, SUBJECT),
    ):
        nc: NATS = await nats.connect(url, pending_size=64 * 1024 * 1024)
        requester = Requester(nc, max_pending=max(concurrency) * 2)
        await requester.start()
        try:

            async def bare(i: int) -> object:
                return await nc.request(SUBJECT, PAYLOAD, timeout=30)

            async def raw(i: int) -> object:
                headers = {
                    h.CORRELATION_ID: f"conv-bench-{i}",
                    h.TIMEOUT: Deadline.after(30).header(),
                }
                return await nc.request(SUBJECT, PAYLOAD, timeout=30, headers=headers)

            async def tracked(i: int) -> object:
                return await requester.request(
                    SUBJECT, PAYLOAD, correlation_id=f"conv-bench-{i}", deadline=Deadline.after(30)
                )

            for level in concurrency:
                await drive(raw, requests=min(1000, requests), concurrency=level)  # warm up
                await drive(tracked, requests=min(1000, requests), concurrency=level)
                base, ours, bare_runs = await alternate(
                    rounds,
                    *(
                        functools.partial(drive, send, requests=requests, concurrency=level)
                        for send in (raw, tracked, bare)
                    ),
                )
                bare_result = BenchResult.compare("bare", level, bare_runs, base)
                result = BenchResult.compare(
                    "core",
                    level,
                    ours,
                    base,
                    bare_rps=bare_result.rps,
                    bare_p50_ms=bare_result.p50_ms,
                    bare_p99_ms=bare_result.p99_ms,
                )
                progress(
                    f"core c={level}: tracker {result.rps:.0f} req/s, raw {result.baseline_rps:.0f}"
                    f" req/s, ratio {result.ratio:.2f}"
                )
                results.append(result)
        finally:
            await requester.close()
            await nc.close()
    return results
