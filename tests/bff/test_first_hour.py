"""The HTTP API as a new user reads it: one wording per limit, over HTTP as over NATS;
every chat names its conversation; /metrics like every other part's."""

from __future__ import annotations

import json
from typing import Any

import pytest
from nats.aio.client import Client as NATS

from switchboard.orchestrator import MAX_MESSAGE_CHARS
from tests.bff.test_api import system


@pytest.fixture
def nats_url(nats_server: Any) -> str:
    return str(nats_server.url)


def _problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    return body


async def test_a_message_of_only_blanks_is_refused_like_an_empty_one(nats_url: str) -> None:
    # It was answered 200 "No agent can handle that".
    async with system(nats_url) as http:
        empty = _problem(await http.post("/v1/chat", json={"message": ""}), 400, "bad_request")
        blank = _problem(
            await http.post("/v1/chat", json={"message": " \n\t "}), 400, "bad_request"
        )
    assert empty["detail"] == "`$.message` is empty."
    assert blank["detail"] == "`$.message` is blank."


async def test_field_errors_name_the_field_as_the_readme_says(nats_url: str) -> None:
    # They read "Expected `str` of length <= 32000 (at message)".
    async with system(nats_url) as http:
        long = await http.post("/v1/chat", json={"message": "x" * (MAX_MESSAGE_CHARS + 1)})
        missing = await http.post("/v1/chat", json={"question": "hi"})
        wrong = await http.post("/v1/chat", json={"message": 42})
    assert _problem(long, 400, "bad_request")["detail"] == (
        "`$.message` is too long: at most 32000 characters."
    )
    assert _problem(missing, 400, "bad_request")["detail"] == "`$.message` is missing."
    assert _problem(wrong, 400, "bad_request")["detail"] == (
        "`$.message` must be a string, not an integer."
    )


async def test_the_same_limit_reads_the_same_over_nats(nats_url: str, nats_client: NATS) -> None:
    async with system(nats_url):
        for message, sentence in (
            (" \t", "`$.message` is blank."),
            ("x" * (MAX_MESSAGE_CHARS + 1), "`$.message` is too long: at most 32000 characters."),
        ):
            body = json.dumps(
                {"correlation_id": "conv-cli-1", "user_id": "cli", "message": message}
            )
            reply = await nats_client.request("ai.orchestrator.converse", body.encode(), timeout=5)
            assert (reply.headers or {})["Switchboard-Error"] == "bad_request"
            error = json.loads(reply.data)["error"]
            assert error["message"] == f"Invalid ConversationRequest: {sentence}"


async def test_a_wrong_method_is_a_405_that_says_which_are_allowed(nats_url: str) -> None:
    # It was a 405 with code bad_request and no Allow header.
    async with system(nats_url) as http:
        response = await http.get("/v1/chat")
    body = _problem(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "POST, OPTIONS"
    assert body["title"] == "Method not allowed"
    assert body["detail"] == "GET is not allowed on /v1/chat; use POST."


async def test_every_chat_names_its_conversation_and_its_history_is_found(nats_url: str) -> None:
    # conversation_id was null unless the client sent one, so no history could be found.
    async with system(nats_url) as http:
        first = (await http.post("/v1/chat", json={"message": "what is 2+3"})).json()
        conversation = first["conversation_id"]
        assert conversation == first["correlation_id"]
        second = await http.post(
            "/v1/chat", json={"message": "what is 6*7", "conversation_id": conversation}
        )
        assert second.json()["conversation_id"] == conversation
        history = await http.get(f"/v1/conversations/{conversation}")
        assert history.status_code == 200, history.text
        turns = history.json()["turns"]
        assert [turn["message"] for turn in turns] == ["what is 2+3", "what is 6*7"]
        assert turns[0]["correlation_id"] == first["correlation_id"]

        # The API's own documentation says so.
        spec = (await http.get("/docs/openapi.json")).json()
        described = spec["components"]["schemas"]["ChatRequest"]["properties"]["conversation_id"]
        assert "starts a new conversation named by its own correlation id" in str(described)

        streamed = await http.post("/v1/chat/stream", json={"message": "what is 1+1"})
        events = streamed.text.replace("\r\n", "\n").split("\n\n")
        reply_event = next(event for event in events if event.startswith("event: reply"))
        reply = json.loads(reply_event.split("data: ", 1)[1])
        assert reply["conversation_id"] == reply["correlation_id"]


async def test_metrics_have_the_content_type_of_the_other_parts(nats_url: str) -> None:
    # It was "text/plain; version=1.0.0; charset=utf-8; charset=utf-8".
    async with system(nats_url) as http:
        response = await http.get("/metrics")
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"


async def test_a_conversation_whose_every_step_failed_is_not_a_200(nats_url: str) -> None:
    # It was a 200 with partial: true and "Step s1 (broken) failed: ..." as its answer.
    async with system(nats_url) as http:
        failed = await http.post("/v1/chat", json={"message": "broken please"})
        body = _problem(failed, 502, "agent_error")
        assert body["detail"] == (
            "No agent could answer this (broken: The broken agent is broken on purpose.)."
        )
        assert body["correlation_id"] == failed.headers["x-correlation-id"]
        assert "s1" not in body["detail"]

        streamed = await http.post("/v1/chat/stream", json={"message": "broken please"})
        assert "event: step_failed" in streamed.text
        assert "event: reply" not in streamed.text
        error = streamed.text.replace("\r\n", "\n").split("event: error\ndata: ", 1)[1]
        assert json.loads(error.split("\n", 1)[0])["code"] == "agent_error"

        # Partly answered: still an answer (200, partial).
        partly = await http.post("/v1/chat", json={"message": "what is 2+3; broken please"})
        assert partly.status_code == 200
        assert partly.json()["partial"] is True


async def test_a_body_over_the_limit_is_a_413_that_names_the_limit(nats_url: str) -> None:
    # It was "Request Entity Too Large", with no number.
    async with system(nats_url) as http:
        response = await http.post(
            "/v1/chat",
            content=b'{"message": "' + b"x" * 900_000 + b'"}',
            headers={"content-type": "application/json"},
        )
    assert _problem(response, 413, "too_large")["detail"] == (
        "The request body is larger than 449,536 bytes, the limit "
        "(a message may have at most 32000 characters)."
    )


def test_the_document_and_the_server_agree_on_what_is_blank() -> None:
    # The OpenAPI document's pattern is read by ECMA-262 regex engines (schemathesis, a
    # client's validator); the server reads it with Python's. Their \s differ (Python's
    # has the separators U+001C-U+001F and U+0085, ECMA's has U+FEFF): a message the
    # document allows must not be "blank" to the server, and the other way round.
    import re

    import msgspec

    from switchboard.bff.schemas import ChatRequest
    from switchboard.orchestrator import ConversationRequest

    ecma_space = "\t\n\v\f\r \u00a0\u1680\u2028\u2029\u202f\u205f\u3000\ufeff" + "".join(
        chr(c) for c in range(0x2000, 0x200B)
    )
    python_space = "".join(chr(c) for c in range(0x110000) if re.match(r"\s", chr(c)))
    for struct in (ChatRequest, ConversationRequest):
        schema = msgspec.json.schema(struct)
        name = struct.__name__
        pattern = schema["$defs"][name]["properties"]["message"]["pattern"]
        for char in set(ecma_space) | set(python_space):
            # Only blanks of either kind: not a message for the document either.
            assert not re.search(pattern, char), (name, hex(ord(char)))
        assert re.search(pattern, "hi")
