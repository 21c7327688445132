"""What every baseline and peer process of the bench does around its work: start, stop.

They run on uvloop (:func:`run_fast`), say ``ready`` once serving, and stop
on SIGTERM/SIGINT or when the bench that started them is gone
(:func:`until_stopped`). Kept apart from the processes' own modules, which
``python -m`` runs and the bench package never imports.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Coroutine
from typing import Any

from ..core.tasks import stop_task

__all__ = ["run_fast", "until_stopped"]


async def until_stopped() -> None:
    """Say ``ready``; return on SIGTERM/SIGINT or once the parent (the bench) is gone.

    Shared by every baseline and peer process of the bench.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    parent = os.getppid()

    async def orphan_watch() -> None:
        while True:
            await asyncio.sleep(1.0)
            if os.getppid() != parent:
                stop.set()
                return

    watch = loop.create_task(orphan_watch())
    print("ready", flush=True)
    try:
        await stop.wait()
    finally:
        await stop_task(watch)


def run_fast(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on uvloop, as the bench's baseline processes do."""
    try:
        import uvloop

        uvloop.run(main)
    except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
        asyncio.run(main)
