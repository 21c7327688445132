"""The throwaway NATS users of ``deploy/nats/dev.env``: one parser for every test."""

from __future__ import annotations

from pathlib import Path

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
