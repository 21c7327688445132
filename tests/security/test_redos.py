"""No regular expression of Switchboard's backtracks super-linearly on crafted input (ReDoS).

The orchestrator splits every user message into clauses and scores it against the
agents' patterns on its event loop; the built-in agents match their task the same
way (in a thread that still holds the GIL), and the planner runs the built-in agents'
patterns (``agents.BUILTIN_PATTERNS``) without a timeout. A pattern that is quadratic in a run of
blanks or digits lets one 32 KB message stall a process for seconds: it did, for the
clause splitter and for three built-in patterns. Every compiled pattern of every
module, and every built-in agent's advertised pattern (as the planner compiles it), is
run over long runs of the characters that make patterns backtrack, with and without
the prefixes that start them; so is every pattern in a module-level table and every
pattern string handed to ``re``/``regex`` inside a function. Linear patterns take about
a millisecond on these 16,000 characters; the quadratic ones took 3 to 70 s.
"""

from __future__ import annotations

import ast
import importlib
import itertools
import pkgutil
import re
import time
from pathlib import Path
from typing import Any

import pytest
import regex

from switchboard.agents import BUILTIN_PATTERNS, builtin_agents

LENGTH = 16_000
PUMPS = (" ", "\t", "\n", "1", ".", ",", "a", "1 +", "@")
PREFIXES = ("", "1 +", "what ", "1", ",", "multiply ")
SUFFIXES = ("", "!", "x", "1")
BOUND_S = 0.5


def _collect(found: dict[str, Any], name: str, value: object, depth: int = 0) -> None:
    """Compiled patterns in a module-level value, and in the tuples, lists and dicts in it."""
    if isinstance(value, re.Pattern | regex.Pattern):
        found[name] = value
    elif depth < 3 and isinstance(value, tuple | list | set | frozenset):
        for n, item in enumerate(value):
            _collect(found, f"{name}[{n}]", item, depth + 1)
    elif depth < 3 and isinstance(value, dict):
        for key, item in value.items():
            _collect(found, f"{name}[{key!r}]", item, depth + 1)


def _inline(found: dict[str, Any], module: Any) -> None:
    """Patterns handed to ``re``/``regex`` functions as a literal or a module-level string."""
    tree = ast.parse(Path(module.__file__).read_text())
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in ("re", "regex")
            and node.args
        ):
            continue
        first = node.args[0]
        if isinstance(first, ast.Constant):
            pattern = first.value
        elif isinstance(first, ast.Name):
            pattern = getattr(module, first.id, None)
        else:
            continue
        if isinstance(pattern, str | bytes):
            found[f"{module.__name__} line {node.lineno}"] = re.compile(pattern)


def _patterns() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for package in ("orchestrator", "agents", "bff"):
        root = importlib.import_module(f"switchboard.{package}")
        for info in pkgutil.walk_packages(root.__path__, f"switchboard.{package}."):
            if info.name.endswith("__main__"):
                continue  # runs the command line
            module = importlib.import_module(info.name)
            for name, value in vars(module).items():
                _collect(found, f"{info.name}.{name}", value)
            _inline(found, module)
    for agent in builtin_agents().values():
        for n, pattern in enumerate(agent.patterns):
            found[f"{agent.name} agent pattern {n}"] = regex.compile(pattern, regex.IGNORECASE)
    return found


PATTERNS = _patterns()


def test_the_audit_sees_the_patterns_that_read_user_text() -> None:
    for name in (
        "switchboard.orchestrator.engine.planner._SPLIT",
        "switchboard.agents.builtin.clock._PHRASE_SEPARATORS",
        "switchboard.agents.builtin.text._SENTENCE_END",
        "calculator agent pattern 0",
    ):
        assert name in PATTERNS
    assert "switchboard.agents.builtin.calculator line 161" in PATTERNS  # a module-level string
    assert "switchboard.agents.builtin.text line 195" in PATTERNS  # a literal inside a function
    assert any(name.startswith("switchboard.agents.builtin.text._EXTRACTORS[") for name in PATTERNS)
    assert len(PATTERNS) > 100
    # The orchestrator runs these without a timeout: each must be audited here.
    assert {p.pattern for p in PATTERNS.values()} >= BUILTIN_PATTERNS


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_matching_time_stays_linear_on_crafted_input(name: str) -> None:
    pattern = PATTERNS[name]
    for pump, prefix, suffix in itertools.product(PUMPS, PREFIXES, SUFFIXES):
        text = prefix + pump * (LENGTH // len(pump)) + suffix
        subject = text.encode() if isinstance(pattern.pattern, bytes) else text
        started = time.perf_counter()
        for _match in pattern.finditer(subject):
            pass
        took = time.perf_counter() - started
        assert took < BOUND_S, f"{name}: {took:.2f} s on {prefix!r} + {pump!r} * n + {suffix!r}"
