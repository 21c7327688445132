"""The agent process (``switchboard agent NAME|MODULE:ATTR ...``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from switchboard.orchestrator.llm import make_llm
from switchboard.orchestrator.runtime import Runtime, Settings

from .loader import load_agents
from .worker import AgentWorker

__all__ = ["run_agents"]


def _running(worker: Any) -> Callable[[], bool]:
    return lambda: bool(worker.running)


async def run_agents(settings: Settings, specs: Sequence[str]) -> int:
    """Serve the named agents (one process, one connection) until SIGTERM/SIGINT."""
    chosen = load_agents(specs)
    runtime = Runtime(settings, part="agent", name="+".join(a.name for a in chosen))
    await runtime.connect()
    llm = make_llm(settings)
    # Agents that call agents send requests: the process's one requester (asked for now,
    # before the runtime starts, so its inbox is subscribed before any work arrives).
    requester = runtime.requester if any(a.calls for a in chosen) else None
    try:
        for agent in chosen:
            worker = AgentWorker(
                runtime.nc,
                agent,
                subjects=runtime.subjects,
                llm=llm,
                max_concurrency=settings.max_concurrency,
                max_backlog=settings.max_backlog,
                max_payload=settings.max_payload,
                max_inflight_bytes=settings.max_inflight_bytes,
                default_timeout=settings.step_timeout,
                requester=requester,
                max_call_depth=settings.max_call_depth,
                max_calls=settings.max_calls,
                call_heartbeat=settings.heartbeat_interval,
                call_accept_timeout=settings.accept_timeout,
            )
            runtime.add(worker, ready=_running(worker), name=f"agent:{agent.name}")
        await runtime.run()
    finally:
        await llm.aclose()
    return 0
