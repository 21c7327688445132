"""Progress events: a tagged union on ``kind`` whose bytes are those of the flat struct of old.

``LegacyProgressEvent`` below is the one ``ProgressEvent`` struct every earlier release
sent and read, copied as it was. The tests check, for every kind, that the typed event
encodes to exactly its bytes and that each decodes what the other encodes.
"""

from __future__ import annotations

from typing import Any, Literal, get_args, get_type_hints

import msgspec
import pytest
from hypothesis import given
from msgspec import Struct

from switchboard.orchestrator.core import (
    AnsweredDetail,
    AnsweredEvent,
    DecodeError,
    ErrorInfo,
    Plan,
    PlannedEvent,
    PlanStep,
    ProgressEvent,
    StepFailedEvent,
    StepFinishedDetail,
    StepFinishedEvent,
    StepProgressEvent,
    StepStartedDetail,
    StepStartedEvent,
    decode,
    decode_event,
    encode,
    encode_event,
)
from switchboard.orchestrator.engine.events import EventSink
from tests.fuzz.strategies import DECODER, progress_events


class LegacyProgressEvent(Struct, kw_only=True):
    """The wire struct before the tagged union (``orchestrator/core/envelopes.py``)."""

    correlation_id: str
    kind: Literal[
        "planned", "step_started", "step_progress", "step_finished", "step_failed", "answered"
    ]
    step: str | None = None
    agent: str | None = None
    detail: Any = None
    ts: float = 0.0
    seq: int = 0


#: The kinds the old struct knew; kinds added since (``replanned`` ...) keep its field
#: layout, which only their own tests can show (an old reader refuses their ``kind``).
LEGACY_KINDS = frozenset(get_args(get_type_hints(LegacyProgressEvent)["kind"]))
legacy_progress_events = progress_events.filter(lambda event: event.kind in LEGACY_KINDS)


def legacy(event: ProgressEvent) -> LegacyProgressEvent:
    """``event`` as the old struct: the same fields, its detail as builtins."""
    return LegacyProgressEvent(
        correlation_id=event.correlation_id,
        kind=event.kind,
        step=event.step,
        agent=event.agent,
        detail=msgspec.to_builtins(event.detail),
        ts=event.ts,
        seq=event.seq,
    )


PLAN = Plan(
    steps=[
        PlanStep(id="s1", agent="calculator", instruction="17*23"),
        PlanStep(id="s2", agent="text", instruction="count", depends_on=["s1"], timeout_s=2.5),
    ],
    source="local",
)
CID = "conv-alice-0b9e1c4e-5b8a-4c1e-9d3f-2f0c6a7d8e9f"

#: One event of every kind, as the orchestrator and the agents send them, and the exact
#: bytes an earlier release sent for it (detail built as dicts, as the code then did).
TABLE: list[tuple[ProgressEvent, bytes]] = [
    (
        PlannedEvent(correlation_id=CID, detail=PLAN, ts=1700000000.123, seq=1),
        b'{"correlation_id":"' + CID.encode() + b'","kind":"planned","step":null,"agent":null,'
        b'"detail":{"steps":[{"id":"s1","agent":"calculator","instruction":"17*23",'
        b'"depends_on":[],"required":true,"timeout_s":null},{"id":"s2","agent":"text",'
        b'"instruction":"count","depends_on":["s1"],"required":true,"timeout_s":2.5}],'
        b'"source":"local"},"ts":1700000000.123,"seq":1}',
    ),
    (
        StepStartedEvent(
            correlation_id=CID,
            step="s1",
            agent="calculator",
            detail=StepStartedDetail(instruction="17*23"),
            ts=1700000000.2,
            seq=2,
        ),
        b'{"correlation_id":"' + CID.encode() + b'","kind":"step_started","step":"s1",'
        b'"agent":"calculator","detail":{"instruction":"17*23"},"ts":1700000000.2,"seq":2}',
    ),
    (
        StepProgressEvent(
            correlation_id=CID,
            step="s1",
            agent="calculator",
            detail={"done": 0.5, "note": "caf\u00e9 \u2028"},
            ts=1700000000.25,
            seq=3,
        ),
        b'{"correlation_id":"' + CID.encode() + b'","kind":"step_progress","step":"s1",'
        b'"agent":"calculator","detail":{"done":0.5,"note":"caf\xc3\xa9 \xe2\x80\xa8"},'
        b'"ts":1700000000.25,"seq":3}',
    ),
    (
        StepProgressEvent(correlation_id=CID, step="s2", agent="text", detail="halfway"),
        b'{"correlation_id":"' + CID.encode() + b'","kind":"step_progress","step":"s2",'
        b'"agent":"text","detail":"halfway","ts":0.0,"seq":0}',
    ),
    (
        StepFinishedEvent(
            correlation_id=CID,
            step="s1",
            agent="calculator",
            detail=StepFinishedDetail(output="17 * 23 = 391"),
            ts=1700000000.3,
            seq=4,
        ),
        b'{"correlation_id":"' + CID.encode() + b'","kind":"step_finished","step":"s1",'
        b'"agent":"calculator","detail":{"output":"17 * 23 = 391"},"ts":1700000000.3,"seq":4}',
    ),
    (
        StepFailedEvent(
            correlation_id=CID,
            step="s2",
            agent="text",
            detail=ErrorInfo("timeout", "Request timed out."),
            ts=1700000000.4,
            seq=5,
        ),
        b'{"correlation_id":"' + CID.encode() + b'","kind":"step_failed","step":"s2",'
        b'"agent":"text","detail":{"code":"timeout","message":"Request timed out."},'
        b'"ts":1700000000.4,"seq":5}',
    ),
    (
        AnsweredEvent(
            correlation_id=CID,
            detail=AnsweredDetail(answer="17 * 23 = 391", partial=True),
            ts=1700000000.5,
            seq=6,
        ),
        b'{"correlation_id":"' + CID.encode() + b'","kind":"answered","step":null,'
        b'"agent":null,"detail":{"answer":"17 * 23 = 391","partial":true},'
        b'"ts":1700000000.5,"seq":6}',
    ),
]
KINDS = ["planned", "step_started", "step_progress", "step_finished", "step_failed", "answered"]


def test_the_table_has_every_kind() -> None:
    assert sorted({event.kind for event, _ in TABLE}) == sorted(KINDS)


@pytest.mark.parametrize(("event", "wire"), TABLE, ids=[f"{e.kind}-{e.seq}" for e, _ in TABLE])
def test_every_kind_encodes_to_the_bytes_of_old(event: ProgressEvent, wire: bytes) -> None:
    assert encode_event(event) == wire
    assert encode(legacy(event)) == wire  # the table is what the old struct wrote


@pytest.mark.parametrize(("event", "wire"), TABLE, ids=[f"{e.kind}-{e.seq}" for e, _ in TABLE])
def test_every_kind_decodes_from_the_bytes_of_old(event: ProgressEvent, wire: bytes) -> None:
    decoded = decode_event(wire)
    assert type(decoded) is type(event)
    assert decoded == event
    assert decode(wire, LegacyProgressEvent) == legacy(event)


@DECODER
@given(event=legacy_progress_events)
def test_old_and_new_encodings_are_byte_identical(event: ProgressEvent) -> None:
    old = legacy(event)
    assert encode_event(event) == encode(old)
    assert decode_event(encode(old)) == event  # a new reader reads an old writer
    assert decode(encode_event(event), LegacyProgressEvent) == old  # and the reverse


@DECODER
@given(event=progress_events)
def test_the_generic_encoding_differs_in_key_order_only(event: ProgressEvent) -> None:
    # codec.encode writes the tag first; every reader still gets the same event.
    assert decode_event(encode(event)) == event
    assert msgspec.json.decode(encode(event)) == msgspec.json.decode(encode_event(event))


async def test_the_sink_sends_the_same_bytes_for_typed_and_builtin_details() -> None:
    sent: list[bytes] = []

    async def progress(data: bytes) -> bool:
        sent.append(data)
        return True

    typed = EventSink(CID, subject=None, publish=None, progress=progress)
    builtin = EventSink(CID, subject=None, publish=None, progress=progress)
    error = ErrorInfo("skipped", "Skipped because step s1 failed.")
    await typed.emit("step_failed", step="s2", agent="text", detail=error)
    await builtin.emit("step_failed", step="s2", agent="text", detail=msgspec.to_builtins(error))
    await typed.emit("planned", detail=PLAN)
    await builtin.emit("planned", detail=msgspec.to_builtins(PLAN))
    first, second, third, fourth = (msgspec.json.decode(data) for data in sent)
    for a, b in ((first, second), (third, fourth)):
        del a["ts"], b["ts"]
        assert a == b
    assert [e.kind for e in map(decode_event, sent)] == ["step_failed"] * 2 + ["planned"] * 2
    assert isinstance(decode_event(sent[0]), StepFailedEvent)


def test_readers_match_on_the_type() -> None:
    seen = []
    for _event, wire in TABLE:
        match decode_event(wire):
            case PlannedEvent(detail=Plan(steps=steps)):
                seen.append(f"planned {len(steps)}")
            case StepFailedEvent(step=step, detail=ErrorInfo(code=code)):
                seen.append(f"{step} failed: {code}")
            case AnsweredEvent(detail=AnsweredDetail(partial=partial)):
                seen.append(f"answered partial={partial}")
            case other:
                seen.append(other.kind)
    assert seen == [
        "planned 2",
        "step_started",
        "step_progress",
        "step_progress",
        "step_finished",
        "s2 failed: timeout",
        "answered partial=True",
    ]


@pytest.mark.parametrize(
    ("data", "path"),
    [
        (b'{"correlation_id":"c","kind":"teleported","detail":null}', "$.kind"),
        (b'{"correlation_id":"c","detail":null}', "$"),
        (b'{"correlation_id":"c","kind":"step_failed","detail":{"code":"x"}}', "$.detail"),
        (b'{"correlation_id":"c","kind":"planned","detail":{"steps":"none"}}', "$.detail.steps"),
    ],
)
def test_what_is_not_an_event_is_a_decode_error_that_says_where(data: bytes, path: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_event(data)
    assert caught.value.path == path
    assert str(caught.value).startswith("Invalid PlannedEvent | StepStartedEvent")
