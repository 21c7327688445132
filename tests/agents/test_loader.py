"""``load_agents`` with user modules: every bad ``MODULE:ATTR`` is a one-line ConfigurationError.

Each test writes a throwaway module (unique name) into ``tmp_path`` and imports it for real.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from switchboard.agents import Agent, load_agents
from switchboard.orchestrator import ConfigurationError

AGENT_SOURCE = """
from switchboard.agents import agent


@agent("{name}", "Echoes its instruction.")
async def echo(task, ctx):
    return task.instruction
"""

WriteModule = Callable[[str], str]


@pytest.fixture
def write_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WriteModule]:
    """Write source into a uniquely named module on sys.path; its name."""
    monkeypatch.syspath_prepend(str(tmp_path))
    names: list[str] = []

    def write(source: str) -> str:
        name = f"sbx_loader_{uuid.uuid4().hex[:12]}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        names.append(name)
        return name

    yield write
    for name in names:
        sys.modules.pop(name, None)


def _error(spec: str) -> str:
    with pytest.raises(ConfigurationError) as caught:
        load_agents([spec])
    message = str(caught.value)
    assert "\n" not in message  # one line
    return message


# -- happy paths ---------------------------------------------------------------------------------


def test_an_agent_attribute_is_loaded(write_module: WriteModule) -> None:
    mod = write_module(AGENT_SOURCE.format(name="sbx-echo"))
    [loaded] = load_agents([f"{mod}:echo"])
    assert isinstance(loaded, Agent)
    assert loaded.name == "sbx-echo"


def test_a_list_or_tuple_of_agents_is_loaded(write_module: WriteModule) -> None:
    mod = write_module(
        AGENT_SOURCE.format(name="sbx-one")
        + """
@agent("sbx-two", "Also echoes.")
async def two(task, ctx):
    return task.instruction


LIST = [echo, two]
TUPLE = (two,)
"""
    )
    assert [a.name for a in load_agents([f"{mod}:LIST"])] == ["sbx-one", "sbx-two"]
    assert [a.name for a in load_agents([f"{mod}:TUPLE"])] == ["sbx-two"]


def test_a_zero_argument_factory_in_the_module_is_called(write_module: WriteModule) -> None:
    mod = write_module(
        """
        from switchboard.agents import Agent


        async def handle(task, ctx):
            return "made"


        def make():
            return Agent("sbx-made", "Made by a factory.", handle)


        def make_many(suffix="x"):
            return [Agent(f"sbx-{suffix}{i}", "Made in bulk.", handle) for i in range(2)]
        """
    )
    assert [a.name for a in load_agents([f"{mod}:make"])] == ["sbx-made"]
    assert [a.name for a in load_agents([f"{mod}:make_many"])] == ["sbx-x0", "sbx-x1"]


# -- the module cannot be imported ---------------------------------------------------------------


def test_a_module_raising_while_imported_is_a_clear_error(write_module: WriteModule) -> None:
    mod = write_module('raise RuntimeError("no database configured")\n')
    message = _error(f"{mod}:echo")
    assert f"'{mod}:echo'" in message
    assert "RuntimeError: no database configured" in message
    assert "while importing" in message


def test_a_module_with_a_syntax_error_is_a_clear_error(write_module: WriteModule) -> None:
    mod = write_module("def broken(:\n    pass\n")
    message = _error(f"{mod}:broken")
    assert f"'{mod}:broken'" in message
    assert "SyntaxError" in message


def test_a_module_calling_sys_exit_while_imported_is_a_clear_error(
    write_module: WriteModule,
) -> None:
    mod = write_module("import sys\nsys.exit(3)\n")
    message = _error(f"{mod}:echo")
    assert f"'{mod}:echo'" in message
    assert "sys.exit(3)" in message


def test_an_invalid_agent_name_at_import_is_a_clear_error(write_module: WriteModule) -> None:
    mod = write_module(AGENT_SOURCE.format(name="bad.name"))
    message = _error(f"{mod}:echo")
    assert f"'{mod}:echo'" in message
    assert "ValueError: Agent name 'bad.name' must be" in message


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (":x", "not a module name"),
        (".rel:x", "relative module names are not supported"),
        ("..rel:x", "relative module names are not supported"),
        ("a..b:x", "not a module name"),
        ("json:", "names no attribute"),
    ],
)
def test_malformed_specs_are_clear_errors(spec: str, expected: str) -> None:
    message = _error(spec)
    assert repr(spec) in message
    assert expected in message


# -- the attribute is not something to load ------------------------------------------------------


@pytest.mark.parametrize("spec", ["builtins:input", "sys:exit", "builtins:print", "os:getcwd"])
def test_builtins_are_never_called(spec: str) -> None:
    started = time.monotonic()
    message = _error(spec)  # input() would read stdin, exit() would end the process
    assert time.monotonic() - started < 5
    assert repr(spec) in message
    assert "not an Agent" in message


def test_functions_and_classes_from_elsewhere_are_not_called(write_module: WriteModule) -> None:
    mod = write_module(
        """
        from json import dumps
        from switchboard.agents import Agent
        """
    )
    message = _error(f"{mod}:dumps")
    assert "a function from 'json'" in message
    assert "not defined in" in message
    message = _error(f"{mod}:Agent")
    assert "the class Agent" in message
    assert "not an Agent" in message


def test_a_function_needing_arguments_is_not_called(write_module: WriteModule) -> None:
    mod = write_module(
        """
        def make(count, *rest, flavour="plain", **options):
            raise AssertionError("must not be called")


        async def handler(task, ctx):
            return "forgot @agent"
        """
    )
    message = _error(f"{mod}:make")
    assert f"'{mod}:make'" in message
    assert "needing arguments (count)" in message
    message = _error(f"{mod}:handler")
    assert "an async function (a handler needs @agent(name, description))" in message


def test_an_async_function_without_arguments_is_not_called(write_module: WriteModule) -> None:
    mod = write_module("async def make():\n    return []\n")
    message = _error(f"{mod}:make")
    assert "async function" in message


# -- the factory fails ---------------------------------------------------------------------------


def test_a_factory_raising_is_a_clear_error(write_module: WriteModule) -> None:
    mod = write_module(
        """
        import sys
        from switchboard.agents import Agent


        async def handle(task, ctx):
            return ""


        def fails():
            raise RuntimeError("model not downloaded")


        def bad_name():
            return Agent("has space", "A bad name.", handle)


        def exits():
            sys.exit("bye")
        """
    )
    message = _error(f"{mod}:fails")
    assert f"The agent factory '{mod}:fails' raised RuntimeError: model not downloaded" in message
    message = _error(f"{mod}:bad_name")
    assert "raised ValueError: Agent name 'has space'" in message
    message = _error(f"{mod}:exits")
    assert f"'{mod}:exits' called sys.exit('bye')" in message


def test_a_factory_returning_no_agent_is_a_clear_error(write_module: WriteModule) -> None:
    mod = write_module(
        """
        def nothing():
            return None


        def empty():
            return []


        EMPTY = ()
        """
    )
    assert "returned a NoneType, not an Agent" in _error(f"{mod}:nothing")
    assert "returned an empty list: no Agent" in _error(f"{mod}:empty")
    assert "is an empty tuple: no Agent" in _error(f"{mod}:EMPTY")


# -- through the real CLI ------------------------------------------------------------------------


def _cli_env(pythonpath: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(pythonpath),
        "SWITCHBOARD_METRICS_PORT": "0",
        "SWITCHBOARD_NATS_URL": "nats://127.0.0.1:1",
    }


def test_the_cli_reports_a_module_raising_at_import_in_one_line(tmp_path: Path) -> None:
    name = f"sbx_loader_{uuid.uuid4().hex[:12]}"
    (tmp_path / f"{name}.py").write_text('raise RuntimeError("boom at import")\n')
    done = subprocess.run(
        [sys.executable, "-m", "switchboard", "agent", f"{name}:echo"],
        env=_cli_env(tmp_path),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"switchboard: Cannot import '{name}' for agent '{name}:echo'")
    assert "RuntimeError: boom at import" in lines[0]


def test_the_cli_does_not_call_builtins_input_with_stdin_open(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()  # stdin stays open: input() would wait forever
    try:
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "switchboard", "agent", "builtins:input"],
            env=_cli_env(tmp_path),
            stdin=read_end,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        elapsed = time.monotonic() - started
    finally:
        os.close(read_end)
        os.close(write_end)
    assert done.returncode == 2, done.stderr
    assert elapsed < 20
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "'builtins:input' is the builtin input(), not an Agent" in lines[0]
