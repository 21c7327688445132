"""``wire``: the hot-path publish writes exactly the frames nats-py's own publish writes,
and refuses what it refuses with the Switchboard error ``map_nats_errors`` gives nats-py's."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from nats.aio.client import Client as NATS

from switchboard.orchestrator.core import Deadline, map_nats_errors, wire
from switchboard.orchestrator.core.endpoint import Endpoint, Request
from switchboard.orchestrator.core.errors import (
    ConnectionClosedError,
    ErrorCode,
    OverloadedError,
    PayloadTooLargeError,
    RemoteError,
    RequestError,
    SwitchboardError,
)
from switchboard.orchestrator.core.requester import Requester

TOKEN = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
names = st.one_of(
    st.text(st.sampled_from(TOKEN), min_size=1, max_size=20),  # valid
    st.text(st.sampled_from(TOKEN + " \t:é"), max_size=20),  # padded, empty or invalid
)
values = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
subjects = st.text(st.sampled_from("abc.*>_-0123456789"), min_size=1, max_size=30)


def capturing_client() -> tuple[NATS, list[bytes]]:
    """An unconnected client whose outgoing commands are captured instead of buffered."""
    nc = NATS()
    nc._max_pending_size = 2 * 1024 * 1024  # connect() sets it; buffers while reconnecting
    frames: list[bytes] = []

    async def capture(cmd: bytes, priority: bool = False) -> None:
        frames.append(cmd)

    nc._send_command = capture  # type: ignore[method-assign]
    return nc, frames


def run_now(coro: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine that never suspends (nothing here waits for a socket)."""
    try:
        coro.send(None)
    except StopIteration:
        return
    coro.close()
    raise AssertionError("the publish suspended")


def outcome(publish: Coroutine[Any, Any, None], frames: list[bytes]) -> bytes | str:
    """The frame written, or the Switchboard error (nats-py's translated by the one map)."""
    try:
        with map_nats_errors(subject="s"):  # what the mapped sentences name does not matter
            run_now(publish)
    except SwitchboardError as exc:
        return type(exc).__name__
    return frames.pop()


def test_this_nats_py_has_the_internals_of_the_fast_path() -> None:
    # If a nats-py upgrade fails this, wire.publish falls back to Client.publish: correct
    # but slower. Adapt wire.py to the new internals, or drop the fast path.
    assert wire.FAST


@given(
    headers=st.dictionaries(names, values, max_size=6),
    subject=subjects,
    reply=st.sampled_from(["", "_INBOX.abc.1"]),
    payload=st.binary(max_size=64),
)
@example(headers={" Padded ": " value\r\nPUB x 1\r\n "}, subject="a", reply="", payload=b"")
@example(headers={"": "skipped", "Ok": "1"}, subject="a", reply="r", payload=b"x")
@example(headers={"Bad:Name": "v"}, subject="a", reply="", payload=b"")
@example(headers={"Kind": "ünïcode ✓"}, subject="a", reply="", payload=b"{}")
def test_frames_are_byte_for_byte_those_of_nats_py(
    headers: dict[str, str], subject: str, reply: str, payload: bytes
) -> None:
    nc, frames = capturing_client()
    theirs = outcome(nc.publish(subject, payload, reply=reply, headers=headers), frames)
    refused = None
    try:
        block = wire.header_block(headers)
    except RequestError as exc:
        refused = str(exc)
    if refused is not None:  # a bad header name: nats-py's BadHeaderError, translated
        assert theirs == "RequestError"
        assert "is not a valid NATS header name" in refused
        return
    ours = outcome(wire.publish(nc, subject, payload, block, reply=reply), frames)
    assert ours == theirs
    if isinstance(ours, bytes):
        head = ours.split(b"\r\n", 1)[0].split(b" ")
        assert int(head[-1]) == len(block) + len(payload)  # what max_payload is checked against


@pytest.mark.parametrize(
    ("subject", "reply"), [("", ""), ("a b", ""), ("a\r\nPUB x 1", ""), ("a", "r\tx")]
)
def test_bad_subjects_are_refused_before_anything_is_written(subject: str, reply: str) -> None:
    nc, frames = capturing_client()
    with pytest.raises(RequestError, match="is not a valid NATS subject"):
        run_now(wire.publish(nc, subject, b"x", wire.header_block({"A": "1"}), reply=reply))
    assert frames == []


def test_too_large_payloads_and_full_buffers_are_refused_like_nats_py() -> None:
    nc, frames = capturing_client()
    nc._max_payload = 10
    with pytest.raises(PayloadTooLargeError) as too_large:
        run_now(wire.publish(nc, "a", b"x" * 11, wire.header_block({})))
    assert (too_large.value.size, too_large.value.limit) == (11, 10)
    nc._max_pending_size = 0  # not connected, and no buffering while reconnecting
    with pytest.raises(OverloadedError, match="outbound buffer is full"):
        run_now(wire.publish(nc, "a", b"x", wire.header_block({}), correlation_id="conv-u-9"))
    assert frames == []


async def test_a_message_arrives_with_its_headers_through_a_real_server(nats_client: NATS) -> None:
    sub = await nats_client.subscribe("wire.test")
    headers = {"Correlation-Id": "conv-u-1", "Note": "ünïcode ✓", "Switchboard-Kind": "final"}
    await wire.publish(nats_client, "wire.test", b"payload", wire.header_block(headers))
    msg = await sub.next_msg(timeout=5)
    assert (msg.data, msg.headers) == (b"payload", headers)


async def test_a_conversations_publisher_sends_each_message_with_its_id(
    nats_client: NATS, requester: Requester
) -> None:
    sub = await nats_client.subscribe("wire.events.>")
    publish = requester.publisher("conv-u-7")
    for n in range(3):
        await publish(f"wire.events.{n}", b"%d" % n)
    got = [await sub.next_msg(timeout=5) for _ in range(3)]
    assert [(m.subject, m.data, m.headers) for m in got] == [
        (f"wire.events.{n}", b"%d" % n, {"Correlation-Id": "conv-u-7"}) for n in range(3)
    ]


async def test_a_closed_connection_is_refused(nats_client: NATS) -> None:
    await nats_client.close()
    with pytest.raises(ConnectionClosedError) as raised:
        await wire.publish(
            nats_client, "a", b"", wire.header_block({"A": "1"}), correlation_id="conv-u-8"
        )
    assert str(raised.value) == "Cannot send conv-u-8 to a: the NATS connection is closed."


async def test_the_slow_path_refuses_with_the_same_errors(
    nats_client: NATS, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without the fast path's internals, Client.publish sends and the map translates.
    monkeypatch.setattr(wire, "FAST", False)
    sub = await nats_client.subscribe("wire.slow")
    await wire.publish(nats_client, "wire.slow", b"x", wire.header_block({"A": "1"}))
    msg = await sub.next_msg(timeout=5)
    assert (msg.data, msg.headers) == (b"x", {"A": "1"})
    with pytest.raises(RequestError, match="is not a valid NATS subject"):
        await wire.publish(nats_client, "a b", b"", wire.header_block({}))
    await nats_client.close()
    with pytest.raises(ConnectionClosedError) as raised:
        await wire.publish(nats_client, "a", b"", wire.header_block({}), correlation_id="conv-u-8")
    assert str(raised.value) == "Cannot send conv-u-8 to a: the NATS connection is closed."


async def test_headers_that_push_a_fitting_payload_over_max_payload_are_refused(
    nats_client: NATS, requester: Requester
) -> None:
    limit = nats_client.max_payload
    with pytest.raises(PayloadTooLargeError):
        await requester.publish("wire.big", b"x" * limit, correlation_id="conv-u-1")
    with pytest.raises(PayloadTooLargeError):
        await requester.publisher("conv-u-1")("wire.big", b"x" * limit)
    with pytest.raises(PayloadTooLargeError):
        await requester.request(
            "wire.big", b"x" * limit, correlation_id="conv-u-2", deadline=Deadline.after(5)
        )
    assert requester.pending() == []
    assert nats_client.is_connected  # the server never saw the message


async def test_an_answer_too_large_with_its_headers_becomes_a_too_large_error(
    nats_client: NATS, requester: Requester
) -> None:
    limit = nats_client.max_payload

    async def huge(request: Request) -> bytes:
        return b"x" * (limit - 10)  # fits alone, not with the reply's headers

    endpoint = Endpoint(nats_client, subject="wire.huge", queue="q", handler=huge, name="huge")
    await endpoint.start()
    try:
        with pytest.raises(RemoteError) as raised:
            await requester.request(
                "wire.huge", b"", correlation_id="conv-u-3", deadline=Deadline.after(5)
            )
        assert raised.value.code is ErrorCode.TOO_LARGE
    finally:
        await endpoint.stop(grace=1)
    await asyncio.sleep(0)
    assert nats_client.is_connected
