"""Regenerate the settings and metrics tables in README.md, and the agent users of
deploy/nats/auth.conf, from the code."""

from __future__ import annotations

import re
from pathlib import Path

from switchboard.agents import builtin_agents, render_auth
from switchboard.orchestrator.metrics import metrics_table
from switchboard.orchestrator.runtime.settings import settings_table

ROOT = Path(__file__).resolve().parents[1]
AUTH_CONF = ROOT / "deploy" / "nats" / "auth.conf"


def render(text: str) -> str:
    for name, table in (("settings", settings_table()), ("metrics", metrics_table())):
        text = re.sub(
            rf"<!-- {name}:start -->.*?<!-- {name}:end -->",
            lambda _m, n=name, t=table: f"<!-- {n}:start -->\n{t}\n<!-- {n}:end -->",
            text,
            flags=re.DOTALL,
        )
    return text


def render_auth_conf(text: str) -> str:
    """auth.conf with the built-in agents' NATS users written from their declarations."""
    return render_auth(text, builtin_agents().values())


if __name__ == "__main__":
    readme = ROOT / "README.md"
    readme.write_text(render(readme.read_text()))
    AUTH_CONF.write_text(render_auth_conf(AUTH_CONF.read_text()))
