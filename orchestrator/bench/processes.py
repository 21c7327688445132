"""Child processes for benchmarks: start a Python module, wait for "ready", stop it."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator

__all__ = ["python_process"]


@contextlib.asynccontextmanager
async def python_process(
    module: str, *args: str, ready_timeout: float = 30.0
) -> AsyncIterator[asyncio.subprocess.Process]:
    """Run ``python -m module args...``; yield once it printed a line "ready"."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(ready_timeout):
            while True:
                line = await proc.stdout.readline()
                if not line:
                    raise RuntimeError(f"{module} exited before it was ready")
                if line.strip() == b"ready":
                    break
        yield proc
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                async with asyncio.timeout(10):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()
