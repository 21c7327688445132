"""What one agent-to-agent hop costs: a task to the calculator, direct and through a caller.

Runs an embedded nats-server, the calculator and a ``relay`` agent (which passes its
instruction to the calculator with ``ctx.call``) in this process, each on its own
connection, and times sequential requests of both kinds after a warm-up::

    .venv/bin/python scripts/bench_calls.py [requests]

It prints the median and p95 of each, and the difference: the price of one nested call
(its request, heartbeats if slow, its result, and the call events passed up).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from typing import Any

from switchboard.agents import TaskContext, agent, builtin_agents, call_agent, serving
from switchboard.orchestrator import AgentTask, Requester, connect
from switchboard.orchestrator.runtime.logs import configure_logging
from switchboard.orchestrator.testing import running_nats


@agent("relay", "Passes its instruction to the calculator.", calls=("calculator",))
async def relay(task: AgentTask, ctx: TaskContext) -> Any:
    return await ctx.call("calculator", task.instruction)


async def timed(requester: Requester, name: str, count: int) -> list[float]:
    took = []
    for n in range(count):
        started = time.perf_counter()
        result = await call_agent(requester, name, f"{n} * 3")
        took.append((time.perf_counter() - started) * 1000)
        if result.output != f"{n} * 3 = {3 * n}":
            raise SystemExit(f"wrong answer from {name}: {result}")
    return took


async def main(count: int) -> None:
    async with running_nats() as server:
        agents_nc = await connect(server.url, name="bench-agents")
        caller_nc = await connect(server.url, name="bench-caller")
        client_nc = await connect(server.url, name="bench-client")
        try:
            async with (
                Requester(caller_nc) as caller,
                Requester(client_nc) as client,
                serving(agents_nc, builtin_agents()["calculator"]),
                serving(caller_nc, relay, requester=caller),
            ):
                await timed(client, "relay", 50)  # warm-up
                rows = {name: await timed(client, name, count) for name in ("calculator", "relay")}
        finally:
            for nc in (agents_nc, caller_nc, client_nc):
                await nc.close()
    for name, took in rows.items():
        p95 = statistics.quantiles(took, n=20)[-1]
        print(f"{name:<11} p50 {statistics.median(took):6.2f} ms   p95 {p95:6.2f} ms")
    extra = statistics.median(rows["relay"]) - statistics.median(rows["calculator"])
    print(f"one nested call adds {extra:.2f} ms at the median ({count} requests each)")


if __name__ == "__main__":
    configure_logging("warning", json=False)
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 500))
