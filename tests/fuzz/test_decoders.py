"""Every decoder under random and mutated input: a value of the type, or a DecodeError.

First ``switchboard.orchestrator.core.codec.decode`` alone, for every wire message and the
BFF's request body; then the same inputs through real served endpoints (an
agent worker, the orchestrator's converse endpoint) on a real nats-server,
where each one must get a reply whose verdict is the decoder's.
"""

from __future__ import annotations

import concurrent.futures
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchboard.agents import builtin_agents
from switchboard.orchestrator import decode, encode
from switchboard.orchestrator.core import headers as h
from switchboard.orchestrator.core.conversation import ConversationReply, ConversationRequest, Plan
from switchboard.orchestrator.core.envelopes import (
    AgentResult,
    AgentTask,
    ErrorInfo,
    Usage,
)
from switchboard.orchestrator.core.errors import DecodeError, PayloadTooLargeError
from switchboard.orchestrator.core.progress import ProgressEvent
from tests.fuzz.conftest import VOCABULARY, LiveSystem
from tests.fuzz.strategies import (
    DECODER,
    MUTATION_KINDS,
    NETWORK,
    WIRE_TYPES,
    Mutation,
    messages,
    mutations,
    random_bytes,
    random_json,
    render,
    tokens,
    within,
)

AGENTS = sorted(builtin_agents())
CONVERSE = "ai.orchestrator.converse"
#: Types with a string field in every message (what ``oversize`` and ``utf8`` change).
WITH_STRINGS = [t for t in WIRE_TYPES if t is not Usage]


def ids(types: list[type]) -> list[str]:
    return [t.__name__ for t in types]


def decode_or_error(data: bytes | str, type_: type, max_bytes: int | None = 1024 * 1024) -> Any:
    """The decoded value, or the DecodeError; anything else raised fails the test."""
    try:
        value: Any = decode(data, type_, max_bytes=max_bytes)
    except DecodeError as exc:
        value = exc
    if isinstance(value, DecodeError):
        expected = "too_large" if isinstance(value, PayloadTooLargeError) else "bad_request"
        assert value.code.value == expected
        assert str(value).startswith(("Invalid ", "The ")), str(value)
    else:
        assert isinstance(value, type_)
    return value


# -- (a) random input never crashes a decoder ----------------------------------------------------


@pytest.mark.parametrize("type_", WIRE_TYPES, ids=ids(WIRE_TYPES))
@DECODER
@given(data=random_bytes(), max_bytes=st.none() | st.integers(0, 600))
def test_random_bytes_decode_or_raise_decode_error(
    type_: type, data: bytes, max_bytes: int | None
) -> None:
    result = decode_or_error(data, type_, max_bytes)
    if max_bytes is not None and len(data) > max_bytes:
        assert isinstance(result, PayloadTooLargeError)
        assert (result.size, result.limit) == (len(data), max_bytes)


@pytest.mark.parametrize("type_", WIRE_TYPES, ids=ids(WIRE_TYPES))
@DECODER
@given(data=st.data())
def test_random_json_decodes_or_raises_decode_error(type_: type, data: st.DataObject) -> None:
    decode_or_error(data.draw(random_json(type_)), type_)


# -- (b) valid messages round-trip ----------------------------------------------------------------


@pytest.mark.parametrize("type_", WIRE_TYPES, ids=ids(WIRE_TYPES))
@DECODER
@given(data=st.data())
def test_valid_messages_round_trip(type_: type, data: st.DataObject) -> None:
    message = data.draw(messages(type_))
    assert decode(encode(message), type_) == message


# -- (c) mutated messages: decoded, or an error that says where ---------------------------------


def mutated(type_: type, kind: str, data: st.DataObject) -> tuple[Mutation, Any]:
    mutation = data.draw(mutations(type_, kind), label="mutation")
    return mutation, decode_or_error(mutation.data, type_)


@pytest.mark.parametrize("type_", WIRE_TYPES, ids=ids(WIRE_TYPES))
@DECODER
@given(data=st.data())
def test_a_dropped_field_is_a_default_or_an_error_naming_it(
    type_: type, data: st.DataObject
) -> None:
    mutation, result = mutated(type_, "drop", data)
    if mutation.required:
        assert isinstance(result, DecodeError)
        assert result.path == render(mutation.path)
        # A sentence with the path of the missing field, as README's errors promise.
        assert str(result).endswith(f"`{result.path}.{mutation.name}` is missing.")
    else:
        assert isinstance(result, type_)


@pytest.mark.parametrize("type_", WIRE_TYPES, ids=ids(WIRE_TYPES))
@DECODER
@given(data=st.data())
def test_a_retyped_field_decodes_or_its_error_names_the_field(
    type_: type, data: st.DataObject
) -> None:
    mutation, result = mutated(type_, "retype", data)
    if isinstance(result, DecodeError):
        assert within(result.path, mutation.path), (result.path, str(result))
        assert f"`{result.path}" in str(result)  # the sentence names the field


@pytest.mark.parametrize("type_", WIRE_TYPES, ids=ids(WIRE_TYPES))
@DECODER
@given(data=st.data())
def test_unknown_fields_are_ignored(type_: type, data: st.DataObject) -> None:
    mutation, result = mutated(type_, "unknown", data)
    # Schema evolution: a newer peer's fields are ignored (the HTTP body too).
    assert result == mutation.original


@pytest.mark.parametrize("type_", WITH_STRINGS, ids=ids(WITH_STRINGS))
@DECODER
@given(data=st.data())
def test_an_oversized_string_decodes_or_its_error_names_the_field(
    type_: type, data: st.DataObject
) -> None:
    mutation, result = mutated(type_, "oversize", data)
    if isinstance(result, DecodeError):
        assert result.path == render(mutation.path), str(result)[:300]


@pytest.mark.parametrize("type_", WIRE_TYPES, ids=ids(WIRE_TYPES))
@DECODER
@given(data=st.data())
def test_a_huge_number_decodes_or_its_error_names_the_field(
    type_: type, data: st.DataObject
) -> None:
    mutation, result = mutated(type_, "huge", data)
    if isinstance(result, DecodeError):
        assert within(result.path, mutation.path), (result.path, str(result))


@pytest.mark.parametrize("type_", WIRE_TYPES, ids=ids(WIRE_TYPES))
@DECODER
@given(data=st.data())
def test_deep_nesting_decodes_or_raises_decode_error(type_: type, data: st.DataObject) -> None:
    """Thousands of nested arrays/objects in a field or an unknown field: never RecursionError.

    Where msgspec can tell, the error names the field; nesting deeper than the decoder goes
    may be reported for the whole payload.
    """
    mutation, result = mutated(type_, "deep", data)
    if isinstance(result, DecodeError) and result.path not in (None, "$"):
        assert within(result.path, mutation.path), (result.path, str(result))


@pytest.mark.parametrize("type_", WITH_STRINGS, ids=ids(WITH_STRINGS))
@DECODER
@given(data=st.data())
def test_broken_utf8_in_a_string_is_a_decode_error(type_: type, data: st.DataObject) -> None:
    """Bytes that are not UTF-8, or a lone surrogate escape, inside a string value.

    That is a malformed document, not a wrong value: msgspec locates it by byte offset,
    not by field path, so only the error's kind is checked.
    """
    _mutation, result = mutated(type_, "utf8", data)
    assert isinstance(result, DecodeError)


# The minimal reproductions of what the properties above found.


def test_invalid_utf8_in_a_string_field_is_a_decode_error() -> None:
    data = b'{"correlation_id":"c","user_id":"u","message":"caf\xe9"}'  # latin-1, not UTF-8
    with pytest.raises(DecodeError) as caught:
        decode(data, ConversationRequest)
    assert caught.value.code.value == "bad_request"


def test_deep_nesting_in_a_free_form_field_is_a_decode_error() -> None:
    data = b'{"correlation_id":"c","kind":"planned","detail":' + b"[" * 5000 + b"]" * 5000 + b"}"
    with pytest.raises(DecodeError):
        decode(data, ProgressEvent)


def test_deep_nesting_in_an_unknown_field_is_a_decode_error() -> None:
    deep = b"[" * 5000 + b"]" * 5000
    data = b'{"correlation_id":"c","user_id":"u","message":"hi","x":' + deep + b"}"
    with pytest.raises(DecodeError):
        decode(data, ConversationRequest)


def test_a_text_payload_with_a_lone_surrogate_is_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        decode('{"steps": [], "source": "\ud800"}', Plan)


# -- through real served endpoints ---------------------------------------------------------------


def expected_error(data: bytes, type_: type, max_payload: int) -> ErrorInfo | None:
    """What the endpoint must answer for ``data``: the decoder's verdict (None: it decodes).

    A decoder that crashes (a bug of its own, found above) should have said bad_request.
    Decoded on a fresh thread, as shallow as the endpoint's: how deep a JSON msgspec takes
    depends on the caller's own stack depth (the recursion limit counts both), and this
    test's stack (pytest, hypothesis) is hundreds of frames deeper than the server's.
    """
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(decode, data, type_, max_bytes=max_payload).result()
    except DecodeError as exc:
        return ErrorInfo(exc.code.value, str(exc))
    except Exception:
        return ErrorInfo("bad_request", "")
    return None


headers = st.fixed_dictionaries(
    {},
    optional={
        h.CORRELATION_ID: tokens(200)
        | st.text(st.characters(codec="ascii", min_codepoint=33), min_size=1, max_size=300),
        h.HEARTBEAT: st.integers(-5, 10_000).map(str) | st.sampled_from(["abc", "1e3", "0x10"]),
        h.PROGRESS: st.sampled_from(["1", "0", "yes"]),
        h.KIND: st.sampled_from(["final", "progress", "nonsense"]),
    },
)


def check_reply(
    live: LiveSystem,
    subject: str,
    data: bytes,
    hdrs: dict[str, str],
    type_: type,
    reply_type: type,
) -> None:
    """Send ``data``; the final reply must carry the decoder's verdict, or a served answer."""
    endpoint = next(e for e in live.endpoints if e.subject == subject)
    expected = expected_error(data, type_, endpoint.max_payload)
    final, _before = live.ask(subject, data, headers=hdrs, timeout=5)
    got = (final.headers or {}).get(h.ERROR)
    body = msgspec.json.decode(final.data, type=reply_type)
    assert final.headers is not None and final.headers.get(h.KIND) == "final"
    if h.CORRELATION_ID in hdrs and hdrs[h.CORRELATION_ID].isascii():
        assert final.headers.get(h.CORRELATION_ID) == hdrs[h.CORRELATION_ID]
    if expected is not None:
        assert got == expected.code, (got, expected, body)
        assert body.error is not None and body.error.code == got
        if expected.message and got == "bad_request":  # the caller reads what went wrong where
            assert body.error.message == expected.message
    elif got is not None:  # it decoded: any outcome but a crash
        assert got in VOCABULARY and got != "internal", body
        assert body.error is not None and body.error.code == got


any_mutation = st.sampled_from(MUTATION_KINDS)


def test_random_payloads_to_an_agent_get_the_decoders_verdict(live: LiveSystem) -> None:
    @NETWORK
    @given(
        data=random_bytes() | random_json(AgentTask), agent=st.sampled_from(AGENTS), hdrs=headers
    )
    def send(data: bytes, agent: str, hdrs: dict[str, str]) -> None:
        check_reply(live, f"ai.agents.{agent}", data, hdrs, AgentTask, AgentResult)

    send()
    live.assert_serving()


def test_mutated_tasks_to_an_agent_get_the_decoders_verdict(live: LiveSystem) -> None:
    @NETWORK
    @given(
        mutation=any_mutation.flatmap(lambda kind: mutations(AgentTask, kind)),
        agent=st.sampled_from(AGENTS),
        hdrs=headers,
    )
    def send(mutation: Mutation, agent: str, hdrs: dict[str, str]) -> None:
        check_reply(live, f"ai.agents.{agent}", mutation.data, hdrs, AgentTask, AgentResult)

    send()
    live.assert_serving()


def test_random_payloads_to_the_orchestrator_get_the_decoders_verdict(live: LiveSystem) -> None:
    @NETWORK
    @given(data=random_bytes() | random_json(ConversationRequest), hdrs=headers)
    def send(data: bytes, hdrs: dict[str, str]) -> None:
        check_reply(live, CONVERSE, data, hdrs, ConversationRequest, ConversationReply)

    send()
    live.assert_serving()


def test_mutated_conversation_requests_get_the_decoders_verdict(live: LiveSystem) -> None:
    @NETWORK
    @given(
        mutation=any_mutation.flatmap(lambda kind: mutations(ConversationRequest, kind)),
        hdrs=headers,
    )
    def send(mutation: Mutation, hdrs: dict[str, str]) -> None:
        check_reply(live, CONVERSE, mutation.data, hdrs, ConversationRequest, ConversationReply)

    send()
    live.assert_serving()
