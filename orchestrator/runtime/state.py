"""Where ``switchboard up`` keeps its data, and how the other commands find it running.

``up`` runs an embedded nats-server whose JetStream store (conversation history)
lives in a per-user data directory, so history survives a restart. While it runs,
``up`` writes a small state file (its pid, NATS URL and web URL) in the per-user
state directory; ``switchboard ask``, ``agent``, ``orchestrator`` and ``bff`` read
it when no NATS URL was given, the way ``docker`` finds its daemon: a user runs
``up`` in one terminal and any command in another, with no flags. A file whose
process is gone is ignored, so a crashed ``up`` misleads nobody.

Both directories come from ``platformdirs`` (``~/.local/share/switchboard`` and
``~/.local/state/switchboard`` on Linux, honouring ``XDG_DATA_HOME`` and
``XDG_STATE_HOME``).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import msgspec
import platformdirs

__all__ = [
    "UpState",
    "clear_up_state",
    "default_data_dir",
    "running_up",
    "up_state_file",
    "write_up_state",
]

APP = "switchboard"


class UpState(msgspec.Struct, kw_only=True, frozen=True):
    """What a running ``switchboard up`` tells the other commands."""

    pid: int
    nats_url: str
    web_url: str
    data_dir: str | None = None


def default_data_dir() -> Path:
    """The per-user directory of ``up``'s JetStream store (``--data-dir`` overrides it)."""
    return Path(platformdirs.user_data_dir(APP, appauthor=False)) / "jetstream"


def up_state_file() -> Path:
    return Path(platformdirs.user_state_dir(APP, appauthor=False)) / "up.json"


def write_up_state(state: UpState) -> Path:
    """Write the state file, readable by this user only (the URL may carry credentials)."""
    path = up_state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(msgspec.json.encode(state))
    partial.replace(path)  # atomic: a reader sees the old file or the new one
    return path


def clear_up_state(pid: int) -> None:
    """Remove the state file if process ``pid`` wrote it (another ``up`` may have since)."""
    state = _read()
    if state is not None and state.pid == pid:
        with contextlib.suppress(FileNotFoundError):
            up_state_file().unlink()


def running_up() -> UpState | None:
    """The ``switchboard up`` running for this user, or None (no file, or its process is gone)."""
    state = _read()
    if state is None or not _alive(state.pid):
        return None
    return state


def _read() -> UpState | None:
    try:
        return msgspec.json.decode(up_state_file().read_bytes(), type=UpState)
    except (OSError, msgspec.DecodeError):  # none, unreadable, or from another version
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process now holds that pid
        return False
    return True
