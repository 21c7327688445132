"""Child processes for benchmarks: start a Python module, wait for "ready", stop it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from ..runtime.child import ChildProcess

__all__ = ["python_process"]


@contextlib.asynccontextmanager
async def python_process(
    module: str, *args: str, ready_timeout: float = 30.0
) -> AsyncIterator[ChildProcess]:
    """Run ``python -m module args...``; yield once it printed a line "ready".

    Stopped with SIGTERM, then SIGKILL after 2 s: a load process has nothing to finish, and
    a stopped bench must end quickly whatever the load left in flight.

    Raises:
        ConfigurationError: it exited first, or printed no "ready" in ``ready_timeout`` s.
    """
    child = ChildProcess(
        module,
        args,
        module=module,
        pipe=True,
        ready_line=r"^\s*ready\s*$",
        ready_timeout=ready_timeout,
        grace=2.0,
    )
    async with child:
        yield child
