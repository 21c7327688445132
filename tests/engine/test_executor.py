"""The DAG executor over real NATS: parallel steps, chains, partial failures, dead agents."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from switchboard.orchestrator import Deadline, Plan, PlanStep, Requester, Settings, StepResult
from switchboard.orchestrator.engine import EventSink, Executor
from tests.helpers import eventually, metric
from tests.support.agents import ALL as TEST_AGENTS
from tests.support.system import agents_running
from tests.support.tasks import nothing_left_running, running_tasks

ROOT = Path(__file__).resolve().parents[2]


class Recorder:
    """An EventSink target that keeps the events in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str | None]] = []

    async def progress(self, data: bytes) -> bool:
        import msgspec

        event = msgspec.json.decode(data)
        self.events.append((event["kind"], event["step"]))
        return True


@pytest_asyncio.fixture
async def executor(settings: Settings, requester: Requester) -> AsyncIterator[Executor]:
    async with agents_running(settings, *TEST_AGENTS):
        yield Executor(requester, heartbeat=0.2, accept_timeout=2.0, retries=2)


async def run(
    executor: Executor, *steps: PlanStep, timeout: float = 20.0, recorder: Recorder | None = None
) -> list[StepResult]:
    recorder = recorder or Recorder()
    sink = EventSink("conv-t-1", subject=None, publish=None, progress=recorder.progress)
    return await executor.run(
        Plan(steps=list(steps)),
        correlation_id="conv-t-1",
        user_id="t",
        deadline=Deadline.after(timeout),
        events=sink,
    )


def step(
    id: str,
    agent: str,
    instruction: str = "x",
    *depends: str,
    required: bool = True,
    timeout_s: float | None = None,
) -> PlanStep:
    return PlanStep(
        id=id,
        agent=agent,
        instruction=instruction,
        depends_on=list(depends),
        required=required,
        timeout_s=timeout_s,
    )


async def test_independent_steps_run_in_parallel(executor: Executor) -> None:
    started = time.monotonic()
    results = await run(executor, step("a", "sleepy", "sleep 1"), step("b", "sleepy", "sleep 1"))
    elapsed = time.monotonic() - started
    assert [r.status for r in results] == ["ok", "ok"]
    assert elapsed < 1.8  # about 1 s, not 2


async def test_a_chain_passes_the_output_along(executor: Executor) -> None:
    results = await run(executor, step("a", "whoami", "hello"), step("b", "upper", "", "a"))
    assert results[1].status == "ok"
    assert '"INSTRUCTION": "HELLO"' in results[1].output
    assert '"USER": "T"' in results[1].output


async def test_a_failed_required_step_skips_its_dependents(executor: Executor) -> None:
    recorder = Recorder()
    results = await run(
        executor,
        step("a", "broken"),
        step("b", "upper", "", "a"),
        step("c", "upper", "", "b"),
        step("d", "upper", "independent"),
        recorder=recorder,
    )
    by_id = {r.id: r for r in results}
    assert by_id["a"].status == "failed"
    assert by_id["a"].error is not None
    assert by_id["a"].error.message == "The broken agent is broken on purpose."
    assert (by_id["b"].status, by_id["c"].status) == ("skipped", "skipped")
    assert "step a failed" in (by_id["b"].error.message if by_id["b"].error else "")
    assert (by_id["d"].status, by_id["d"].output) == ("ok", "INDEPENDENT")
    assert ("step_failed", "b") in recorder.events


async def test_an_optional_failure_does_not_block(executor: Executor) -> None:
    results = await run(
        executor, step("a", "broken", required=False), step("b", "upper", "still runs", "a")
    )
    assert results[0].status == "failed"
    assert (results[1].status, results[1].output) == ("ok", "STILL RUNS")


async def test_an_unknown_agent_fails_fast_as_no_responders(executor: Executor) -> None:
    started = time.monotonic()
    [result] = await run(executor, step("a", "nobody"), timeout=30)
    assert result.status == "failed"
    assert result.error is not None
    assert result.error.code == "no_responders"
    assert result.attempts == 3  # retried, then given up
    assert time.monotonic() - started < 3


async def test_a_step_timeout_bounds_a_slow_agent(executor: Executor) -> None:
    started = time.monotonic()
    [result] = await run(executor, step("a", "sleepy", "sleep 30", timeout_s=0.5))
    assert result.status == "failed"
    assert result.error is not None
    assert result.error.code == "timeout"
    assert time.monotonic() - started < 5


async def test_events_are_in_order(executor: Executor) -> None:
    recorder = Recorder()
    await run(
        executor, step("a", "sleepy", "sleep 0.1"), step("b", "upper", "", "a"), recorder=recorder
    )
    kinds = [kind for kind, _ in recorder.events]
    assert kinds.index("step_started") < kinds.index("step_progress")
    assert recorder.events[-1] == ("step_finished", "b")
    assert recorder.events.index(("step_finished", "a")) < recorder.events.index(
        ("step_started", "b")
    )


async def test_steps_nobody_watches_do_not_ask_their_agents_for_progress(
    executor: Executor, nats_client: NATS
) -> None:
    # A plain chat: no SSE stream, no watcher. The sleepy agent reports progress, which
    # would cross the wire for nothing.
    replies: list[Msg] = []

    async def spy(msg: Msg) -> None:
        replies.append(msg)

    sub = await nats_client.subscribe("_INBOX.>", cb=spy)
    await nats_client.flush()
    quiet = EventSink("conv-t-2", subject=None, publish=None)
    [result] = await executor.run(
        Plan(steps=[step("a", "sleepy", "sleep 0.1")]),
        correlation_id="conv-t-2",
        user_id="t",
        deadline=Deadline.after(20),
        events=quiet,
    )
    await nats_client.flush()
    await sub.unsubscribe()
    assert result.status == "ok"
    kinds = [(m.headers or {}).get("Switchboard-Kind") for m in replies]
    assert "final" in kinds  # the spy saw the step's reply ...
    assert "progress" not in kinds  # ... and no progress for nobody


async def test_cancelling_a_run_cancels_its_steps(
    executor: Executor, requester: Requester, settings: Settings
) -> None:
    task = asyncio.create_task(run(executor, step("a", "sleepy", "sleep 30")))
    await eventually(lambda: len(requester.tracker) == 1)
    before = metric("switchboard_endpoint_cancelled_total", endpoint="sleepy")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(requester.tracker) == 0
    await eventually(
        lambda: metric("switchboard_endpoint_cancelled_total", endpoint="sleepy") == before + 1
    )


async def test_a_killed_agent_process_fails_only_its_step(
    settings: Settings, requester: Requester
) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "NATS_URL": settings.nats_url,
        "SWITCHBOARD_METRICS_PORT": "0",
        "SWITCHBOARD_LOG_LEVEL": "warning",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "switchboard",
        "agent",
        "tests.support.agents:sleepy",
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        executor = Executor(requester, heartbeat=0.2, accept_timeout=2.0, retries=0)
        async with agents_running(settings, *TEST_AGENTS[1:]):  # upper etc., not sleepy
            await _wait_for_responder(requester, "ai.agents.sleepy")
            task = asyncio.create_task(
                run(
                    executor,
                    step("a", "sleepy", "sleep 20"),
                    step("b", "upper", "fine"),
                    timeout=15,
                )
            )
            await asyncio.sleep(1.0)  # mid-task
            proc.send_signal(signal.SIGKILL)
            started = time.monotonic()
            results = await task
        by_id = {r.id: r for r in results}
        assert (by_id["b"].status, by_id["b"].output) == ("ok", "FINE")
        assert by_id["a"].status == "failed"
        assert by_id["a"].error is not None
        assert by_id["a"].error.code == "timeout"
        assert "went silent" in by_id["a"].error.message
        assert time.monotonic() - started < 5  # noticed by missing heartbeats, not at 15 s
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def _wait_for_responder(requester: Requester, subject: str) -> None:
    async def ready() -> bool:
        msgs = await _srv_ping(requester)
        return any(subject.rsplit(".", 1)[-1] in m for m in msgs)

    for _ in range(200):
        if await ready():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{subject} never came up")


async def _srv_ping(requester: Requester) -> list[str]:
    from switchboard.orchestrator import discover

    return [m.decode() for m in await discover(requester.nc, "PING", timeout=0.5)]


async def test_a_step_nobody_accepts_is_retried_then_fails_clearly(
    executor: Executor, nats_client: NATS
) -> None:
    # A "frozen" worker: it holds a subscription on the agent's subject (so nats-server
    # hands it the task, and nobody gets no-responders) but never answers anything.
    seen: list[str] = []

    async def frozen(msg: Msg) -> None:
        seen.append(msg.subject)

    sub = await nats_client.subscribe("ai.agents.ghost", queue="agent-ghost", cb=frozen)
    await nats_client.flush()
    executor.accept_timeout = 0.3
    retries_before = metric("switchboard_step_retries_total", agent="ghost")
    try:
        started = time.monotonic()
        results = await run(executor, step("a", "ghost"), step("b", "upper", "fine"), timeout=10)
        took = time.monotonic() - started
    finally:
        await sub.unsubscribe()
    by_id = {r.id: r for r in results}
    assert (by_id["b"].status, by_id["b"].output) == ("ok", "FINE")
    ghost = by_id["a"]
    assert ghost.status == "failed" and ghost.error is not None
    assert ghost.error.code == "timeout"
    assert "no worker accepted it" in ghost.error.message
    # Nobody took it, so it was safe to send again: 1 + retries attempts, then the error.
    assert ghost.attempts == 1 + executor.retries
    assert len(seen) == ghost.attempts
    assert metric("switchboard_step_retries_total", agent="ghost") == retries_before + 2
    assert took < 8  # a few accept timeouts, not the 10 s deadline


# -- structured concurrency: every step owned by the run ---------------------------------------


class Watched(Executor):
    """An executor that notes the task each step runs in; agent ``crash`` is a bug."""

    def __init__(self, requester: Requester) -> None:
        super().__init__(requester, heartbeat=0.2, accept_timeout=2.0, retries=0)
        self.ran_in: dict[str, asyncio.Task[object] | None] = {}

    async def _step(self, step: PlanStep, inputs: Any, **options: Any) -> StepResult:
        self.ran_in[step.id] = asyncio.current_task()
        if step.agent == "crash":
            raise RuntimeError(f"bug in step {step.id}")
        return await super()._step(step, inputs, **options)


async def test_a_chain_runs_inline_and_parallel_steps_in_tasks(
    executor: Executor, requester: Requester
) -> None:
    watched = Watched(requester)
    caller = asyncio.current_task()
    results = await run(
        watched, step("a", "whoami", "hi"), step("b", "upper", "", "a"), step("c", "upper", "x")
    )
    assert [r.status for r in results] == ["ok", "ok", "ok"]
    # a and c start together (each in a task); b, alone once a is done, runs in the caller.
    assert watched.ran_in["a"] is not caller and watched.ran_in["c"] is not caller
    assert watched.ran_in["a"] is not watched.ran_in["c"]
    results = await run(watched, step("a", "whoami", "hi"), step("b", "upper", "", "a"))
    assert watched.ran_in["a"] is caller and watched.ran_in["b"] is caller  # no task, no wait


async def test_every_crashed_step_is_reported(requester: Requester) -> None:
    # Was: the first crash raised, the second was gathered away and lost.
    with pytest.raises(ExceptionGroup) as raised:
        await run(Watched(requester), step("a", "crash"), step("b", "crash"))
    assert sorted(str(e) for e in raised.value.exceptions) == ["bug in step a", "bug in step b"]


async def test_a_crash_cancels_the_steps_beside_it(
    executor: Executor, requester: Requester
) -> None:
    before = running_tasks()
    with pytest.raises(ExceptionGroup) as raised:
        await run(Watched(requester), step("a", "sleepy", "sleep 30"), step("b", "crash"))
    assert [str(e) for e in raised.value.exceptions] == ["bug in step b"]
    assert len(requester.tracker) == 0  # a's request was withdrawn, not left waiting
    await nothing_left_running(before)


async def test_a_run_cancelled_while_its_steps_stop_waits_for_them(
    executor: Executor, requester: Requester
) -> None:
    stopping, release = asyncio.Event(), asyncio.Event()

    class SlowToStop(Executor):
        async def _step(self, step: PlanStep, inputs: Any, **options: Any) -> StepResult:
            try:
                return await super()._step(step, inputs, **options)
            finally:
                if step.id == "slow":
                    stopping.set()
                    await release.wait()

    before = running_tasks()
    slow = SlowToStop(requester, heartbeat=0.2, accept_timeout=2.0)
    task = asyncio.create_task(
        run(slow, step("slow", "sleepy", "sleep 30"), step("other", "sleepy", "sleep 30"))
    )
    await eventually(lambda: len(requester.tracker) == 2)
    task.cancel()
    await stopping.wait()
    task.cancel()  # again, in the middle of the stop
    await asyncio.sleep(0.05)
    # Still waiting for its step, whose own cleanup is not cut short by the second cancel
    # (it was: the gather passed it on); nothing outlives the run.
    assert not task.done()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(requester.tracker) == 0
    await nothing_left_running(before)
