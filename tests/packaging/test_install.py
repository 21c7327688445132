"""Installed from its wheel, Switchboard lives under one namespace and collides with nothing.

The OpenAI Agents SDK (``openai-agents``) imports as ``agents``: an agent
author is exactly the user who installs both. Installed into one venv, each
imports as itself and ``switchboard agent calculator`` serves tasks.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import venv
from pathlib import Path

import httpx
import pytest
from nats.aio.client import Client as NATS

from switchboard.agents import call_agent
from switchboard.orchestrator.core import NoRespondersError, Requester
from switchboard.orchestrator.runtime import EmbeddedNatsServer, free_port

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _pip(python: Path, *args: str) -> None:
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args],
        check=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def venv_with_both(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding Switchboard's wheel and then openai-agents, both from PyPI names."""
    base = tmp_path_factory.mktemp("install")
    dist = base / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(ROOT)],
        check=True,
        timeout=600,
    )
    (wheel,) = dist.glob("switchboard_nats-*.whl")
    env_dir = base / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    _pip(python, str(wheel))
    _pip(python, "openai-agents")  # installed second: it must not overwrite anything of ours
    return env_dir


def test_the_wheel_installs_one_top_level_package(venv_with_both: Path) -> None:
    python = venv_with_both / "bin" / "python"
    shown = subprocess.run(
        [str(python), "-m", "pip", "show", "-f", "switchboard-nats"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    files = shown.split("Files:", 1)[1].split()
    tops = {f.split("/")[0] for f in files if not f.startswith(("..", "switchboard_nats-"))}
    assert tops == {"switchboard"}, tops


def test_both_import_as_themselves(venv_with_both: Path) -> None:
    python = venv_with_both / "bin" / "python"
    code = (
        "import agents, switchboard.agents, switchboard.orchestrator.core\n"
        "from agents import Agent, Runner\n"  # the OpenAI Agents SDK's own names
        "from switchboard.agents import agent, builtin_agents\n"
        "assert 'site-packages/agents/' in agents.__file__, agents.__file__\n"
        "assert 'calculator' in builtin_agents()\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [str(python), "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=venv_with_both,  # not the repository, whose folders are importable from its root
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


async def test_switchboard_agent_serves_beside_openai_agents(
    venv_with_both: Path, nats_server: EmbeddedNatsServer, nats_client: NATS, requester: Requester
) -> None:
    env = {
        **os.environ,
        "SWITCHBOARD_NATS_URL": nats_server.url,
        "SWITCHBOARD_METRICS_PORT": "0",
        "SWITCHBOARD_LOG_LEVEL": "warning",
    }
    process = await asyncio.create_subprocess_exec(
        str(venv_with_both / "bin" / "switchboard"),
        "agent",
        "calculator",
        env=env,
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=venv_with_both,
    )
    try:
        for _ in range(300):
            try:
                result = await call_agent(requester, "calculator", "17*23", timeout=5)
                break
            except NoRespondersError:
                assert process.returncode is None, await process.stderr.read()  # type: ignore[union-attr]
                await asyncio.sleep(0.1)
        else:
            pytest.fail("switchboard agent calculator never answered")
        assert result.ok, result.error
        assert "391" in str(result.output)
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 30)
    assert process.returncode == 0


async def test_switchboard_up_runs_from_the_plain_install(venv_with_both: Path) -> None:
    """The README's first command installs no extra: what it installs runs the whole system."""
    listed = await asyncio.create_subprocess_exec(
        str(venv_with_both / "bin" / "python"), "-m", "pip", "list", "--format=freeze",
        stdout=subprocess.PIPE,
    )  # fmt: skip
    shown = (await listed.communicate())[0].decode().lower()
    for tool in ("pytest", "mypy", "ruff", "playwright", "schemathesis", "hypothesis"):
        assert f"\n{tool}==" not in f"\n{shown}", f"{tool} came with the plain install"
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        str(venv_with_both / "bin" / "switchboard"),
        "up",
        "--port",
        str(port),
        env={**os.environ, "SWITCHBOARD_LOG_LEVEL": "warning"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=venv_with_both,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            for _ in range(600):
                assert process.returncode is None, await process.stderr.read()  # type: ignore[union-attr]
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            else:
                pytest.fail("switchboard up never became ready")
            for _ in range(100):  # the orchestrator discovers the agents within seconds
                answer = (await http.post("/v1/chat", json={"message": "what is 17*23?"})).json()
                if "391" in answer.get("answer", ""):
                    break
                await asyncio.sleep(0.2)
            assert "391" in answer["answer"], answer
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 60)
    assert process.returncode == 0
