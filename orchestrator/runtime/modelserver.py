"""``python -m switchboard.orchestrator.runtime.modelserver ARGS``: llama.cpp's server, supervised.

The same as ``python -m llama_cpp.server ARGS``, plus what every part of
``switchboard up`` does: when the supervisor named by ``SWITCHBOARD_SUPERVISOR_PID``
is gone (even killed with SIGKILL), the server gets SIGTERM and stops, so it
never outlives ``switchboard up``.
"""

from __future__ import annotations

import os
import runpy
import signal
import threading
import time

from .child import ENV_SUPERVISOR

__all__: list[str] = []  # run it with python -m

#: How often the supervisor's presence is checked.
_WATCH_S = 1.0


def _watch(supervisor: int) -> None:
    while os.getppid() == supervisor:
        time.sleep(_WATCH_S)
    os.kill(os.getpid(), signal.SIGTERM)  # uvicorn's own graceful stop


def main() -> None:
    supervisor = os.environ.get(ENV_SUPERVISOR, "")
    if supervisor.isdigit():
        threading.Thread(target=_watch, args=(int(supervisor),), daemon=True).start()
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
