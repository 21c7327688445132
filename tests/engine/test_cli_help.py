"""``--help`` explains every flag, settings included."""

from __future__ import annotations

import re
import subprocess
import sys

import msgspec
import pytest

from switchboard.orchestrator.runtime import Settings
from switchboard.orchestrator.runtime.settings import env_name, flag_name


@pytest.mark.parametrize("command", ["ask", "up", "agent", "orchestrator", "bff"])
def test_every_setting_flag_says_what_it_is(command: str) -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "switchboard", command, "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env={"COLUMNS": "200", "PATH": ""},
    ).stdout
    flat = " ".join(shown.split())  # argparse wraps long lines
    info = msgspec.inspect.type_info(Settings)
    assert isinstance(info, msgspec.inspect.StructType)
    for field in info.fields:
        found = re.search(
            rf"{re.escape(flag_name(field.name))} VALUE (.*?) \({env_name(field.name)}\)", flat
        )
        assert found is not None, f"{flag_name(field.name)} has no help in {command} --help"
        assert len(found.group(1)) > 5, found.group(0)
