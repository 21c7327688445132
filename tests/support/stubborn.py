"""A child process that ignores SIGTERM (``python -m tests.support.stubborn``).

It prints "ready" and then sleeps; only SIGKILL ends it. For the tests of
stopping a child process that does not listen.
"""

from __future__ import annotations

import signal
import time

if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("ready", flush=True)
    time.sleep(600)
