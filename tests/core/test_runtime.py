"""The process runner every part starts with."""

from __future__ import annotations

import subprocess
import sys

import pytest

from switchboard.orchestrator import GC_THRESHOLDS
from switchboard.orchestrator.runtime import EmbeddedNatsServer, Runtime, Settings

_PROBE = """
import gc
from switchboard.orchestrator import run_main

async def main():
    print(*gc.get_threshold(), gc.get_freeze_count())
    return 3

raise SystemExit(run_main(main))
"""


def test_run_main_tunes_the_collector_and_returns_the_exit_code() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 3, done.stderr
    *thresholds, frozen = map(int, done.stdout.split())
    assert tuple(thresholds) == GC_THRESHOLDS
    assert frozen > 1000  # the imported modules' objects are out of the collector's sight


async def test_a_part_that_sends_no_requests_has_no_inbox(nats_server: EmbeddedNatsServer) -> None:
    settings = Settings(nats_url=nats_server.url, metrics_port=0)
    runtime = Runtime(settings, part="agent", name="quiet", health=False, configure_logs=False)
    await runtime.start()
    try:
        assert runtime.ready()
        subscriptions = [sub.subject for sub in runtime.nc._subs.values()]
        assert not any(subject.startswith("_INBOX") for subject in subscriptions), subscriptions
        with pytest.raises(RuntimeError, match="before start"):
            runtime.requester  # noqa: B018  (first asked for too late)
    finally:
        await runtime.shutdown()


async def test_a_requester_asked_for_while_wiring_is_started_with_the_runtime(
    nats_server: EmbeddedNatsServer,
) -> None:
    settings = Settings(nats_url=nats_server.url, metrics_port=0)
    runtime = Runtime(settings, part="bff", name="asks", health=False, configure_logs=False)
    await runtime.connect()
    requester = runtime.requester
    await runtime.start()
    try:
        assert requester.consumer.running
    finally:
        await runtime.shutdown()
