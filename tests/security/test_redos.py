"""No regular expression of Switchboard's backtracks super-linearly on crafted input (ReDoS).

The orchestrator splits every user message into clauses and scores it against the
agents' patterns on its event loop; the built-in agents match their task the same
way (in a thread that still holds the GIL), and the planner runs the built-in agents'
patterns (``agents.BUILTIN_PATTERNS``) without a timeout. A pattern that is quadratic in a run of
blanks or digits lets one 32 KB message stall a process for seconds: it did, for the
clause splitter and for three built-in patterns. Every compiled pattern of every
module, and every built-in agent's advertised pattern (as the planner compiles it), is
run over long runs of the characters that make patterns backtrack, with and without
the prefixes that start them. Linear patterns take about a millisecond on these
16,000 characters; the quadratic ones took 3 to 70 s.
"""

from __future__ import annotations

import importlib
import itertools
import pkgutil
import re
import time
from typing import Any

import pytest
import regex

from agents import BUILTIN_PATTERNS, builtin_agents

LENGTH = 16_000
PUMPS = (" ", "\t", "\n", "1", ".", ",", "a", "1 +")
PREFIXES = ("", "1 +", "what ", "1", ",")
SUFFIXES = ("", "!", "x", "1")
BOUND_S = 0.5


def _patterns() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for package in ("orchestrator", "agents", "bff"):
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, f"{package}."):
            if info.name.endswith("__main__"):
                continue  # runs the command line
            module = importlib.import_module(info.name)
            for name, value in vars(module).items():
                if isinstance(value, re.Pattern | regex.Pattern):
                    found[f"{info.name}.{name}"] = value
    for agent in builtin_agents().values():
        for n, pattern in enumerate(agent.patterns):
            found[f"{agent.name} agent pattern {n}"] = regex.compile(pattern, regex.IGNORECASE)
    return found


PATTERNS = _patterns()


def test_the_audit_sees_the_patterns_that_read_user_text() -> None:
    for name in (
        "orchestrator.engine.planner._SPLIT",
        "agents.builtin.clock._PHRASE_SEPARATORS",
        "agents.builtin.text._SENTENCE_END",
        "calculator agent pattern 0",
    ):
        assert name in PATTERNS
    assert len(PATTERNS) > 50
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
