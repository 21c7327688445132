"""``switchboard bench llm-latency``: many conversations waiting on a slow "model" at once.

``conversations`` (default 1,000) conversations are sent at once through a
real orchestrator process to an agent process whose handler waits ``delay``
seconds (``await asyncio.sleep(1)``: what waiting for a language model looks
like to the event loop). With enough concurrency everywhere, all of them end
about ``delay`` after they started: the report is the total wall time and
how far it is from that ideal (``wall_s``, ``overhead_s``).

Baseline, same run: the same number of requests at once through the raw
two-hop nats-py chain whose echo process waits the same ``delay``
(``baseline_wall_s``, ``baseline_overhead_s``). With ``through_bff`` the
conversations go over HTTP through ``switchboard up`` (one connection each,
from the load generator), and the baseline is the hand-written HTTP front
(:mod:`.front`) to that chain, loaded the same way. The run is repeated
``rounds`` times, alternating; the walls reported are the medians.

While the system holds the conversations, a watcher process
(:mod:`.watch`) reads each part's RSS and times its ``/healthz`` every
50 ms: ``rss_per_conversation_kb_<part>`` is the peak RSS over the RSS
before the first round, per conversation in flight; ``lag_p50_ms_<part>``,
``lag_p99_ms_<part>``, ``lag_max_ms_<part>`` how late its event loop
answered (probe time over the idle probe time). The baseline's processes
get the same RSS figures (``baseline_rss_per_conversation_kb_<part>``). Both
sides also say the CPU each process spent per conversation (``cpu_us_<part>``,
``baseline_cpu_us_<part>``, as ``engine`` does).
"""

from __future__ import annotations

import contextlib
import functools
import os
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
from nats.aio.client import Client as NATS

from ..core.requester import Requester
from ..core.subjects import Subjects
from ..runtime.child import free_port
from .chain import RawChain, bench_connection, raw_chain
from .conversations import Conversations, sample_payload
from .core import alternate, drive
from .cpu import CpuAccount
from .e2e import CHAT, user_keys, wait_for_answer
from .load import Generator, choose_generator, http_load
from .processes import python_process
from .stats import BenchResult, Run
from .system import (
    BenchLogs,
    Part,
    UpSystem,
    bench_logs,
    limits_env,
    nats_server,
    rss_mb,
    switchboard_part,
    switchboard_up,
    together,
)
from .watch import Samples, watch_parts
from .workload import DELAY_ENV, MESSAGE, SLEEPER, SLEEPER_SPEC

__all__ = ["run_llm_latency"]

#: Users of ``--through-bff`` (each may have every conversation in flight at once).
_USERS = 100


@dataclass
class _Side:
    """One side's processes, and when its measured runs were: for the watcher's samples."""

    pids: dict[str, int]
    common: dict[str, int | None] = field(default_factory=dict)
    rss_before: dict[str, float] = field(default_factory=dict)
    spans: list[tuple[float, float]] = field(default_factory=list)
    cpu: CpuAccount = field(init=False)

    def __post_init__(self) -> None:
        self.cpu = CpuAccount({**self.pids, **self.common})

    def around(self, run: Callable[[], Awaitable[Run]]) -> Callable[[], Awaitable[Run]]:
        run = self.cpu.around(run)

        async def measured() -> Run:
            if not self.rss_before:  # before the first round: the parts at rest, warmed up
                for name, pid in self.pids.items():
                    self.rss_before[name] = await rss_mb(pid)
            start = time.monotonic()
            try:
                return await run()
            finally:
                self.spans.append((start, time.monotonic()))

        return measured

    def extras(self, samples: Samples, conversations: int, prefix: str = "") -> dict[str, Any]:
        found: dict[str, Any] = self.cpu.per_request_us(prefix)
        for name, watched in samples.windows(self.spans).items():
            if name not in self.pids:
                continue
            if watched.rss_mb:
                peak = max(watched.rss_mb)
                grown = max(0.0, peak - self.rss_before.get(name, peak))
                found[f"{prefix}rss_peak_mb_{name}"] = round(peak, 1)
                found[f"{prefix}rss_per_conversation_kb_{name}"] = round(
                    grown * 1024 / conversations, 2
                )
            found.update({f"{prefix}{k}_{name}": v for k, v in watched.lag().items()})
        return found


def _healthz(part: Part) -> str:
    return part.metrics_url.rsplit("/", 1)[0] + "/healthz"


async def run_llm_latency(
    *,
    nats_url: str | None = None,
    conversations: int = 1_000,
    delay: float = 1.0,
    rounds: int = 1,
    through_bff: bool = False,
    generator: Generator = "auto",
    subject_prefix: str = "ai",
    part_env: Mapping[str, str] | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> list[BenchResult]:
    """All ``conversations`` at once through orchestrator + slow agent, against the raw chain.

    ``through_bff``: over HTTP through ``switchboard up``, against the hand-written front.
    """
    n = conversations
    env = {
        **limits_env(n),
        "SWITCHBOARD_SUBJECT_PREFIX": subject_prefix,
        DELAY_ENV: str(delay),
        **(part_env or {}),
    }
    async with (
        bench_logs() as logs,
        nats_server(nats_url) as server,
        bench_connection(server.url) as nc,
    ):
        setup = _Setup(
            nc=nc,
            url=server.url,
            logs=logs,
            env=env,
            n=n,
            delay=delay,
            timeout=max(30.0, 10 * delay + 10),
            prefix=subject_prefix,
            generator=generator,
            common={"nats": server.pid, "bench": os.getpid()},
        )
        over = _over_http if through_bff else _over_nats
        async with over(setup) as bench:
            await bench.warm_up()
            ours, base = await alternate(
                rounds, bench.ours.around(bench.send_ours), bench.base.around(bench.send_base)
            )
        # the watcher has stopped: its samples are in
        return [_result(bench, ours, base, n, delay, progress)]


@dataclass(frozen=True)
class _Setup:
    """What both ways of running (over NATS, through the BFF) are given."""

    nc: NATS
    url: str
    logs: BenchLogs
    env: dict[str, str]
    n: int
    delay: float
    timeout: float
    prefix: str
    generator: Generator
    common: dict[str, int | None]


@dataclass
class _Bench:
    """The two sides of a run, ready to send ``n`` conversations at once each."""

    ours: _Side
    base: _Side
    send_ours: Callable[[], Awaitable[Run]]
    send_base: Callable[[], Awaitable[Run]]
    warm_up: Callable[[], Awaitable[object]]
    samples: Samples
    extras: dict[str, Any]
    first_error: Callable[[], str | None] = lambda: None


def _result(
    bench: _Bench,
    ours: list[Run],
    base: list[Run],
    n: int,
    delay: float,
    progress: Callable[[str], None],
) -> BenchResult:
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
        **bench.extras,
        **bench.ours.extras(bench.samples, n),
        **bench.base.extras(bench.samples, n, "baseline_"),
    )
    first = bench.first_error()
    progress(
        f"llm-latency: {n} conversations waiting {delay:g}s each took {wall:.3f}s "
        f"(overhead {wall - delay:.3f}s; {bench.extras['baseline_name']} {base_wall:.3f}s), "
        f"errors {result.errors}" + (f" (first: {first})" if first else "")
    )
    watched = {
        k: v for k, v in result.extras.items() if k.startswith(("rss_per", "lag_p99", "lag_max"))
    }
    progress("    " + ", ".join(f"{k} {v}" for k, v in watched.items()))
    return result


@contextlib.asynccontextmanager
async def _over_nats(
    setup: _Setup,
) -> AsyncIterator[_Bench]:
    nc, url, logs, env, n = setup.nc, setup.url, setup.logs, setup.env, setup.n
    delay, timeout, common = setup.delay, setup.timeout, setup.common
    async with (
        together(
            switchboard_part("agent", ["agent", SLEEPER_SPEC], nats_url=url, logs=logs, env=env),
            switchboard_part("orchestrator", ["orchestrator"], nats_url=url, logs=logs, env=env),
            raw_chain(nc, url, delay=delay),
        ) as started,
        Requester(nc, subjects=Subjects(setup.prefix), max_pending=2 * n + 100) as requester,
    ):
        agent: Part = started[0]
        orchestrator: Part = started[1]
        chain: RawChain = started[2]
        talk = Conversations(requester, SLEEPER, timeout=timeout)
        raw_send = chain.sender(sample_payload(SLEEPER), timeout=timeout)

        async def warm_up() -> None:
            await talk.warm_up(min(20, n), min(20, n))
            await drive(raw_send, requests=min(20, n), concurrency=min(20, n))

        parts = {
            "orchestrator": (orchestrator.pid, _healthz(orchestrator)),
            "agent": (agent.pid, _healthz(agent)),
            **{name: (pid, None) for name, pid in chain.pids.items()},
        }
        async with watch_parts(parts, workdir=logs.path) as samples:
            yield _Bench(
                ours=_Side({"orchestrator": orchestrator.pid, "agent": agent.pid}, common),
                base=_Side(dict(chain.pids), common),
                send_ours=functools.partial(drive, talk.sender(), requests=n, concurrency=n),
                send_base=functools.partial(drive, raw_send, requests=n, concurrency=n),
                warm_up=warm_up,
                samples=samples,
                extras={"through": "nats", "baseline_name": "raw chain"},
                first_error=lambda: talk.first_error,
            )


@contextlib.asynccontextmanager
async def _over_http(
    setup: _Setup,
) -> AsyncIterator[_Bench]:
    nc, url, logs, env, n = setup.nc, setup.url, setup.logs, setup.env, setup.n
    delay, timeout, common = setup.delay, setup.timeout, setup.common
    tool = choose_generator(setup.generator)
    keys = user_keys(min(n, _USERS))
    key_list = list(keys.values())
    env = {**env, "SWITCHBOARD_API_KEYS": ",".join(f"{u}:{k}" for u, k in keys.items())}
    body = msgspec.json.encode({"message": MESSAGE, "agents": [SLEEPER]})
    async with together(
        switchboard_up(nats_url=url, logs=logs, agents=SLEEPER_SPEC, env=env),
        raw_chain(nc, url, delay=delay),
    ) as started:
        system: UpSystem = started[0]
        chain: RawChain = started[1]
        port = free_port()
        front_url = f"http://127.0.0.1:{port}"
        async with python_process(
            "switchboard.orchestrator.bench.front", url, str(port), chain.subject
        ) as front:
            assert front.pid is not None
            await wait_for_answer(front_url, key_list[0], body, check=False)
            await wait_for_answer(system.url, key_list[0], body)

            async def load(target: str, requests: int) -> Run:
                result = await http_load(
                    target,
                    CHAT,
                    body=body,
                    keys=key_list,
                    requests=requests,
                    connections=requests,
                    generator=tool,
                    workdir=logs.path,
                    timeout_s=timeout,
                )
                return result.run

            async def warm_up() -> None:
                await load(system.url, min(20, n))
                await load(front_url, min(20, n))

            ours = {("agent" if k == "agents" else k): p for k, p in system.parts.items()}
            base = {"front": front.pid, **chain.pids}
            parts = {
                **{name: (part.pid, _healthz(part)) for name, part in ours.items()},
                **{name: (pid, None) for name, pid in base.items()},
            }
            async with watch_parts(parts, workdir=logs.path) as samples:
                yield _Bench(
                    ours=_Side({name: part.pid for name, part in ours.items()}, common),
                    base=_Side(base, common),
                    send_ours=functools.partial(load, system.url, n),
                    send_base=functools.partial(load, front_url, n),
                    warm_up=warm_up,
                    samples=samples,
                    extras={
                        "through": "bff",
                        "baseline_name": "asgi-front",
                        "load_generator": tool,
                        "users": len(keys),
                    },
                )
