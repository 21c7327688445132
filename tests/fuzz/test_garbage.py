"""Garbage on every subject, with a raw NATS client: nothing crashes, nothing goes silent.

Each test sends one kind of bad input to a live system (real nats-server,
the built-in agents, the orchestrator) as requests and as fire-and-forget
publishes, checks what comes back, then checks that every part still serves
a normal conversation with nothing left in flight and nothing pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import msgspec
import nats
import nats.errors
import pytest

from switchboard.agents import Agent, TaskContext, builtin_agents
from switchboard.orchestrator import AgentTask, OrchestratorService, encode
from switchboard.orchestrator.core import headers as h
from switchboard.orchestrator.core.catalog import ROLE_AGENT, ROLE_KEY, AgentInfo
from switchboard.orchestrator.core.conversation import ConversationReply
from switchboard.orchestrator.core.deadline import Deadline
from switchboard.orchestrator.core.discovery import (
    EndpointInfo,
    ServiceInfo,
    ServicePing,
    ServiceStatsInfo,
)
from switchboard.orchestrator.core.envelopes import AgentResult, ErrorReply, Usage
from switchboard.orchestrator.core.errors import SwitchboardError
from tests.fuzz.conftest import ENDPOINT_MAX_PAYLOAD, LiveSystem
from tests.helpers import metric

AGENTS = sorted(builtin_agents())
CONVERSE = "ai.orchestrator.converse"
HISTORY = "ai.orchestrator.history"
LISTING = "ai.orchestrator.agents"

#: Served request subjects whose payload is decoded, with the body type of their error replies.
DECODING: dict[str, type] = {
    CONVERSE: ConversationReply,
    HISTORY: ErrorReply,
    **{f"ai.agents.{name}": AgentResult for name in AGENTS},
}
#: Every served request subject (the agent listing ignores its payload).
SERVED = [*DECODING, LISTING]
#: The endpoint name each subject's metrics are labelled with.
ENDPOINT = {
    CONVERSE: "orchestrator",
    HISTORY: "orchestrator-history",
    LISTING: "orchestrator-agents",
    **{f"ai.agents.{name}": name for name in AGENTS},
}

#: Payloads none of the served subjects can decode (their own failure modes, invalid UTF-8
#: and deep nesting, have tests of their own below).
GARBAGE: dict[str, bytes] = {
    "noise": bytes(range(256)),
    "empty": b"",
    "whitespace": b" \t\r\n ",
    "nul": b"\x00" * 16,
    "null": b"null",
    "number": b"42",
    "string": b'"ai.orchestrator.converse"',
    "array": b'[{"correlation_id": "c"}]',
    "empty object": b"{}",
    "wrong types": b'{"correlation_id": 1, "user_id": [], "task_id": {}, "message": null}',
    "unsafe ids": b'{"correlation_id": "a.b", "user_id": "*", "conversation_id": ">", '
    b'"task_id": "a b", "agent": "x", "instruction": "", "message": "hi"}',
    "truncated": b'{"correlation_id": "conv-x-1", "user_id": "x", "message": "hi',
    "trailing junk": b'{"correlation_id": "c", "user_id": "u", "message": "hi"} junk',
    "byte order mark": b'\xef\xbb\xbf{"correlation_id": "c", "user_id": "u", "message": "hi"}',
    "nan": b'{"correlation_id": "c", "user_id": "u", "message": "hi", "timeout_s": NaN}',
    "huge number": b'{"correlation_id": "c", "user_id": "u", "message": "hi", "timeout_s": 1e999}',
    "another message": encode(ConversationReply(correlation_id="c", answer="wrong way round")),
    "a result": encode(AgentResult(correlation_id="c", task_id="t", ok=True, output=[1, 2])),
    "xml": b"<conversation><message>hi</message></conversation>",
}

DEEP = b"[" * 5_000 + b"]" * 5_000
#: Seconds an error reply may take (they take milliseconds; past this it is silence).
REPLY_WITHIN = 3.0


def deadline() -> dict[str, str]:
    return {h.CORRELATION_ID: "conv-fuzzer-garbage", h.TIMEOUT: Deadline.after(10).header()}


def assert_error_reply(
    live: LiveSystem, subject: str, data: bytes, code: str, headers: dict[str, str] | None
) -> None:
    """The request gets one final error reply with ``code``, in header and body alike."""
    final, _before = live.ask(subject, data, headers=headers, timeout=REPLY_WITHIN)
    hdrs = final.headers or {}
    assert hdrs.get(h.KIND) == "final"
    assert hdrs.get(h.ERROR) == code, (subject, hdrs, final.data[:300])
    body = msgspec.json.decode(final.data, type=DECODING.get(subject, ErrorReply))
    assert body.error is not None
    assert body.error.code == code
    assert body.error.message and "Traceback" not in body.error.message


def publish_all(live: LiveSystem, items: list[tuple[str, bytes, dict[str, str] | None]]) -> None:
    """Fire-and-forget publishes (no reply subject), then a flush."""

    async def send() -> None:
        for subject, data, headers in items:
            await live.nc.publish(subject, data, headers=headers)
        await live.nc.flush()

    live.run(send())


def served_counts(outcome: str) -> dict[str, float]:
    return {
        subject: metric(
            "switchboard_endpoint_requests_total", endpoint=ENDPOINT[subject], outcome=outcome
        )
        for subject in SERVED
    }


def rejected_counts(reason: str) -> dict[str, float]:
    return {
        subject: metric(
            "switchboard_endpoint_rejected_total", endpoint=ENDPOINT[subject], reason=reason
        )
        for subject in SERVED
    }


# -- payloads ------------------------------------------------------------------------------------


@pytest.mark.parametrize("subject", list(DECODING))
def test_garbage_requests_get_bad_request_replies(live: LiveSystem, subject: str) -> None:
    for name, data in GARBAGE.items():
        for headers in (deadline(), None):  # with Switchboard's headers, and header-less
            try:
                assert_error_reply(live, subject, data, "bad_request", headers)
            except AssertionError as exc:
                raise AssertionError(f"garbage {name!r}: {exc}") from exc
    live.assert_serving()


def test_the_agent_listing_ignores_its_payload(live: LiveSystem) -> None:
    for data in GARBAGE.values():
        msg = live.request(LISTING, data, headers=deadline())
        assert h.ERROR not in (msg.headers or {})
        agents = msgspec.json.decode(msg.data, type=list[AgentInfo])
        assert sorted(a.name for a in agents) == AGENTS
    live.assert_serving()


@pytest.mark.parametrize("subject", SERVED)
def test_payloads_past_the_endpoint_limit_get_too_large_replies(
    live: LiveSystem, subject: str
) -> None:
    before = rejected_counts("too_large")[subject]
    assert_error_reply(live, subject, b"x" * (ENDPOINT_MAX_PAYLOAD + 1), "too_large", deadline())
    assert_error_reply(live, subject, b"{" * (ENDPOINT_MAX_PAYLOAD + 1), "too_large", None)
    at_limit = b" " * (ENDPOINT_MAX_PAYLOAD - 2) + b"{}"  # parsed: the limit is inclusive
    if subject == LISTING:
        assert h.ERROR not in (live.request(subject, at_limit).headers or {})
    else:
        assert_error_reply(live, subject, at_limit, "bad_request", None)
    assert rejected_counts("too_large")[subject] == before + 2
    live.assert_serving()


@pytest.mark.parametrize("subject", list(DECODING))
def test_invalid_utf8_gets_a_bad_request_reply(live: LiveSystem, subject: str) -> None:
    data = (
        b'{"correlation_id": "c\xff", "user_id": "u\xff", "message": "caf\xe9", '
        b'"task_id": "t\xff", "agent": "a", "instruction": "caf\xe9", '
        b'"conversation_id": "c\xff"}'
    )
    assert_error_reply(live, subject, data, "bad_request", deadline())
    live.assert_serving()


@pytest.mark.parametrize("subject", list(DECODING))
def test_deeply_nested_json_gets_a_bad_request_reply(live: LiveSystem, subject: str) -> None:
    fields = (
        b'"correlation_id": "c", "user_id": "u", "message": "hi", "task_id": "t", '
        b'"agent": "a", "instruction": "x", "conversation_id": "c"'
    )
    for data in (
        b"{" + fields + b', "inputs": {"a": ' + DEEP + b"}}",  # in a free-form field
        b"{" + fields + b', "x-future-field": ' + DEEP + b"}",  # in an unknown field
    ):
        assert_error_reply(live, subject, data, "bad_request", deadline())
    live.assert_serving()


@pytest.mark.parametrize("subject", list(DECODING))
def test_an_oversized_deeply_nested_payload_gets_a_too_large_reply(
    live: LiveSystem, subject: str
) -> None:
    """Refused unparsed for its size: nothing may parse it on the way to the error reply."""
    data = b'{"task_id": "t", "x": ' + b"[" * ENDPOINT_MAX_PAYLOAD
    assert_error_reply(live, subject, data, "too_large", deadline())
    live.assert_serving()


def test_payloads_past_the_server_limit_are_refused_before_sending(live: LiveSystem) -> None:
    limit = live.nc.max_payload
    assert limit > ENDPOINT_MAX_PAYLOAD

    async def send() -> None:
        for subject in SERVED:
            with pytest.raises(nats.errors.MaxPayloadError):
                await live.nc.publish(subject, b"x" * (limit + 1))
            with pytest.raises(nats.errors.MaxPayloadError):
                await live.nc.request(subject, b"x" * (limit + 1), timeout=2)
        await live.nc.flush()

    live.run(send())
    assert live.nc.is_connected
    live.assert_serving()


def test_a_client_that_ignores_the_server_limit_harms_only_itself(live: LiveSystem) -> None:
    """A raw TCP client sends a message past max_payload: the server drops that client."""
    limit = live.nc.max_payload
    host, port = live.nats_url.removeprefix("nats://").rsplit(":", 1)

    async def rogue() -> bytes:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            await reader.readline()  # INFO
            writer.write(b'CONNECT {"verbose":false,"pedantic":false}\r\n')
            writer.write(f"PUB {CONVERSE} {limit + 10}\r\n".encode())
            await writer.drain()
            return await asyncio.wait_for(reader.read(), 10)  # the server's answer, then EOF
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    assert b"Maximum Payload" in live.run(rogue())
    live.assert_serving()


def test_a_request_just_under_the_server_limit_leaves_the_requester_connected(
    live: LiveSystem,
) -> None:
    """The payload fits max_payload; with the request's headers the message does not.

    The requester must refuse it (too_large) or send it: never let the server close
    the process's connection, which would end every request it has in flight.
    """
    requester = live.service.requester
    payload = b"x" * (requester.nc.max_payload - 16)

    async def send() -> str:
        try:
            msg = await requester.request(
                "ai.agents.calculator",
                payload,
                correlation_id="conv-fuzzer-big",
                deadline=Deadline.after(5),
            )
        except SwitchboardError as exc:
            return exc.code.value
        return (msg.headers or {}).get(h.ERROR, "ok")

    outcome = live.run(send(), timeout=20)
    assert requester.nc.is_connected, f"the orchestrator's connection is {requester.nc._status}"
    assert outcome in ("too_large", "bad_request"), outcome
    live.assert_serving()


@pytest.fixture
def big_replies() -> Iterator[LiveSystem]:
    """A system with the server's own limit (1 MiB) and an agent whose output is any size."""

    async def handler(task: AgentTask, ctx: TaskContext) -> str:
        return "x" * int(task.instruction)

    agent = Agent(name="bigreply", description="Replies with N characters.", handler=handler)
    system = LiveSystem(max_payload=1024 * 1024, extra_agents=[agent]).start()
    try:
        yield system
    finally:
        system.stop()


def test_a_reply_just_under_the_server_limit_leaves_the_worker_connected(
    big_replies: LiveSystem,
) -> None:
    """The agent's result fits max_payload; with the reply's headers the message does not.

    The requester must get a final reply (an error, too_large, is fine), and the worker
    must keep its connection.
    """
    live = big_replies
    worker = next(w for w in live.workers if w.agent.name == "bigreply")
    correlation_id = "conv-fuzzer-big"
    empty = AgentResult(
        correlation_id=correlation_id, task_id="t", ok=True, output="", usage=Usage(),
        duration_ms=1.5,
    )  # fmt: skip
    size = live.nc.max_payload - len(encode(empty)) - 40  # the headers add about 80 bytes
    task = AgentTask(
        correlation_id=correlation_id, task_id="t", agent="bigreply", instruction=str(size)
    )
    final, _before = live.ask(
        "ai.agents.bigreply",
        encode(task),
        headers={h.CORRELATION_ID: correlation_id, h.TIMEOUT: Deadline.after(10).header()},
        timeout=5,
    )
    assert worker.endpoint._nc.is_connected, "the worker's connection was closed"
    assert (final.headers or {}).get(h.ERROR) in (None, "too_large")
    live.assert_serving()


def test_a_reply_past_the_server_limit_gets_an_error_reply(big_replies: LiveSystem) -> None:
    """A result too large to send at all: the requester gets an error reply, not silence."""
    live = big_replies
    task = AgentTask(
        correlation_id="conv-fuzzer-big",
        task_id="t",
        agent="bigreply",
        instruction=str(live.nc.max_payload + 1_000),
    )
    final, _before = live.ask("ai.agents.bigreply", encode(task), headers=deadline(), timeout=5)
    assert (final.headers or {}).get(h.ERROR) == "too_large"
    live.assert_serving()


# -- headers -------------------------------------------------------------------------------------

BAD_DEADLINES = ["abc", "", " ", "-5", "1.5e12", "12:00", "0x10", "NaN", "9" * 12, "9" * 5_000]


@pytest.mark.parametrize("subject", SERVED)
def test_bad_deadline_headers_get_bad_request_replies(live: LiveSystem, subject: str) -> None:
    before = rejected_counts("bad_request")[subject]
    for value in BAD_DEADLINES:
        headers = {h.TIMEOUT: value, h.CORRELATION_ID: "conv-fuzzer-deadline"}
        assert_error_reply(live, subject, b"{}", "bad_request", headers)
    assert rejected_counts("bad_request")[subject] == before + len(BAD_DEADLINES)
    live.assert_serving()


@pytest.mark.parametrize("subject", SERVED)
def test_a_deadline_too_large_for_a_float_gets_a_reply(live: LiveSystem, subject: str) -> None:
    """400 digits parse as an int but not as a float of seconds: answer, never go silent."""
    headers = {h.TIMEOUT: "9" * 400, h.CORRELATION_ID: "conv-fuzzer-deadline"}
    final, _before = live.ask(subject, b"{}", headers=headers, timeout=REPLY_WITHIN)
    assert (final.headers or {}).get(h.ERROR) in (None, "bad_request")
    live.assert_serving()


def test_requests_past_their_deadline_are_dropped_and_counted(live: LiveSystem) -> None:
    """Work nobody waits for any more is not done (DESIGN.md); it is counted, not answered."""
    expired = ["0", Deadline.after(-1).header()]  # a budget spent before it was sent
    before = {s: metric("switchboard_endpoint_expired_total", endpoint=ENDPOINT[s]) for s in SERVED}
    replies: list[Any] = []

    async def collect(msg: Any) -> None:
        replies.append(msg)

    async def send() -> None:
        inbox = live.nc.new_inbox()
        sub = await live.nc.subscribe(inbox, cb=collect)
        for subject in SERVED:
            for value in expired:
                await live.nc.publish(subject, b"{}", reply=inbox, headers={h.TIMEOUT: value})
        await live.nc.flush()
        await asyncio.sleep(0.5)
        await sub.unsubscribe()

    live.run(send())
    assert replies == []
    for subject in SERVED:
        after = metric("switchboard_endpoint_expired_total", endpoint=ENDPOINT[subject])
        assert after == before[subject] + len(expired), subject
    live.assert_serving()


BAD_HEARTBEATS = ["abc", "", "-1", "0", "1e3", "0.5", "9" * 400, "9" * 5_000]


@pytest.mark.parametrize("subject", SERVED)
def test_bad_heartbeat_headers_still_get_a_final_reply(live: LiveSystem, subject: str) -> None:
    for value in BAD_HEARTBEATS:
        headers = {**deadline(), h.HEARTBEAT: value}
        final, before = live.ask(subject, b"{}", headers=headers, timeout=5)
        assert all((m.headers or {}).get(h.KIND) in ("accepted", "heartbeat") for m in before)
        assert (final.headers or {}).get(h.KIND) == "final"
    live.assert_serving()


@pytest.fixture
def one_at_a_time() -> Iterator[LiveSystem]:
    """A system whose endpoints run one request at a time (the rest wait in the backlog)."""
    system = LiveSystem(max_concurrency=1).start()
    try:
        yield system
    finally:
        system.stop()
    assert system.loop_errors == [], system.loop_errors


def test_a_bad_heartbeat_header_on_a_queued_request_is_harmless(
    one_at_a_time: LiveSystem,
) -> None:
    """Queued requests start from a done-callback: a bad header there must not escape."""
    live = one_at_a_time
    body = encode(AgentTask(correlation_id="c", task_id="t", agent="calculator", instruction="2*3"))

    async def burst() -> list[Any]:
        headers = {**deadline(), h.HEARTBEAT: "9" * 400}
        return list(
            await asyncio.gather(
                *(live._ask("ai.agents.calculator", body, headers, 10) for _ in range(6))
            )
        )

    for final, _before in live.run(burst(), timeout=30):
        assert (final.headers or {}).get(h.ERROR) is None
    live.assert_serving()


ODD_CORRELATION_IDS = ["a.b", "*", ">", "ai.cancel.x", "x" * 10_000, "日本語", "a\tb", "-", "%00"]


@pytest.mark.parametrize("subject", SERVED)
def test_odd_correlation_ids_are_echoed_and_harmless(live: LiveSystem, subject: str) -> None:
    for value in ODD_CORRELATION_IDS:
        headers = {h.CORRELATION_ID: value, h.TIMEOUT: Deadline.after(10).header()}
        final, _before = live.ask(subject, b"not json", headers=headers, timeout=5)
        assert (final.headers or {}).get(h.CORRELATION_ID) == value
    live.assert_serving()


def test_a_valid_conversation_under_an_odd_header_correlation_id_is_answered(
    live: LiveSystem,
) -> None:
    """The body's correlation id names the conversation; the header's is only echoed."""
    body = b'{"correlation_id": "conv-fuzzer-1", "user_id": "fuzzer", "message": "what is 2+3"}'
    for value in ODD_CORRELATION_IDS:
        headers = {h.CORRELATION_ID: value}
        final, _before = live.ask(CONVERSE, body, headers=headers, timeout=10)
        reply = msgspec.json.decode(final.data, type=ConversationReply)
        assert reply.answer == "2 + 3 = 5", reply
    live.assert_serving()


# -- fire and forget -----------------------------------------------------------------------------


def test_garbage_publishes_without_a_reply_subject_are_counted_and_dropped(
    live: LiveSystem,
) -> None:
    bad_before, big_before = served_counts("bad_request"), rejected_counts("too_large")
    items: list[tuple[str, bytes, dict[str, str] | None]] = []
    for subject in DECODING:
        for data in GARBAGE.values():
            items.append((subject, data, None))
            items.append((subject, data, deadline()))
    for subject in SERVED:
        items.append((subject, b"x" * (ENDPOINT_MAX_PAYLOAD + 1), None))
    publish_all(live, items)

    def counted() -> bool:
        # A flush only says the server has them: wait until the workers counted them all.
        bad_after, big_after = served_counts("bad_request"), rejected_counts("too_large")
        return all(bad_after[s] == bad_before[s] + 2 * len(GARBAGE) for s in DECODING) and all(
            big_after[s] == big_before[s] + 1 for s in SERVED
        )

    give_up = time.monotonic() + 20
    while not counted() and time.monotonic() < give_up:
        time.sleep(0.05)
    live.wait_idle()
    bad_after, big_after = served_counts("bad_request"), rejected_counts("too_large")
    for subject in DECODING:
        assert bad_after[subject] == bad_before[subject] + 2 * len(GARBAGE), subject
    for subject in SERVED:
        assert big_after[subject] == big_before[subject] + 1, subject
    live.assert_serving()


# -- cancel notices, events ----------------------------------------------------------------------

ODD_CANCEL_SUBJECTS = [
    "ai.cancel.conv-nobody-1",
    "ai.cancel.日本語",
    "ai.cancel.%00",
    "ai.cancel.$x",
    "ai.cancel.-",
    "ai.cancel." + "x" * 1_000,
    "ai.cancel.a.b",  # two tokens: matches no worker's ai.cancel.*
]


def test_cancel_notices_for_unknown_or_odd_ids_are_ignored(live: LiveSystem) -> None:
    received = metric("switchboard_cancel_notices_total", direction="received")
    replies: list[Any] = []

    async def collect(msg: Any) -> None:
        replies.append(msg)

    async def send() -> None:
        inbox = live.nc.new_inbox()
        sub = await live.nc.subscribe(inbox, cb=collect)
        for subject in ODD_CANCEL_SUBJECTS:
            for data in (b"", *GARBAGE.values()):
                await live.nc.publish(subject, data)
                await live.nc.publish(subject, data, reply=inbox)
            for reply_to in ("", "_INBOX.nobody.x", "not a subject", "*", "x" * 5_000):
                await live.nc.publish(subject, b"", headers={h.REPLY_TO_CANCEL: reply_to})
        await live.nc.flush()
        await asyncio.sleep(0.3)
        await sub.unsubscribe()

    live.run(send())
    answers = [m for m in replies if (m.headers or {}).get(h.NATS_STATUS) != "503"]
    assert answers == []  # a notice is never answered (503s are the server's: "a.b" is no one's)
    assert metric("switchboard_cancel_notices_total", direction="received") == received
    live.assert_serving()


def test_garbage_on_event_subjects_changes_nothing(live: LiveSystem) -> None:
    async def send() -> None:
        for subject in ("ai.events.x", "ai.events.conv-fuzzer-1", "ai.events.a.b.c"):
            for data in GARBAGE.values():
                await live.nc.publish(subject, data, headers=deadline())
            with pytest.raises(nats.errors.NoRespondersError):  # only watchers listen there
                await live.nc.request(subject, b"garbage", timeout=2)
        await live.nc.flush()

    live.run(send())
    live.assert_serving()


# -- the NATS service API ------------------------------------------------------------------------

SERVICE_TYPES = {"PING": ServicePing, "INFO": ServiceInfo, "STATS": ServiceStatsInfo}
SERVICES = ["orchestrator", *AGENTS]


def test_the_service_api_answers_whatever_the_payload(live: LiveSystem) -> None:
    responders = {r.name: r for r in [live.service.responder, *(w.responder for w in live.workers)]}

    async def ask(subject: str, data: bytes) -> bytes:
        return (await live.nc.request(subject, data, timeout=3)).data

    for verb, type_ in SERVICE_TYPES.items():
        for data in (b"", *GARBAGE.values()):
            msgspec.json.decode(live.run(ask(f"$SRV.{verb}", data)), type=type_)
            for name in SERVICES:
                for subject in (f"$SRV.{verb}.{name}", f"$SRV.{verb}.{name}.{responders[name].id}"):
                    answer = msgspec.json.decode(live.run(ask(subject, data)), type=type_)
                    assert answer.name == name
        with pytest.raises(nats.errors.NoRespondersError):
            live.run(ask(f"$SRV.{verb}.nobody", b"x"))
    publish_all(
        live, [(f"$SRV.{verb}", d, None) for verb in SERVICE_TYPES for d in GARBAGE.values()]
    )
    live.assert_serving()


def _info(name: str, **endpoint_metadata: str) -> bytes:
    return encode(
        ServiceInfo(
            name=name,
            id=f"rogue-{len(name)}",
            version="1",
            description="Knows everything about zebras.",
            metadata={ROLE_KEY: ROLE_AGENT},
            endpoints=[
                EndpointInfo(
                    name=name,
                    subject=f"ai.agents.{name}",
                    queue_group=f"agent-{name}",
                    metadata=dict(endpoint_metadata),
                )
            ],
        )
    )


@contextlib.contextmanager
def rogue_discovery(live: LiveSystem, answers: list[bytes]) -> Iterator[None]:
    """A rogue process answering every ``$SRV.INFO`` with ``answers``."""

    async def answer(msg: Any) -> None:
        for data in answers:
            await live.nc.publish(msg.reply, data)

    sub = live.run(live.nc.subscribe("$SRV.INFO", cb=answer))
    try:
        yield
    finally:
        live.run(sub.unsubscribe())


def refreshed(service: OrchestratorService, live: LiveSystem) -> list[str]:
    """The catalog after a full discovery round that started after now."""

    async def fresh() -> list[str]:
        await asyncio.sleep(service.catalog.window + 0.1)  # let a round under way finish
        await service.catalog.refresh()
        return sorted(service.catalog.agents)

    return live.run(fresh())


def test_garbage_discovery_replies_are_ignored(live: LiveSystem) -> None:
    answers = [
        *GARBAGE.values(),
        b'{"type": "io.nats.micro.v1.info_response"}',
        encode(
            ServiceInfo(name="noendpoints", id="r1", version="1", metadata={ROLE_KEY: ROLE_AGENT})
        ),
        _info("zebra", keywords="not json", patterns="[1, 2", input_hints="x"),
        _info("zebra2", keywords='{"a": 1}', patterns='["(unclosed", "[", 42]'),
    ]
    with rogue_discovery(live, answers):
        catalog = refreshed(live.service, live)
        assert {"calculator", "clock", "text", "llm", "summarizer"} <= set(catalog)
        assert set(catalog) - set(AGENTS) <= {"zebra", "zebra2"}  # odd hints: still agents
        assert live.converse().answer == "2 + 3 = 5"
        reply = live.converse("tell me about zebras")
        assert reply.error is None or reply.error.code != "internal", reply
    live.assert_serving()


def test_discovered_agents_with_unsafe_names_are_not_catalogued(live: LiveSystem) -> None:
    """Agent names end up in subjects: only subject-safe tokens may be planned with."""
    unsafe = ["x y", "a.b", "*", ">", "", "a" * 65]
    keywords = json.dumps(["zebra"])
    with rogue_discovery(live, [_info(name, keywords=keywords) for name in unsafe]):
        assert refreshed(live.service, live) == AGENTS
    live.assert_serving()


def test_a_rogue_agents_pathological_pattern_cannot_stall_the_orchestrator(
    live: LiveSystem,
) -> None:
    """Planning runs the agents' advertised regular expressions on the user's message.

    ``(a+)+$`` backtracks exponentially on "aaa...ab": 27 letters take Python's ``re``
    about ten seconds, during which the orchestrator's event loop serves nothing.
    """
    patterns = json.dumps([r"(a+)+$"])
    with rogue_discovery(live, [_info("zebra", patterns=patterns, keywords="[]")]):
        assert "zebra" in refreshed(live.service, live)
        body = encode(
            {"correlation_id": "conv-fuzzer-3", "user_id": "fuzzer", "message": "a" * 27 + "b"}
        )
        live.ask(CONVERSE, body, headers=deadline(), timeout=5)
    live.assert_serving()


#: Messages made to make the planner's and the agents' regular expressions backtrack:
#: long runs of what one token of a pattern takes and the next one also takes.
CRAFTED = {
    "a run of blanks": "a" + " " * 31_990 + "b",
    "a comma and blanks": "what is 1," + " " * 31_980 + "x",
    "an operator and blanks, 32 clauses": ("1 +" + " " * 900 + "x; ") * 32,
    "digits": "what is " + "1" * 31_000 + "!",
    "stops": "count the sentences of 1" + "." * 31_000 + "1",
    "separators": "what time is it in " + "\t" * 31_000 + "!",
}


def test_crafted_messages_cannot_stall_the_orchestrator(live: LiveSystem) -> None:
    """Planning matches the user's message on the event loop, agents match their task.

    A regular expression that is quadratic in a run of blanks stalled the loop for 20 s on
    one 32 KB message (the clause splitter; also three built-in agents' patterns): every
    other conversation, heartbeat and reply waited. A ticker in the system's loop measures
    the longest stall while each message is answered (or refused) in turn.
    """

    async def longest_stall() -> tuple[float, list[str]]:
        gaps = [0.0]
        outcomes = []
        done = asyncio.Event()

        async def tick() -> None:
            last = time.perf_counter()
            while not done.is_set():
                await asyncio.sleep(0.005)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        ticker = asyncio.ensure_future(tick())
        try:
            for n, message in enumerate(CRAFTED.values()):
                body = encode(
                    {"correlation_id": f"conv-fuzzer-c{n}", "user_id": "fuzzer", "message": message}
                )
                msg = await live.nc.request(CONVERSE, body, headers=deadline(), timeout=60)
                outcomes.append((msg.headers or {}).get(h.ERROR, "ok"))
        finally:
            done.set()
            await ticker
        return max(gaps), outcomes

    stall, outcomes = live.run(longest_stall(), timeout=400)
    assert len(outcomes) == len(CRAFTED)
    assert "internal" not in outcomes, outcomes
    assert stall < 1.0, f"the event loop stalled {stall:.2f} s"
    live.assert_serving()


# -- the requesters' own inboxes -----------------------------------------------------------------


def forged_replies(prefix: str) -> list[tuple[str, bytes, dict[str, str] | None]]:
    tokens = ["0123456789abcdef", "ffffffffffffffff", "x", "日本語", "-", "a" * 500]
    headers: list[dict[str, str] | None] = [
        None,
        {h.NATS_STATUS: h.NO_RESPONDERS_STATUS},
        {h.KIND: "final", h.ERROR: "internal"},
        {h.KIND: "progress"},
        {h.KIND: "accepted"},
        {h.KIND: "heartbeat"},
        {h.KIND: "nonsense", h.CORRELATION_ID: "conv-x-1"},
    ]
    return [
        (prefix + token, data, hdrs)
        for token in tokens
        for hdrs in headers
        for data in (b"", b"garbage", encode(ConversationReply(correlation_id="c", answer="!")))
    ]


def test_forged_replies_on_a_requesters_inbox_are_counted_as_stray(live: LiveSystem) -> None:
    """Published plain and as requests (with a reply subject): counted, dropped, unanswered."""
    requester = live.service.requester
    prefix = requester.consumer.prefix
    forged = forged_replies(prefix)
    probes = [(prefix + "~probe999999", b"", None), (prefix + "~probe-x", b"junk", None)]
    not_ours = [(prefix + "a.b", b"", None), (prefix.rstrip(".") + "x.y", b"", None)]
    stray = metric("switchboard_correlation_stray_replies_total", reason="unknown")
    answers: list[Any] = []

    async def collect(msg: Any) -> None:
        answers.append(msg)

    async def send() -> None:
        inbox = live.nc.new_inbox()
        sub = await live.nc.subscribe(inbox, cb=collect)
        for subject, data, headers in [*forged, *probes, *not_ours]:
            await live.nc.publish(subject, data, headers=headers)
            await live.nc.publish(subject, data, headers=headers, reply=inbox)
        await live.nc.flush()
        await asyncio.sleep(0.3)
        await sub.unsubscribe()

    live.run(send())
    live.wait_idle()
    assert [m for m in answers if (m.headers or {}).get(h.NATS_STATUS) != "503"] == []
    after = metric("switchboard_correlation_stray_replies_total", reason="unknown")
    assert after == stray + 2 * len(forged)
    assert len(requester.tracker) == 0
    assert requester.consumer.running
    live.assert_serving()


def test_forged_replies_do_not_disturb_a_conversation_in_flight(live: LiveSystem) -> None:
    prefix = live.service.requester.consumer.prefix
    forged = forged_replies(prefix)

    async def both() -> ConversationReply:
        async def flood() -> None:
            for _ in range(5):
                for subject, data, headers in forged:
                    await live.nc.publish(subject, data, headers=headers)
                await asyncio.sleep(0)

        body = b'{"correlation_id": "conv-fuzzer-2", "user_id": "fuzzer", "message": "what is 6*7"}'
        (final, _before), _ = await asyncio.gather(
            live._ask(CONVERSE, body, deadline(), 10), flood()
        )
        return msgspec.json.decode(final.data, type=ConversationReply)

    assert live.run(both()).answer == "6 * 7 = 42"
    live.assert_serving()


# -- everything at once --------------------------------------------------------------------------


def test_a_barrage_on_every_subject_leaves_every_part_serving(live: LiveSystem) -> None:
    """All of the above at once, as requests and publishes; then counters, trackers, service."""
    bad_before, big_before = served_counts("bad_request"), rejected_counts("too_large")
    header_sets: list[dict[str, str] | None] = [
        None,
        deadline(),
        {h.TIMEOUT: "soon", h.CORRELATION_ID: "*"},
        {**deadline(), h.HEARTBEAT: "0", h.PROGRESS: "1"},
        {**deadline(), h.HEARTBEAT: "abc", h.CORRELATION_ID: "x" * 1_000},
    ]
    requests: list[tuple[str, bytes, dict[str, str] | None]] = []
    for subject in DECODING:
        for data in GARBAGE.values():
            for headers in header_sets:
                requests.append((subject, data, headers))
    for subject in SERVED:
        requests.append((subject, b"\x00" * (ENDPOINT_MAX_PAYLOAD + 1), deadline()))
    extra: list[tuple[str, bytes, dict[str, str] | None]] = [
        *forged_replies(live.service.requester.consumer.prefix),
        *((s, d, None) for s in ODD_CANCEL_SUBJECTS for d in GARBAGE.values()),
        *((f"$SRV.{v}", d, None) for v in SERVICE_TYPES for d in GARBAGE.values()),
        *(("ai.events.x", d, None) for d in GARBAGE.values()),
    ]

    async def barrage() -> list[Any]:
        asked = [live._ask(s, d, hdrs, 15) for s, d, hdrs in requests]
        published = [live.nc.publish(s, d, headers=hdrs) for s, d, hdrs in requests + extra]
        results = await asyncio.gather(*asked, *published)
        return list(results[: len(asked)])

    for (subject, _data, headers), (final, _before) in zip(
        requests, live.run(barrage(), timeout=60), strict=True
    ):
        code = (final.headers or {}).get(h.ERROR)
        bad_deadline = headers is not None and headers.get(h.TIMEOUT) == "soon"
        assert code in ("bad_request", "too_large"), (subject, headers, final.data[:200])
        assert code != "bad_request" or bad_deadline or subject in DECODING
    live.wait_idle()
    bad_after, big_after = served_counts("bad_request"), rejected_counts("too_large")
    for subject in DECODING:  # decoded twice (asked + published), except under a bad deadline
        decoded = 2 * len(GARBAGE) * (len(header_sets) - 1)
        assert bad_after[subject] == bad_before[subject] + decoded, subject
    for subject in SERVED:
        assert big_after[subject] == big_before[subject] + 2, subject
    assert all(len(r.tracker) == 0 for r in live.requesters)
    assert all(e.in_flight == 0 for e in live.endpoints)
    live.assert_serving()
