"""map_nats_errors: nats-py's errors become Switchboard's at one boundary; nothing else does."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import nats.errors
import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from switchboard.orchestrator.core import (
    ConnectionClosedError,
    Deadline,
    NoRespondersError,
    OverloadedError,
    PayloadTooLargeError,
    Requester,
    RequestError,
    RequestOptions,
    RequestTimeoutError,
    ShuttingDownError,
    SwitchboardError,
    map_nats_errors,
)


async def mapped(
    call: Awaitable[object], *, subject: str, correlation_id: str | None = None
) -> None:
    """Await a nats-py call inside the map, as the call sites do."""
    with map_nats_errors(subject=subject, correlation_id=correlation_id):
        await call


def raised_in_the_map(exc: BaseException) -> None:
    with map_nats_errors(subject="errors.x", correlation_id="conv-u-4"):
        raise exc


# -- from a real server --------------------------------------------------------------------------


async def test_no_responders_becomes_no_responders(nats_client: NATS) -> None:
    with pytest.raises(NoRespondersError) as raised:
        await mapped(
            nats_client.request("errors.nobody", b"", timeout=5),
            subject="errors.nobody",
            correlation_id="conv-u-1",
        )
    error = raised.value
    assert str(error) == "No responders for request conv-u-1: nothing subscribes to errors.nobody."
    assert (error.subject, error.correlation_id) == ("errors.nobody", "conv-u-1")
    assert isinstance(error.__cause__, nats.errors.NoRespondersError)


async def test_a_request_nobody_answers_becomes_a_timeout(nats_client: NATS) -> None:
    async def silent(msg: Msg) -> None:
        pass

    await nats_client.subscribe("errors.silent", cb=silent)
    with pytest.raises(RequestTimeoutError) as raised:
        await mapped(
            nats_client.request("errors.silent", b"", timeout=0.2),
            subject="errors.silent",
            correlation_id="conv-u-2",
        )
    assert str(raised.value) == "Request conv-u-2 to errors.silent timed out."
    assert isinstance(raised.value, TimeoutError)  # still the builtin, as nats-py's is


async def test_a_closed_connection_becomes_connection_closed(nats_client: NATS) -> None:
    await nats_client.close()
    with pytest.raises(ConnectionClosedError, match="the NATS connection is closed"):
        await mapped(nats_client.publish("errors.closed", b""), subject="errors.closed")
    with pytest.raises(ConnectionClosedError):
        await mapped(nats_client.subscribe("errors.closed"), subject="errors.closed")


async def test_a_payload_over_max_payload_becomes_too_large(nats_client: NATS) -> None:
    with pytest.raises(PayloadTooLargeError, match="larger than the NATS server's max_payload"):
        await mapped(
            nats_client.publish("errors.big", b"x" * (nats_client.max_payload + 1)),
            subject="errors.big",
        )
    assert nats_client.is_connected


async def test_a_bad_subject_or_header_becomes_a_request_error(nats_client: NATS) -> None:
    with pytest.raises(RequestError, match="is not a valid NATS subject") as raised:
        await mapped(nats_client.publish("", b""), subject="", correlation_id="conv-u-3")
    assert type(raised.value) is RequestError
    with pytest.raises(RequestError, match="not a valid NATS header name"):
        await mapped(
            nats_client.publish("errors.header", b"", headers={"Bad:Name": "v"}),
            subject="errors.header",
        )


# -- the rest of the table (states a test cannot hold a real client in for long) -----------------


@pytest.mark.parametrize(
    ("foreign", "ours", "message"),
    [
        (
            nats.errors.OutboundBufferLimitError,
            OverloadedError,
            "Cannot send conv-u-4 to errors.x: NATS is disconnected and the outbound buffer "
            "is full.",
        ),
        (
            nats.errors.ConnectionDrainingError,
            ShuttingDownError,
            "Cannot send conv-u-4 to errors.x: the NATS connection is draining (shutting down).",
        ),
        (
            nats.errors.FlushTimeoutError,  # a subclass: the most specific match wins
            RequestTimeoutError,
            "Request conv-u-4 to errors.x timed out.",
        ),
        (
            nats.errors.StaleConnectionError,  # no entry of its own: NATS failed
            RequestError,
            "NATS failed for request conv-u-4 to errors.x: StaleConnectionError.",
        ),
        (
            ConnectionResetError,  # nats-py's socket, when it writes inline
            RequestError,
            "NATS failed for request conv-u-4 to errors.x: ConnectionResetError.",
        ),
    ],
)
def test_each_nats_error_maps_to_its_switchboard_error(
    foreign: type[Exception], ours: type[SwitchboardError], message: str
) -> None:
    cause = foreign()
    with pytest.raises(ours) as raised:
        raised_in_the_map(cause)
    assert type(raised.value) is ours
    assert str(raised.value) == message
    assert raised.value.__cause__ is cause


# -- and nothing else ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "exc",
    [
        TypeError("a bug"),
        ValueError("another"),
        TimeoutError(),  # not nats-py's: e.g. an asyncio.timeout around the block
        NoRespondersError("ours already", subject="errors.x"),
    ],
)
def test_what_is_not_a_nats_error_passes_through_untouched(exc: Exception) -> None:
    with pytest.raises(type(exc)) as raised:
        raised_in_the_map(exc)
    assert raised.value is exc


async def test_cancellation_passes_through(nats_client: NATS) -> None:
    async def subscribed_forever() -> None:
        with map_nats_errors(subject="errors.wait"):
            sub = await nats_client.subscribe("errors.wait")
            await sub.next_msg(timeout=3600)

    task = asyncio.create_task(subscribed_forever())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


# -- at the call sites ----------------------------------------------------------------------------


async def test_a_bug_under_a_publish_stays_a_bug(requester: Requester) -> None:
    # Was "NATS failed for request conv-u-5 to errors.bug: TypeError."
    with pytest.raises(TypeError):
        await requester.publish("errors.bug", "not bytes", correlation_id="conv-u-5")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await requester.request(
            "errors.bug", "not bytes", correlation_id="conv-u-5", deadline=Deadline.after(5)
        )  # type: ignore[arg-type]
    assert requester.pending() == []


async def test_a_bad_header_name_is_named_in_the_error(requester: Requester) -> None:
    # Was "NATS failed for request conv-u-6 to errors.header: BadHeaderError."
    with pytest.raises(RequestError, match="'Bad:Name' is not a valid NATS header name"):
        await requester.request(
            "errors.header",
            b"",
            correlation_id="conv-u-6",
            deadline=Deadline.after(5),
            options=RequestOptions(headers={"Bad:Name": "v"}),
        )
    assert requester.pending() == []


async def test_a_closed_connection_names_the_request(
    nats_client: NATS, requester: Requester
) -> None:
    await nats_client.close()
    with pytest.raises(ConnectionClosedError) as raised:
        await requester.request(
            "errors.closed", b"", correlation_id="conv-u-7", deadline=Deadline.after(5)
        )
    assert str(raised.value) == (
        "Cannot send conv-u-7 to errors.closed: the NATS connection is closed."
    )
    assert (raised.value.subject, raised.value.correlation_id) == ("errors.closed", "conv-u-7")
    assert requester.pending() == []
