"""Shared fixtures: a real nats-server per test (from ``orchestrator.testing``)."""

from __future__ import annotations

from orchestrator.logs import configure_logging

pytest_plugins = [
    "orchestrator.testing",
    "tests.support.fake_openai",
    "tests.support.system",
    "tests.support.up",
]

# Quiet, uncached logging: capture_logs() works, and test output stays readable.
configure_logging("warning", json=False, cache=False)
