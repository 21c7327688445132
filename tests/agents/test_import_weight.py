"""An agent author's import brings in the core and the SDK, not the service's stack."""

from __future__ import annotations

import subprocess
import sys

#: Loaded by the orchestrator service, the BFF or the runtime, never by ``from switchboard.agents``.
HEAVY = (
    "openai",
    "uvicorn",
    "litestar",
    "httpx",
    "switchboard.orchestrator.engine",
    "switchboard.orchestrator.service",
    "switchboard.orchestrator.runtime",
    "switchboard.orchestrator.llm.openai",
    "switchboard.orchestrator.bench",
    "switchboard.bff",
)


def _loaded_by(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint('\\n'.join(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return set(done.stdout.split())


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


def test_importing_the_sdk_loads_the_core_and_the_sdk_only() -> None:
    loaded = _loaded_by("from switchboard.agents import agent, TaskContext, serving")
    assert "switchboard.orchestrator.core.requester" in loaded
    assert "switchboard.agents.sdk" in loaded
    assert _heavy(loaded) == []


def test_the_lazy_public_names_still_load_on_use() -> None:
    loaded = _loaded_by(
        "from switchboard.orchestrator import OrchestratorService, OpenAIProvider, Settings"
    )
    assert "switchboard.orchestrator.service" in loaded
    assert "openai" in loaded
