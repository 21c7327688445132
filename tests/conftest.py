"""Shared fixtures: a real nats-server per test (from ``switchboard.orchestrator.testing``)."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator

import pytest

from switchboard.orchestrator.runtime.logs import configure_logging

pytest_plugins = [
    "switchboard.orchestrator.testing",
    "tests.support.fake_openai",
    "tests.support.model_server",
    "tests.support.system",
    "tests.support.up",
    "tests.support.llama",
]

# `switchboard up` keeps its store and its state file in the user's data and state
# directories: the suite's own, so it never reads or writes the real user's.
_USER_DIRS = tempfile.mkdtemp(prefix="switchboard-tests-home-")
os.environ["XDG_DATA_HOME"] = os.path.join(_USER_DIRS, "data")
os.environ["XDG_STATE_HOME"] = os.path.join(_USER_DIRS, "state")

# Quiet, uncached logging: capture_logs() works, and test output stays readable.
configure_logging("warning", json=False, cache=False)


#: The repository's folders, importable by their bare names from its root (pytest puts it on
#: sys.path). Code must use switchboard.orchestrator, .agents, .bff: a bare name loads a
#: second copy of every module (its metrics registered twice, its classes not the same).
_BARE = ("orchestrator", "agents", "bff")


@pytest.fixture(autouse=True, scope="session")
def _no_bare_package_imports() -> Iterator[None]:
    yield
    loaded = sorted(name for name in sys.modules if name.split(".")[0] in _BARE)
    assert not loaded, f"imported by a bare name (use switchboard.<package>): {loaded}"
