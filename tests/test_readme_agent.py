"""The README's "Writing an agent" section, executed as written from a scratch folder.

Each code block is taken verbatim: a file block (its first line ``# name``) is written
to the folder under that name, a ``bash`` block is run there by ``bash`` with the
installed ``switchboard`` and ``pytest`` commands on ``PATH`` -- what a user does
after reading the section, next to a running ``switchboard up``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.up import ROOT, start_up, user_dirs

FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
FILE_HEADER = re.compile(r"^# ([\w.-]+\.(?:py|ini|toml))$")


def section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"\n## {title}\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def blocks(text: str) -> list[tuple[str, str]]:
    return [(match.group(1), match.group(2)) for match in FENCE.finditer(text)]


def write_files(folder: Path, code: list[tuple[str, str]]) -> list[str]:
    """Write every file block; the names written, in order."""
    written = []
    for _, body in code:
        first = body.splitlines()[0]
        if header := FILE_HEADER.match(first):
            (folder / header.group(1)).write_text(body)
            written.append(header.group(1))
    return written


def user_env(folder: Path, dirs: dict[str, str]) -> dict[str, str]:
    """A user's shell: the venv's commands on PATH, nothing of this test suite's."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTEST", "SWITCHBOARD_", "NATS_")) and key != "PYTHONPATH"
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["HOME"] = str(folder)
    return {**env, **dirs}


def test_the_readme_agent_example_works_as_written(tmp_path: Path) -> None:
    code = blocks(section("Writing an agent"))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    assert write_files(scratch, code) == [
        "weather.py",
        "pytest.ini",
        "conftest.py",
        "test_weather.py",
    ]
    commands = [body.strip() for kind, body in code if kind == "bash"]
    assert len(commands) == 2, commands
    serve, test = commands
    dirs = user_dirs(tmp_path / "home")
    env = user_env(scratch, dirs)

    # Its tests, under pytest-asyncio's default (strict) mode: they pass with no warning.
    result = subprocess.run(
        ["bash", "-c", test], cwd=scratch, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = result.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"=+ 1 passed in [\d.]+s =+", summary), result.stdout  # no warning

    # The agent, next to a running `switchboard up`: found with no flags, then asked.
    up = start_up(env=dirs)
    agent = subprocess.Popen(
        ["bash", "-c", f"exec {serve}"],
        cwd=scratch,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        answer = ""
        give_up = time.monotonic() + 60
        with httpx.Client(base_url=up.url, timeout=30) as http:
            while "Sunny in Paris" not in answer and time.monotonic() < give_up:
                assert agent.poll() is None, agent.communicate()[0]
                reply = http.post("/v1/chat", json={"message": "what is the weather in Paris?"})
                answer = reply.json().get("answer", "")
                if "Sunny in Paris" not in answer:
                    time.sleep(0.5)  # until the orchestrator's catalog lists it
        assert "Sunny in Paris" in answer, answer
        step = reply.json()["steps"][0]
        assert step["agent"] == "weather"
    finally:
        if agent.poll() is None:
            agent.send_signal(signal.SIGTERM)
        output = agent.communicate(timeout=30)[0]
        assert up.stop() == 0
    assert agent.returncode == 0, output
    assert "ModuleNotFoundError" not in output
