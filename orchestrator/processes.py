"""The orchestrator and agent processes (``switchboard orchestrator`` / ``switchboard agent``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from .llm import make_llm
from .runtime import Runtime
from .service import OrchestratorService
from .settings import Settings

__all__ = ["run_agents", "run_orchestrator"]


async def run_orchestrator(settings: Settings) -> int:
    """Serve the orchestrator until SIGTERM/SIGINT; returns the exit code."""
    from agents import BUILTIN_PATTERNS

    runtime = Runtime(settings, part="orchestrator", name="orchestrator")
    await runtime.connect()
    llm = make_llm(settings)
    try:
        service = OrchestratorService(
            runtime.nc, runtime.requester, llm, settings, trusted_patterns=BUILTIN_PATTERNS
        )
        runtime.add(service, ready=lambda: service.running, name="orchestrator")
        runtime.add_debug_view(
            "/debug/agents", lambda: msgspec.to_builtins(dict(service.catalog.agents))
        )
        await runtime.run()
    finally:
        await llm.aclose()
    return 0


def _running(worker: Any) -> Callable[[], bool]:
    return lambda: bool(worker.running)


async def run_agents(settings: Settings, specs: Sequence[str]) -> int:
    """Serve the named agents (one process, one connection) until SIGTERM/SIGINT."""
    from agents import AgentWorker, load_agents

    chosen = load_agents(specs)
    runtime = Runtime(settings, part="agent", name="+".join(a.name for a in chosen))
    await runtime.connect()
    llm = make_llm(settings)
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
                default_timeout=settings.step_timeout,
            )
            runtime.add(worker, ready=_running(worker), name=f"agent:{agent.name}")
        await runtime.run()
    finally:
        await llm.aclose()
    return 0
