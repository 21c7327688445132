"""A tree of agent-to-agent calls across processes: one conversation, shrinking deadlines,
and a SIGKILLed top caller whose descendants stop within seconds.

``chain_a`` calls ``chain_b`` calls ``chain_c`` calls ``chain_d`` (three calls deep, the
default limit), each agent in its own process; the orchestrator runs in the test. Every
link writes what it saw (correlation id, user, time left, pid) and when it was cancelled
to a ledger file.

When ``chain_a``'s process is killed, nothing in it can tell its callee to stop. The
orchestrator notices the silence (no heartbeat from the step) and sends one subtree
cancel notice for ``s1>chain_a``: ``chain_b``, ``chain_c`` and ``chain_d`` stop, each in
its own process, long before their deadlines (about 30, 28, 26 s away). In between, the
same processes refuse a call that would loop and one that would nest too deep. Last, with
``chain_a`` replaced, ``chain_b`` is killed mid-chain: ``chain_a``'s own call notices the
silence and cancels the calls below it (``chain_c``, ``chain_d``).
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from switchboard.orchestrator import (
    ConversationReply,
    ConversationRequest,
    EmbeddedNatsServer,
    Requester,
    Settings,
)
from switchboard.orchestrator.core import (
    AgentResult,
    AgentTask,
    Deadline,
    RemoteError,
    RequestOptions,
    headers,
)
from tests.support.call_agents import CALL_LEDGER_ENV
from tests.support.system import converse, orchestrator_running

if TYPE_CHECKING:
    from .conftest import Part, Parts

pytestmark = pytest.mark.slow

LINKS = ("chain_a", "chain_b", "chain_c", "chain_d")
#: "Within seconds": the descendants' own deadlines are 24 s and more away.
STOPPED_WITHIN = 10.0


def ledger(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def until(condition: Any, timeout: float, what: str) -> float:
    """Wait for ``condition()``; returns the seconds it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def test_a_call_tree_across_processes_shares_one_conversation_and_dies_with_its_root(
    nats_server: EmbeddedNatsServer,
    settings: Settings,
    requester: Requester,
    parts: Parts,
    tmp_path: Path,
) -> None:
    notes = tmp_path / "calls.jsonl"
    processes = await asyncio.gather(
        *(
            parts.agent(
                name,
                f"tests.support.call_agents:{name}",
                nats_url=nats_server.url,
                **{CALL_LEDGER_ENV: str(notes)},
            )
            for name in LINKS
        )
    )
    await parts.ready(*processes)
    async with orchestrator_running(settings):
        # 1. The chain answers; one correlation id and user everywhere; deadlines shrink.
        reply = await converse(requester, "chain_a go", user="alice", agents=["chain_a"])
        for _ in range(50):  # until the orchestrator's catalog has chain_a
            if reply.steps:
                break
            await asyncio.sleep(0.1)
            reply = await converse(requester, "chain_a go", user="alice", agents=["chain_a"])
        assert reply.steps, reply
        assert reply.steps[0].output == "chain_a<chain_b<chain_c<chain_d", reply
        seen = {n["agent"]: n for n in ledger(notes) if n["event"] == "started"}
        assert set(seen) == set(LINKS)
        assert {n["correlation_id"] for n in seen.values()} == {reply.correlation_id}
        assert {n["user"] for n in seen.values()} == {"alice"}
        assert len({n["pid"] for n in seen.values()}) == 4  # each in its own process
        budgets = [seen[name]["time_left"] for name in LINKS]
        assert budgets == sorted(budgets, reverse=True) and len(set(budgets)) == 4, budgets

        # 2. Across the processes, a call that would loop or nest too deep is refused with
        # its code before it is sent. The test plays an agent "x" that called chain_a (and
        # chain_c that called it): chain_b's call to chain_c loops; with "x" on top, chain_c's
        # call to chain_d is the fourth call down, one more than the default limit.
        for path, code, never in (
            ("s9>chain_c>chain_a", "call_cycle", "chain_c"),
            ("s9>x>chain_a", "call_depth", "chain_d"),
        ):
            await asyncio.to_thread(notes.unlink, missing_ok=True)
            with pytest.raises(RemoteError) as caught:
                await requester.call(
                    "ai.agents.chain_a",
                    AgentTask(
                        correlation_id=f"conv-x-{code}",
                        task_id="s9",
                        agent="chain_a",
                        instruction="go",
                    ),
                    AgentResult,
                    correlation_id=f"conv-x-{code}",
                    deadline=Deadline.after(10),
                    options=RequestOptions(headers={headers.CALL_PATH: path}),
                )
            assert caught.value.code.value == code, caught.value
            assert never not in {n["agent"] for n in ledger(notes)}

        # 3. SIGKILL the top caller while the chain hangs at its end: all below it stop
        # (the orchestrator notices the silent step and cancels the subtree s1>chain_a).
        answer, took = await kill_mid_chain(requester, notes, processes[0], "conv-alice-hang-1")
        cancelled = [n for n in ledger(notes) if n["event"] == "cancelled"]
        started = {n["agent"]: n["pid"] for n in ledger(notes) if n["event"] == "started"}
        assert {(n["agent"], n["pid"]) for n in cancelled} == {
            (name, started[name]) for name in LINKS[1:]
        }, cancelled
        assert took < STOPPED_WITHIN
        # The conversation answered too, well before its deadline: its step failed (lost,
        # then retried where nothing serves chain_a any more).
        assert answer.steps[0].status == "failed" and answer.steps[0].error is not None
        assert answer.steps[0].error.code in ("timeout", "no_responders"), answer.steps[0].error

        # 4. A caller in the middle dies: its own caller (chain_a, in a new process) notices
        # and cancels what is below it; chain_a goes on and fails its step with a timeout.
        replacement = await parts.agent(
            "chain_a-2",
            "tests.support.call_agents:chain_a",
            nats_url=nats_server.url,
            **{CALL_LEDGER_ENV: str(notes)},
        )
        await parts.ready(replacement)
        answer, took = await kill_mid_chain(requester, notes, processes[1], "conv-alice-hang-2")
        cancelled_agents = {n["agent"] for n in ledger(notes) if n["event"] == "cancelled"}
        assert cancelled_agents == {"chain_c", "chain_d"}, ledger(notes)
        assert answer.steps[0].status == "failed" and answer.steps[0].error is not None
        # chain_a's call to chain_b was lost, then retried where nothing serves chain_b.
        assert answer.steps[0].error.code in ("timeout", "no_responders"), answer.steps[0].error
        assert "chain_b" in answer.steps[0].error.message


async def kill_mid_chain(
    requester: Requester, notes: Path, victim: Part, correlation_id: str
) -> tuple[ConversationReply, float]:
    """Hang a chain, SIGKILL ``victim``, wait until every link below it is cancelled;
    the conversation's reply and the seconds the cancellations took."""
    below = LINKS[LINKS.index(victim.label) + 1 :]
    await asyncio.to_thread(notes.unlink, missing_ok=True)
    hung = asyncio.ensure_future(hang(requester, correlation_id))
    try:
        await until(
            lambda: any(n["agent"] == "chain_d" for n in ledger(notes)),
            20,
            "the chain reaches chain_d",
        )
        await victim.kill()
        took = await until(
            lambda: {n["agent"] for n in ledger(notes) if n["event"] == "cancelled"} >= set(below),
            STOPPED_WITHIN,
            f"{below} cancelled after {victim.label} was killed",
        )
        return await asyncio.wait_for(hung, 15), took
    finally:
        hung.cancel()


async def hang(requester: Requester, correlation_id: str) -> ConversationReply:
    request = ConversationRequest(
        correlation_id=correlation_id,
        user_id="alice",
        message="chain_a hang",
        agents=["chain_a"],
        timeout_s=30,
    )
    return await requester.call(
        requester.subjects.converse,
        request,
        ConversationReply,
        correlation_id=request.correlation_id,
        deadline=Deadline.after(35),
    )
