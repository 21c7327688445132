"""The orchestrator process (``switchboard orchestrator``)."""

from __future__ import annotations

from collections.abc import Collection

import msgspec

from .llm import make_llm
from .runtime.part import Runtime
from .runtime.settings import Settings
from .service import OrchestratorService

__all__ = ["run_orchestrator"]


async def run_orchestrator(settings: Settings, *, trusted_patterns: Collection[str] = ()) -> int:
    """Serve the orchestrator until SIGTERM/SIGINT; returns the exit code.

    ``trusted_patterns`` are agent patterns audited to run without the regex
    timeout (the built-in agents' own, passed in by the ``switchboard`` command).
    """
    runtime = Runtime(settings, part="orchestrator", name="orchestrator")
    await runtime.connect()
    llm = make_llm(settings)
    try:
        service = OrchestratorService(
            runtime.nc, runtime.requester, llm, settings, trusted_patterns=trusted_patterns
        )
        runtime.add(service, ready=lambda: service.running, name="orchestrator")
        runtime.add_debug_view(
            "/debug/agents", lambda: msgspec.to_builtins(dict(service.catalog.agents))
        )
        await runtime.run()
    finally:
        await llm.aclose()
    return 0
