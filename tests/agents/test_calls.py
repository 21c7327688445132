"""Agent-to-agent calls (``ctx.call``): paths, limits, budget, refusals, events.

Agents run on their own NATS connections in this process (``agents_running``) against a
real nats-server; the process-level behaviour (a chain across processes, a killed caller)
is in ``tests/chaos/test_call_tree.py``.
"""

from __future__ import annotations

import asyncio
import itertools

import msgspec
import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from switchboard.agents import builtin_agents, call_agent
from switchboard.orchestrator import (
    CallDepthError,
    CallFinishedEvent,
    CallPath,
    CallStartedEvent,
    ConversationReply,
    ConversationRequest,
    ProgressEvent,
    RemoteError,
    Requester,
    Settings,
    decode_event,
    new_correlation_id,
)
from switchboard.orchestrator.core import (
    AgentResult,
    AgentTask,
    CallBudget,
    CallBudgetError,
    CallCycleError,
    Deadline,
    RequestOptions,
    headers,
)
from tests.helpers import eventually, metric
from tests.support.call_agents import CHAIN, NOTES, branch, fan, leaf, ping, pong, sneaky
from tests.support.system import agents_running, converse, orchestrator_running


@pytest.fixture(autouse=True)
def _clear_notes() -> None:
    NOTES.clear()


def started(agent: str) -> list[dict[str, object]]:
    return [n for n in NOTES if n["agent"] == agent and n["event"] == "started"]


# -- the call path and the budget, on their own -------------------------------------------------


def test_a_path_that_would_loop_or_nest_too_deep_is_refused() -> None:
    path = CallPath.root("s1", "a").then("b", max_depth=2)
    assert str(path) == "s1>a>b" and path.depth == 1
    with pytest.raises(CallCycleError, match="a is already on its path"):
        path.then("a", max_depth=2)
    deeper = path.then("c", max_depth=2)
    with pytest.raises(CallDepthError, match="3 calls deep"):
        deeper.then("d", max_depth=2)
    assert CallPath.parse("s1>a>b>c").under("s1>a") and not CallPath.parse("s1>ab").under("s1>a")


def test_leases_never_add_up_to_more_than_the_budget() -> None:
    budget = CallBudget(10)
    path = CallPath.root("s1", "a")
    leases = []
    while budget.left:  # calls started together, none back yet
        leases.append(budget.lease(path))
    with pytest.raises(CallBudgetError, match="budget of agent calls"):
        budget.lease(path)
    assert len(leases) + sum(leases) == 10 and budget.left == 0
    budget.give_back(leases[0], unused=leases[0] + 100)  # a callee that claims too much
    assert budget.left == leases[0]


# -- through real workers ------------------------------------------------------------------------


async def test_a_chain_keeps_its_correlation_id_and_user_and_deadlines_shrink(
    settings: Settings, requester: Requester
) -> None:
    async with agents_running(settings, *CHAIN):
        result = await call_agent(
            requester, "chain_a", "go", timeout=8.0, correlation_id="conv-alice-chain"
        )
    assert result.ok and result.output == "chain_a<chain_b<chain_c<chain_d"
    links = [started(name)[0] for name in ("chain_a", "chain_b", "chain_c", "chain_d")]
    assert {n["correlation_id"] for n in links} == {"conv-alice-chain"}
    times = [float(str(n["time_left"])) for n in links]
    assert times == sorted(times, reverse=True) and len(set(times)) == 4, times
    # Each hop keeps a margin for its answer: no callee outlives its caller.
    assert all(a - b >= 0.5 for a, b in itertools.pairwise(times)), times


async def test_a_chain_deeper_than_the_setting_is_refused_before_it_is_sent(
    settings: Settings, requester: Requester
) -> None:
    shallow = msgspec.structs.replace(settings, max_call_depth=2)
    async with agents_running(shallow, *CHAIN):
        with pytest.raises(RemoteError) as caught:
            await call_agent(requester, "chain_a", "go", timeout=8.0)
    assert caught.value.code.value == "call_depth"
    assert "s1>chain_a>chain_b>chain_c>chain_d" in str(caught.value)
    assert started("chain_d") == []  # never sent


async def test_a_cycle_is_refused_with_its_code(settings: Settings, requester: Requester) -> None:
    refused = {"caller": "pong", "callee": "ping", "outcome": "call_cycle"}
    before = metric("switchboard_agent_calls_total", **refused)
    async with agents_running(settings, ping, pong):
        with pytest.raises(RemoteError) as caught:
            await call_agent(requester, "ping", "hello", timeout=8.0)
    assert caught.value.code.value == "call_cycle"
    assert len(started("ping")) == 1 and len(started("pong")) == 1
    assert metric("switchboard_agent_calls_total", **refused) == before + 1
    # ping's call to pong failed with the refusal pong passed back
    assert metric(
        "switchboard_agent_calls_total", caller="ping", callee="pong", outcome="call_cycle"
    )


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("s1>pong>ping", None),  # an honest call: runs (and is refused one level down)
        ("s1>ping>pong>ping", "call_cycle"),
        ("s1>x>y>z>w>ping", "call_depth"),
        ("s1>pong", "bad_request"),  # does not end at the agent it was sent to
        ("s1>pi.ng", "bad_request"),
    ],
)
async def test_the_callee_refuses_a_forged_call_path(
    settings: Settings, requester: Requester, path: str, code: str | None
) -> None:
    """A raw NATS client can write any header: the worker checks the path itself."""
    async with agents_running(settings, ping, pong):
        task = AgentTask(correlation_id="conv-x-1", task_id="s1", agent="ping", instruction="x")
        with pytest.raises(RemoteError) as caught:
            await requester.call(
                "ai.agents.ping",
                task,
                AgentResult,
                correlation_id="conv-x-1",
                deadline=Deadline.after(8),
                options=RequestOptions(headers={headers.CALL_PATH: path}),
            )
    assert caught.value.code.value == (code or "call_cycle")
    if code is not None:
        assert started("ping") == []


async def test_parallel_fan_out_never_exceeds_the_budget(
    settings: Settings, requester: Requester
) -> None:
    """4 branches x 3 leaves, all at once, would be 16 calls: the budget is 9."""
    small = msgspec.structs.replace(settings, max_calls=9)
    async with agents_running(small, fan, branch, leaf):
        result = await call_agent(requester, "fan", "go", timeout=8.0)
    assert result.ok
    calls_made = len(started("branch")) + len(started("leaf"))
    assert calls_made <= 9
    refused = str(result.output).count("call_budget")
    assert refused >= 1, result.output  # some were refused, with their code ...
    assert calls_made + refused == 16, (calls_made, refused, result.output)  # ... none lost


async def test_a_forged_budget_cannot_raise_the_workers_own(
    settings: Settings, requester: Requester
) -> None:
    small = msgspec.structs.replace(settings, max_calls=2)
    async with agents_running(small, branch, leaf):
        task = AgentTask(correlation_id="conv-x-2", task_id="s1", agent="branch", instruction="b")
        result = await requester.call(
            "ai.agents.branch",
            task,
            AgentResult,
            correlation_id="conv-x-2",
            deadline=Deadline.after(8),
            options=RequestOptions(headers={headers.CALL_BUDGET: "999999"}),
        )
    assert result.output.count("call_budget") == 1 and len(started("leaf")) == 2


async def test_an_undeclared_call_is_refused_by_the_sdk(
    settings: Settings, requester: Requester
) -> None:
    async with agents_running(settings, sneaky, leaf):
        with pytest.raises(RemoteError) as caught:
            await call_agent(requester, "sneaky", "x", timeout=8.0)
    assert caught.value.code.value == "call_forbidden"
    assert started("leaf") == []


async def test_the_trip_agent_answers_offline_with_nested_calls_under_its_step(
    settings: Settings, requester: Requester
) -> None:
    """The planner routes the question to trip; trip's calls show as events of step s1."""
    message = "What time will it be in Tokyo when I land in 13 hours?"
    correlation_id = new_correlation_id("tester")
    events: list[object] = []
    async with (
        agents_running(settings, *builtin_agents().values()),
        orchestrator_running(settings),
    ):
        reply = None
        for _ in range(50):  # until the orchestrator's catalog has the agents
            events.clear()
            async with requester.stream(
                requester.subjects.converse,
                ConversationRequest(
                    correlation_id=correlation_id, user_id="tester", message=message
                ),
                ConversationReply,
                correlation_id=correlation_id,
                deadline=Deadline.after(15),
            ) as stream:
                async for item in stream:
                    events.append(item)
            reply = events[-1]
            assert isinstance(reply, ConversationReply)
            if reply.steps:
                break
    assert isinstance(reply, ConversationReply)
    assert [(s.agent, s.status) for s in reply.steps] == [("trip", "ok")], reply
    assert "Tokyo" in reply.answer and "13 hours from now" in reply.answer, reply.answer
    calls = [e for e in events if isinstance(e, CallStartedEvent | CallFinishedEvent)]
    assert {e.step for e in calls} == {"s1"}
    paths = sorted((e.kind, e.detail.path) for e in calls)
    assert paths == [
        ("call_finished", "s1>trip>calculator"),
        ("call_finished", "s1>trip>calculator"),
        ("call_finished", "s1>trip>clock"),
        ("call_started", "s1>trip>calculator"),
        ("call_started", "s1>trip>calculator"),
        ("call_started", "s1>trip>clock"),
    ]
    assert all(e.detail.ok for e in calls if isinstance(e, CallFinishedEvent))
    seqs = [e.seq for e in events if not isinstance(e, ConversationReply)]
    assert seqs == sorted(seqs)  # relayed events are numbered in the conversation's order


# -- cancellation ---------------------------------------------------------------------------------


def cancelled(agent: str) -> bool:
    return any(n["agent"] == agent and n["event"] == "cancelled" for n in NOTES)


async def test_a_cancelled_caller_cancels_its_callees_down_the_chain(
    settings: Settings, requester: Requester
) -> None:
    async with agents_running(settings, *CHAIN):
        call = asyncio.ensure_future(call_agent(requester, "chain_a", "hang", timeout=30.0))
        await eventually(lambda: bool(started("chain_d")))
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        # Each caller's own cancellation sent the cancel notice of its one request.
        await eventually(
            lambda: all(cancelled(name) for name in ("chain_a", "chain_b", "chain_c", "chain_d"))
        )


async def test_a_conversation_cancel_reaches_every_descendant(
    settings: Settings, requester: Requester
) -> None:
    async with agents_running(settings, *CHAIN):
        call = asyncio.ensure_future(
            call_agent(requester, "chain_a", "hang", timeout=30.0, correlation_id="conv-bob-9")
        )
        await eventually(lambda: bool(started("chain_d")))
        await requester.publish(requester.subjects.cancel("conv-bob-9"), b"")
        with pytest.raises(RemoteError) as caught:
            await call
    assert caught.value.code.value == "cancelled"
    assert all(cancelled(name) for name in ("chain_a", "chain_b", "chain_c", "chain_d"))


async def test_a_subtree_cancel_stops_only_the_calls_below_its_path(
    settings: Settings, requester: Requester
) -> None:
    """``Switchboard-Cancel-Path: s1>chain_a>chain_b``: chain_c and chain_d stop, chain_b's
    call fails, and the request that carries no call path (chain_a's step) is not hit."""
    async with agents_running(settings, *CHAIN):
        call = asyncio.ensure_future(
            call_agent(requester, "chain_a", "hang", timeout=30.0, correlation_id="conv-bob-10")
        )
        await eventually(lambda: bool(started("chain_d")))
        await requester.publish(
            requester.subjects.cancel("conv-bob-10"),
            b"",
            headers={headers.CANCEL_PATH: "s1>chain_a>chain_b"},
        )
        with pytest.raises(RemoteError) as caught:
            await call
    assert caught.value.code.value == "cancelled"  # chain_b's own request, answered cancelled
    assert cancelled("chain_c") and cancelled("chain_d")
    assert not cancelled("chain_a")


# -- events on ai.events.<id> -------------------------------------------------------------------


async def test_nested_calls_are_published_on_the_events_subject(
    settings: Settings, requester: Requester, nats_client: NATS
) -> None:
    published = msgspec.structs.replace(settings, publish_events=True)
    seen: list[ProgressEvent] = []

    async def on_event(msg: Msg) -> None:
        seen.append(decode_event(msg.data))

    sub = await nats_client.subscribe("ai.events.>", cb=on_event)
    try:
        async with (
            agents_running(published, *builtin_agents().values()),
            orchestrator_running(published),
        ):
            for _ in range(50):
                reply = await converse(
                    requester, "What time will it be in Paris when I land in 2 hours?"
                )
                if reply.steps:
                    break
                await asyncio.sleep(0.1)
            await eventually(
                lambda: any(
                    e.kind == "answered" and e.correlation_id == reply.correlation_id for e in seen
                )
            )
    finally:
        await sub.unsubscribe()
    mine = [e for e in seen if e.correlation_id == reply.correlation_id]
    calls = [e for e in mine if isinstance(e, CallStartedEvent | CallFinishedEvent)]
    assert len(calls) == 6 and {e.step for e in calls} == {"s1"}
    assert {e.detail.path for e in calls} == {"s1>trip>clock", "s1>trip>calculator"}
    kinds = [e.kind for e in mine]
    assert kinds.index("step_started") < kinds.index("call_started")
    assert kinds.index("call_finished") < kinds.index("step_finished")


async def test_the_whole_conversation_shares_one_budget_of_calls(
    settings: Settings, requester: Requester
) -> None:
    """Two steps fan out at once (16 calls each, wanted): the conversation's 9 is all they
    get together, shared out by the orchestrator and given back as the steps end."""
    small = msgspec.structs.replace(settings, max_calls=9)
    async with agents_running(small, fan, branch, leaf), orchestrator_running(small):
        for _ in range(50):  # until the orchestrator's catalog has fan
            reply = await converse(requester, "fan one, and also fan two", agents=["fan"])
            if reply.steps:
                break
            await asyncio.sleep(0.1)
    assert [(s.agent, s.status) for s in reply.steps] == [("fan", "ok"), ("fan", "ok")], reply
    calls_made = len(started("branch")) + len(started("leaf"))
    assert 0 < calls_made <= 9, calls_made
    refused = sum(str(s.output).count("call_budget") for s in reply.steps)
    assert calls_made + refused == 32, (calls_made, refused)


async def test_every_round_of_a_conversation_draws_on_its_one_budget_of_calls(
    settings: Settings, requester: Requester
) -> None:
    """A conversation's rounds run one after the other, each an executor run: they share the
    conversation's budget (a later round gets what the earlier ones left, not a new one)."""
    from switchboard.orchestrator import Deadline, Plan, PlanStep
    from switchboard.orchestrator.engine import EventSink, Executor

    small = msgspec.structs.replace(settings, max_calls=9)
    executor = Executor(requester, heartbeat=0.2, accept_timeout=5.0, retries=0, max_calls=9)
    budget = executor.call_budget()
    assert budget is not None
    quiet = EventSink("conv-tester-rounds", subject=None, publish=None)
    made = []
    async with agents_running(small, fan, branch, leaf):
        for round_ in (1, 2):
            results = await executor.run(
                Plan(steps=[PlanStep(id=f"r{round_}s1", agent="fan", instruction="fan out")]),
                correlation_id="conv-tester-rounds",
                user_id="tester",
                deadline=Deadline.after(20),
                events=quiet,
                calls=budget,
            )
            assert [r.status for r in results] == ["ok"], results
            made.append(len(started("branch")) + len(started("leaf")))
    # Each round fans out for 16 calls (wanted); the two rounds together stayed within the
    # conversation's 9 -- a budget per round would have let each make as many again.
    assert made[0] > 9 // 2, made
    assert made[1] <= 9, made
