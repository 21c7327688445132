"""The documentation is generated from the code and the public API is exported."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_readme_tables_match_the_code() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    from update_docs import render

    readme = (ROOT / "README.md").read_text()
    assert render(readme) == readme, "run: python scripts/update_docs.py"


def test_readme_has_the_two_setup_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "switchboard up" in readme
    assert "bash scripts/test" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash scripts/test" in ci  # CI runs exactly the README's test command


#: Packages with a public face (a sorted ``__all__``), as installed under ``switchboard``.
PACKAGES = [
    "orchestrator",
    "orchestrator.core",
    "orchestrator.runtime",
    "orchestrator.llm",
    "orchestrator.engine",
    "agents",
    "bff",
]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_is_exported(package: str) -> None:
    """Each package's public classes and functions are in its sorted ``__all__`` (httpx's test).

    The names of ``orchestrator.core`` and ``orchestrator.runtime`` are also
    exported from ``orchestrator`` itself.
    """
    module = importlib.import_module(f"switchboard.{package}")
    exported = set(module.__all__)
    assert len(exported) == len(module.__all__), "duplicates in __all__"  # ruff sorts it
    for name in exported:
        assert hasattr(module, name), f"{package}.__all__ names missing {name}"
    folder = ROOT.joinpath(*package.split("."))
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_") or path.stem in COMMANDS or path.stem in exported:
            continue  # commands, the pytest plugin, and modules exported as namespaces
        sub = importlib.import_module(f"switchboard.{package}.{path.stem}")
        for name in getattr(sub, "__all__", []):
            obj = getattr(sub, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                assert name in exported, (
                    f"{package}.{path.stem}.{name} is public but not exported by {package}"
                )
    if package == "orchestrator":
        for sub_package in ("core", "runtime"):
            inner = importlib.import_module(f"switchboard.orchestrator.{sub_package}")
            missing = set(inner.__all__) - exported
            assert not missing, f"orchestrator does not re-export {sorted(missing)}"


#: Modules that implement CLI commands or the pytest plugin: used by name, not imported.
COMMANDS = {"cli", "ask", "process", "supervisor", "testing", "bench", "workload"}


def test_the_cli_help_lists_every_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "switchboard", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("up", "orchestrator", "agent", "bff", "ask", "bench", "settings"):
        assert command in out


async def test_the_readme_agent_example_works(nats_client, requester) -> None:  # type: ignore[no-untyped-def]
    """The ``weather`` agent of the README, run as written, answers as the README says."""
    import re
    import types

    from switchboard.agents import call_agent, serving

    readme = (ROOT / "README.md").read_text()
    source = next(
        block
        for block in re.findall(r"```python\n(.*?)```", readme, re.DOTALL)
        if block.startswith("# weather.py")
    )
    module = types.ModuleType("weather")
    exec(compile(source, "README.md", "exec"), module.__dict__)  # our own docs
    async with serving(nats_client, module.weather):
        result = await call_agent(requester, "weather", "Paris")
    assert result.output == "Sunny in Paris"


def test_the_readme_has_one_table_of_limits_that_matches_the_code() -> None:
    """Each limit, its value and its code in one place; the values are the code's."""
    from switchboard.bff import MAX_BODY, ChatRequest
    from switchboard.orchestrator import MAX_MESSAGE_CHARS, Settings

    readme = (ROOT / "README.md").read_text()
    assert readme.count("### Limits") == 1
    table = readme.split("### Limits", 1)[1].split("\n\n", 2)[2].split("\n\n", 1)[0]
    rows = {
        cells[0].strip(): (cells[1].strip(), cells[2].strip())
        for line in table.splitlines()[2:]
        if (cells := line.strip("|").split("|"))
    }
    settings = Settings()
    message = rows["a message (`$.message`)"]
    assert message == (
        f"1 to {MAX_MESSAGE_CHARS:,} characters, not only blanks",
        "`bad_request` (400)",
    )
    assert rows["an HTTP request body"][0].startswith(f"{MAX_BODY:,} bytes")
    assert rows["an HTTP request body"][1] == "`too_large` (413)"
    assert settings.max_payload == 1024 * 1024 and rows["a NATS message"][0] == "1 MiB"
    agents = msgspec.inspect.type_info(ChatRequest)
    assert isinstance(agents, msgspec.inspect.StructType)
    (field,) = [f for f in agents.fields if f.name == "agents"]
    assert isinstance(field.type, msgspec.inspect.Metadata)
    assert rows["agents named in one request (`$.agents`)"][0] == str(field.type.type.max_length)  # type: ignore[attr-defined]
    assert rows["steps in a plan"][0] == str(settings.max_plan_steps)
    assert rows["chats in flight, per user / per BFF"][0] == (
        f"{settings.max_inflight_per_user} / {settings.max_inflight:,}"
    )
    assert rows["requests a worker queues beyond those it runs"][0] == (
        f"{settings.max_backlog:,} beyond {settings.max_concurrency}"
    )
    assert rows["turns kept per conversation"][0].startswith(f"{settings.history_turns} ")
    assert rows["a conversation's time (`$.timeout_s`)"][0] == (
        f"600 s (default {settings.conversation_timeout:g} s)"
    )
