"""Wire codec: readable JSON, and decode errors that say what is wrong and where."""

from __future__ import annotations

import json

import pytest

from switchboard.orchestrator.core.codec import decode, encode
from switchboard.orchestrator.core.conversation import ConversationReply, ConversationRequest
from switchboard.orchestrator.core.deadline import Deadline
from switchboard.orchestrator.core.envelopes import AgentTask
from switchboard.orchestrator.core.errors import DecodeError, ErrorCode, PayloadTooLargeError

VALID = {"correlation_id": "conv-cli-1", "user_id": "cli", "message": "what is 2+2?"}


def test_the_nats_cli_example_request_decodes() -> None:
    request = decode(json.dumps(VALID).encode(), ConversationRequest)
    assert (request.correlation_id, request.user_id, request.message) == (
        "conv-cli-1",
        "cli",
        "what is 2+2?",
    )
    assert request.conversation_id is None


def test_encoded_replies_are_plain_readable_json() -> None:
    reply = ConversationReply(correlation_id="conv-a-1", answer="4")
    assert json.loads(encode(reply)) == {
        "correlation_id": "conv-a-1",
        "answer": "4",
        "steps": [],
        "partial": False,
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        "duration_ms": 0.0,
        "error": None,
        "conversation_id": None,
    }


def test_wrong_type_names_the_field_path() -> None:
    with pytest.raises(DecodeError) as caught:
        decode(json.dumps({**VALID, "user_id": 7}).encode(), ConversationRequest)
    assert caught.value.path == "$.user_id"
    assert "ConversationRequest" in str(caught.value)
    assert caught.value.code is ErrorCode.BAD_REQUEST


def test_nested_path_is_kept() -> None:
    task = {
        "correlation_id": "c",
        "task_id": "s1",
        "agent": "calc",
        "instruction": "x",
        "inputs": "not an object",
    }
    with pytest.raises(DecodeError) as caught:
        decode(json.dumps(task).encode(), AgentTask)
    assert caught.value.path == "$.inputs"


def test_missing_field_is_reported() -> None:
    with pytest.raises(DecodeError, match="user_id"):
        decode(b'{"correlation_id": "c", "message": "hi"}', ConversationRequest)


@pytest.mark.parametrize("bad_id", ["a.b", "*", ">", "has space", ""])
def test_subject_unsafe_ids_are_rejected(bad_id: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode(json.dumps({**VALID, "correlation_id": bad_id}).encode(), ConversationRequest)
    assert caught.value.path == "$.correlation_id"


def test_not_json_has_no_path() -> None:
    with pytest.raises(DecodeError, match="not valid JSON") as caught:
        decode(b"\x00\xffgarbage", ConversationRequest)
    assert caught.value.path is None


def test_empty_payload_says_so() -> None:
    with pytest.raises(DecodeError, match="empty"):
        decode(b"", ConversationRequest)


def test_oversized_payload_is_refused_before_parsing() -> None:
    with pytest.raises(PayloadTooLargeError) as caught:
        decode(b"[" * 2000, ConversationRequest, max_bytes=1000)
    assert (caught.value.size, caught.value.limit) == (2000, 1000)
    assert caught.value.code is ErrorCode.TOO_LARGE


def test_unknown_fields_are_ignored_for_rolling_upgrades() -> None:
    request = decode(json.dumps({**VALID, "added_in_v2": [1, 2]}).encode(), ConversationRequest)
    assert request.user_id == "cli"


def test_deadline_header_round_trip() -> None:
    deadline = Deadline.after(5)
    parsed = Deadline.from_header(deadline.header())
    assert abs(parsed.at - deadline.at) < 0.001
    assert 4 < parsed.remaining() <= 5


def test_a_spent_budget_is_an_expired_deadline() -> None:
    assert Deadline.from_header("0").expired
    assert Deadline.after(-3).header() == "0"


@pytest.mark.parametrize("value", ["soon", "-5", "1.5e3", "", "9" * 12, "\u0661"])
def test_bad_deadline_header_is_a_decode_error(value: str) -> None:
    with pytest.raises(DecodeError, match="Switchboard-Timeout"):
        Deadline.from_header(value)


def test_earlier_picks_the_nearer_deadline() -> None:
    far = Deadline.after(100)
    assert far.earlier(1).remaining() < 2
    near = Deadline.after(1)
    assert near.earlier(100) is near
