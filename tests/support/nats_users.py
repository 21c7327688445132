"""The throwaway NATS users of ``deploy/nats/dev.env``: one parser for every test."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from switchboard.orchestrator.runtime import EmbeddedNatsServer

NATS_DIR = Path(__file__).resolve().parents[2] / "deploy" / "nats"


def dev_env() -> dict[str, str]:
    """The throwaway passwords and variables of deploy/nats/dev.env."""
    values: dict[str, str] = {}
    for raw in (NATS_DIR / "dev.env").read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def password(user: str) -> str:
    """The dev.env password of a NATS user of auth.conf (``bff``, ``agent-calculator`` ...)."""
    return dev_env()["NATS_PASSWORD_" + user.upper().replace("-", "_")]


def login(user: str, inbox: str | None = None) -> dict[str, str]:
    """The environment of a part that logs in as ``user`` of auth.conf (and its inbox prefix)."""
    env = {"SWITCHBOARD_NATS_USER": user, "SWITCHBOARD_NATS_PASSWORD": password(user)}
    if inbox:
        env["SWITCHBOARD_INBOX_PREFIX"] = inbox
    return env


@contextlib.contextmanager
def shipped_server() -> Iterator[EmbeddedNatsServer]:
    """A nats-server on deploy/nats/nats.conf, with dev.env's passwords (stopped after)."""
    srv = EmbeddedNatsServer(config_file=NATS_DIR / "nats.conf", port=-1)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in dev_env().items():
            patch.setenv(name, value)
        srv.start()
    try:
        yield srv
    finally:
        srv.cleanup()
