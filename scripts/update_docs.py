"""Regenerate the settings and metrics tables in README.md from the code."""

from __future__ import annotations

import re
from pathlib import Path

from switchboard.orchestrator.metrics import metrics_table
from switchboard.orchestrator.runtime.settings import settings_table

ROOT = Path(__file__).resolve().parents[1]


def render(text: str) -> str:
    for name, table in (("settings", settings_table()), ("metrics", metrics_table())):
        text = re.sub(
            rf"<!-- {name}:start -->.*?<!-- {name}:end -->",
            lambda _m, n=name, t=table: f"<!-- {n}:start -->\n{t}\n<!-- {n}:end -->",
            text,
            flags=re.DOTALL,
        )
    return text


if __name__ == "__main__":
    readme = ROOT / "README.md"
    readme.write_text(render(readme.read_text()))
