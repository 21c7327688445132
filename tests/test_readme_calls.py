"""The README's "Writing an agent: calling other agents" example, run as written.

Its file block is written to a scratch folder and imported from there; the agent is
served next to the built-in calculator on a real nats-server and asked its example.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from nats.aio.client import Client as NATS

from switchboard.agents import Agent, builtin_agents, call_agent, serving
from switchboard.orchestrator import Requester
from tests.test_readme_agent import FILE_HEADER, blocks, section


def load_example(folder: Path) -> Agent:
    code = [body for kind, body in blocks(section("Writing an agent: calling other agents"))]
    files = [body for body in code if FILE_HEADER.match(body.splitlines()[0])]
    assert len(files) == 1, "one file block: tip.py"
    path = folder / "tip.py"
    path.write_text(files[0])
    spec = importlib.util.spec_from_file_location("readme_tip", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    tip = module.tip
    assert isinstance(tip, Agent) and tip.calls == ("calculator",)
    return tip


async def test_the_readme_calling_example_works_as_written(
    tmp_path: Path, nats_client: NATS, requester: Requester
) -> None:
    tip = load_example(tmp_path)
    async with serving(nats_client, builtin_agents()["calculator"], tip, requester=requester):
        result = await call_agent(
            requester, "tip", "split 84 euros between 3 with a 15% tip", timeout=8.0
        )
    assert result.ok, result
    assert result.output == "84 * (1 + 15 / 100) = 96.6; each of 3 pays 32.2"
