"""Offline re-planning over NATS: the rules a user can see working, and follow-up questions."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import msgspec

from switchboard.agents import builtin_agents
from switchboard.orchestrator import (
    ConversationReply,
    ConversationRequest,
    HistoryReply,
    HistoryRequest,
    ReplannedEvent,
    Requester,
    Settings,
    decode_event,
    encode_event,
    new_correlation_id,
)
from switchboard.orchestrator.core import Deadline
from tests.support.agents import shout, tally, upper
from tests.support.system import agents_running, converse, orchestrator_running


async def ask_streaming(
    requester: Requester, message: str, **fields: object
) -> tuple[ConversationReply, list[object]]:
    """One conversation with its progress events (decoded, in order) and its reply."""
    correlation_id = new_correlation_id("tester")
    request = ConversationRequest(
        correlation_id=correlation_id,
        user_id="tester",
        message=message,
        **fields,  # type: ignore[arg-type]
    )
    events: list[object] = []
    final: ConversationReply | None = None
    async with requester.stream(
        requester.subjects.converse,
        request,
        ConversationReply,
        correlation_id=correlation_id,
        deadline=Deadline.after(20),
    ) as stream:
        async for item in stream:
            if isinstance(item, ConversationReply):
                final = item
            else:
                events.append(item)
    assert final is not None
    return final, events


def replanned(events: list[object]) -> list[ReplannedEvent]:
    return [e for e in events if isinstance(e, ReplannedEvent)]


async def test_a_step_that_needs_another_steps_output_is_filled_from_it(
    settings: Settings, requester: Requester
) -> None:
    async with (
        agents_running(settings, *builtin_agents().values(), shout),
        orchestrator_running(settings),
    ):
        reply, events = await ask_streaming(
            requester, "shout the result, and what time is it in Tokyo?"
        )
    # Round 1: the shout had nothing to shout (the clock ran beside it, not before it).
    assert [(s.id, s.agent, s.status, s.round) for s in reply.steps] == [
        ("s1", "shout", "failed", 1),
        ("s2", "clock", "ok", 1),
        ("r2s1", "shout", "ok", 2),
    ]
    assert "TOKYO" in reply.steps[2].output
    [event] = replanned(events)
    assert event.detail.round == 2
    assert event.detail.plan.steps[0].depends_on == ["s2"]
    assert "s1 (shout) needed another step's output" in event.detail.reason
    assert "output of s2 (clock)" in event.detail.reason
    assert not reply.partial  # the failed step ran again and answered
    assert "failed" not in reply.answer  # nor is the answer about it
    # The event decodes from its wire form like every other kind (the page reads it so).
    assert decode_event(encode_event(event)) == event


async def test_a_step_whose_input_was_unclear_is_retried_on_another_agent(
    settings: Settings, requester: Requester
) -> None:
    async with (
        agents_running(settings, *builtin_agents().values(), tally, upper),
        orchestrator_running(settings),
    ):
        reply, events = await ask_streaming(requester, "what is 1.5 plus 2.25, then shout it")
    assert [(s.id, s.agent, s.status, s.round) for s in reply.steps] == [
        ("s1", "tally", "failed", 1),
        ("s2", "upper", "skipped", 1),
        ("r2s1", "calculator", "ok", 2),  # tally refused decimals: the calculator can do it
        ("r2s2", "upper", "ok", 2),  # what was skipped for it runs after the retry
    ]
    assert reply.steps[2].output == "1.5 + 2.25 = 3.75"
    assert reply.steps[3].output == "1.5 + 2.25 = 3.75".upper()
    [event] = replanned(events)
    assert "s1 (tally) could not use its input (agent_error)" in event.detail.reason
    assert "r2s1 asks calculator" in event.detail.reason
    assert event.detail.plan.steps[1].depends_on == ["r2s1"]
    assert not reply.partial


async def test_rules_stop_at_the_round_limit(settings: Settings, requester: Requester) -> None:
    limited = msgspec.structs.replace(settings, max_rounds=1)
    async with (
        agents_running(settings, *builtin_agents().values(), tally),
        orchestrator_running(limited),
    ):
        reply, events = await ask_streaming(requester, "what is 1.5 plus 2.25")
    assert [(s.agent, s.status) for s in reply.steps] == [("tally", "failed")]
    assert replanned(events) == []
    assert reply.partial


async def test_a_follow_up_question_is_understood_offline(
    settings: Settings, requester: Requester
) -> None:
    async with (
        agents_running(settings, *builtin_agents().values()),
        orchestrator_running(settings),
    ):
        first = await converse(requester, "what time is it in Tokyo?", conversation_id="trip")
        follow = await converse(requester, "and in London?", conversation_id="trip")
        alone = await converse(requester, "and in London?")  # no history: not a follow-up
        history = await requester.call(
            "ai.orchestrator.history",
            HistoryRequest(user_id="tester", conversation_id="trip"),
            HistoryReply,
            correlation_id="conv-tester-h",
            deadline=Deadline.after(10),
        )
    assert "Tokyo" in first.answer
    london_hour = datetime.now(UTC).astimezone(ZoneInfo("Europe/London")).strftime("%H:")
    assert [s.agent for s in follow.steps] == ["clock"]
    assert "London" in follow.answer
    assert london_hour in follow.answer or "Europe/London" in follow.answer
    assert "Tokyo" not in follow.answer
    assert [s.agent for s in alone.steps] != ["clock"]  # alone, it means nothing to the clock
    # History keeps each turn's steps, so the page can show them after a reload.
    assert [t.message for t in history.turns] == ["what time is it in Tokyo?", "and in London?"]
    [step] = history.turns[1].steps
    assert (step.agent, step.status, step.round) == ("clock", "ok", 1)
    assert "London" in step.instruction
    assert "London" in step.output


def test_only_short_elliptical_follow_ups_are_resolved() -> None:
    from switchboard.orchestrator import ConversationTurn, TurnStep
    from switchboard.orchestrator.engine import resolve_followup

    tokyo = ConversationTurn(
        correlation_id="c1",
        message="what is 2*3 and what time is it in Tokyo?",
        answer="...",
        steps=[
            TurnStep(id="s1", agent="calculator", instruction="what is 2*3"),
            TurnStep(id="s2", agent="clock", instruction="what time is it in Tokyo"),
        ],
    )
    old = ConversationTurn(correlation_id="c0", message="weather in Oslo?", answer="...")
    assert resolve_followup("and in London?", [tokyo]) == "what time is it in London"
    assert resolve_followup("what about Paris", [tokyo]) == "what time is it in Paris"
    assert resolve_followup("and for Bergen?", [old]) == "weather for Bergen?"  # no steps kept
    assert resolve_followup("and in London?", []) is None  # nothing to follow
    assert resolve_followup("what is 5*5?", [tokyo]) is None  # a question of its own
    assert resolve_followup("and " + "very " * 10 + "long", [tokyo]) is None
