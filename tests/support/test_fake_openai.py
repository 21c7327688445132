"""The real ``openai.AsyncOpenAI`` client against the local fake server."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import openai
import pydantic
import pytest
from openai.types.chat import ChatCompletionMessageFunctionToolCall, ChatCompletionMessageParam

from tests.support.fake_openai import FakeOpenAI, Reply, ToolCall

QUESTION: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "What is the capital of Norway?"}
]
MODEL = "gpt-4o-mini"

WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}

CITY_SCHEMA: Any = {
    "type": "json_schema",
    "json_schema": {
        "name": "city",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
            "required": ["city", "population"],
            "additionalProperties": False,
        },
    },
}


class City(pydantic.BaseModel):
    city: str
    population: int


def client_for(fake: FakeOpenAI, **options: Any) -> openai.AsyncOpenAI:
    """A real client aimed at ``fake``; no retries unless asked for."""
    options.setdefault("max_retries", 0)
    return openai.AsyncOpenAI(base_url=fake.base_url, api_key="test", **options)


# --------------------------------------------------------------------------- success shapes


async def test_text_completion_round_trips_and_records_the_request() -> None:
    async with FakeOpenAI() as fake, client_for(fake) as client:
        fake.enqueue(Reply.text("Oslo."))
        completion = await client.chat.completions.create(model=MODEL, messages=QUESTION)

    assert completion.choices[0].message.content == "Oslo."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.object == "chat.completion"
    assert completion.model == MODEL
    assert completion.id.startswith("chatcmpl-")
    assert len(fake.requests) == 1
    assert fake.requests[0]["model"] == MODEL
    assert fake.requests[0]["messages"] == QUESTION
    assert fake.request_headers[0]["authorization"] == "Bearer test"


async def test_empty_script_falls_back_to_the_default_ok() -> None:
    async with FakeOpenAI() as fake, client_for(fake) as client:
        completion = await client.chat.completions.create(model=MODEL, messages=QUESTION)

    assert completion.choices[0].message.content == "ok"


async def test_script_is_consumed_in_order_then_the_configured_default() -> None:
    async with FakeOpenAI(default=Reply.text("fallback")) as fake, client_for(fake) as client:
        fake.enqueue(Reply.text("first"), Reply.text("second"))
        answers = [
            (await client.chat.completions.create(model=MODEL, messages=QUESTION))
            .choices[0]
            .message.content
            for _ in range(3)
        ]

    assert answers == ["first", "second", "fallback"]
    assert fake.pending == 0


async def test_tool_call_is_parsed_by_the_client() -> None:
    async with FakeOpenAI() as fake, client_for(fake) as client:
        fake.enqueue(Reply.tool_call("get_weather", {"city": "Oslo"}, id="call_abc"))
        completion = await client.chat.completions.create(
            model=MODEL, messages=QUESTION, tools=[WEATHER_TOOL]
        )

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.id == "call_abc"
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Oslo"}
    assert fake.requests[0]["tools"] == [WEATHER_TOOL]


async def test_parallel_tool_calls_get_distinct_ids() -> None:
    async with FakeOpenAI() as fake, client_for(fake) as client:
        fake.enqueue(
            Reply.parallel_tool_calls(
                ToolCall.of("get_weather", {"city": "Oslo"}),
                ToolCall.of("get_weather", {"city": "Bergen"}),
            )
        )
        completion = await client.chat.completions.create(
            model=MODEL, messages=QUESTION, tools=[WEATHER_TOOL]
        )

    calls = completion.choices[0].message.tool_calls
    assert calls is not None
    functions = [c for c in calls if isinstance(c, ChatCompletionMessageFunctionToolCall)]
    assert [json.loads(c.function.arguments)["city"] for c in functions] == ["Oslo", "Bergen"]
    assert len({c.id for c in functions}) == 2


async def test_structured_output_with_json_schema_returns_the_json_content() -> None:
    async with FakeOpenAI() as fake, client_for(fake) as client:
        fake.enqueue(Reply.structured({"city": "Oslo", "population": 717_710}))
        completion = await client.chat.completions.create(
            model=MODEL, messages=QUESTION, response_format=CITY_SCHEMA
        )

    content = completion.choices[0].message.content
    assert content is not None
    assert json.loads(content) == {"city": "Oslo", "population": 717_710}
    assert fake.requests[0]["response_format"] == CITY_SCHEMA


async def test_structured_output_parses_into_a_pydantic_model() -> None:
    async with FakeOpenAI() as fake, client_for(fake) as client:
        fake.enqueue(Reply.structured({"city": "Oslo", "population": 717_710}))
        completion = await client.chat.completions.parse(
            model=MODEL, messages=QUESTION, response_format=City
        )

    assert completion.choices[0].message.parsed == City(city="Oslo", population=717_710)
    assert fake.requests[0]["response_format"]["type"] == "json_schema"


async def test_every_success_shape_passes_the_sdks_strict_validation() -> None:
    async with FakeOpenAI() as fake, client_for(fake, _strict_response_validation=True) as client:
        fake.enqueue(
            Reply.text("Oslo."),
            Reply.tool_call("get_weather", {"city": "Oslo"}),
            Reply.structured({"city": "Oslo", "population": 1}),
        )
        for _ in range(3):
            completion = await client.chat.completions.create(model=MODEL, messages=QUESTION)
            assert completion.usage is not None

    assert len(fake.requests) == 3


async def test_usage_counts_words_deterministically() -> None:
    async with FakeOpenAI() as fake, client_for(fake) as client:
        fake.enqueue(Reply.text("The capital is Oslo."))
        completion = await client.chat.completions.create(model=MODEL, messages=QUESTION)

    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens == 6  # "What is the capital of Norway?"
    assert usage.completion_tokens == 4
    assert usage.total_tokens == 10


async def test_responder_answers_from_the_request() -> None:
    def shout(request: dict[str, Any]) -> Reply:
        return Reply.text(request["messages"][-1]["content"].upper())

    async with FakeOpenAI(default=shout) as fake, client_for(fake) as client:
        completion = await client.chat.completions.create(model=MODEL, messages=QUESTION)

    assert completion.choices[0].message.content == "WHAT IS THE CAPITAL OF NORWAY?"


async def test_async_responder_is_awaited() -> None:
    async def echo_model(request: dict[str, Any]) -> Reply:
        await asyncio.sleep(0)
        return Reply.text(f"model={request['model']}")

    async with FakeOpenAI() as fake, client_for(fake) as client:
        fake.enqueue(echo_model)
        completion = await client.chat.completions.create(model=MODEL, messages=QUESTION)

    assert completion.choices[0].message.content == f"model={MODEL}"


async def test_failing_responder_gives_a_non_retried_500_and_is_recorded() -> None:
    def broken(request: dict[str, Any]) -> Reply:
        raise KeyError("nope")

    async with FakeOpenAI(default=broken) as fake, client_for(fake, max_retries=2) as client:
        with pytest.raises(openai.InternalServerError, match="KeyError"):
            await client.chat.completions.create(model=MODEL, messages=QUESTION)

    assert len(fake.requests) == 1
    assert [type(err) for err in fake.responder_errors] == [KeyError]


async def test_models_are_listed() -> None:
    async with FakeOpenAI(models=["gpt-test"]) as fake, client_for(fake) as client:
        page = await client.models.list()
        model = await client.models.retrieve("gpt-test")

    assert [m.id for m in page.data] == ["gpt-test"]
    assert model.id == "gpt-test"


async def test_fixture_yields_a_running_server(fake_openai: FakeOpenAI) -> None:
    async with client_for(fake_openai) as client:
        completion = await client.chat.completions.create(model=MODEL, messages=QUESTION)

    assert fake_openai.base_url.startswith("http://127.0.0.1:")
    assert completion.choices[0].message.content == "ok"


# --------------------------------------------------------------------------- streaming


async def test_streamed_text_arrives_in_chunks_with_final_usage() -> None:
    async with FakeOpenAI() as fake, client_for(fake) as client:
        fake.enqueue(Reply.text("The capital is Oslo."))
        stream = await client.chat.completions.create(
            model=MODEL,
            messages=QUESTION,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "The capital is Oslo."
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) == 4
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 10


async def test_streamed_tool_call_is_reassembled_by_the_stream_helper() -> None:
    async with FakeOpenAI() as fake, client_for(fake) as client:
        fake.enqueue(Reply.tool_call("get_weather", {"city": "Oslo"}))
        async with client.chat.completions.stream(
            model=MODEL, messages=QUESTION, tools=[WEATHER_TOOL]
        ) as stream:
            completion = await stream.get_final_completion()

    calls = completion.choices[0].message.tool_calls
    assert calls is not None
    assert calls[0].function.name == "get_weather"
    assert json.loads(calls[0].function.arguments) == {"city": "Oslo"}
    assert completion.choices[0].finish_reason == "tool_calls"


# --------------------------------------------------------------------------- HTTP errors


async def test_rate_limit_then_success_is_retried_by_the_client() -> None:
    async with FakeOpenAI() as fake, client_for(fake, max_retries=2) as client:
        fake.enqueue(Reply.rate_limited(retry_after="0.01"), Reply.text("after the wait"))
        completion = await client.chat.completions.create(model=MODEL, messages=QUESTION)

    assert completion.choices[0].message.content == "after the wait"
    assert len(fake.requests) == 2
    assert [h["x-stainless-retry-count"] for h in fake.request_headers] == ["0", "1"]


async def test_rate_limit_without_retries_raises_rate_limit_error() -> None:
    async with FakeOpenAI() as fake, client_for(fake) as client:
        fake.enqueue(Reply.rate_limited())
        with pytest.raises(openai.RateLimitError) as caught:
            await client.chat.completions.create(model=MODEL, messages=QUESTION)

    assert caught.value.status_code == 429
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.response.headers["retry-after"] == "0.01"


async def test_server_error_without_retries_raises_internal_server_error() -> None:
    async with FakeOpenAI() as fake, client_for(fake, max_retries=0) as client:
        fake.enqueue(Reply.server_error("boom"))
        with pytest.raises(openai.InternalServerError) as caught:
            await client.chat.completions.create(model=MODEL, messages=QUESTION)

    assert caught.value.status_code == 500
    assert caught.value.type == "server_error"
    assert "boom" in caught.value.message
    assert len(fake.requests) == 1


async def test_bad_request_raises_without_retry() -> None:
    async with FakeOpenAI() as fake, client_for(fake, max_retries=3) as client:
        fake.enqueue(Reply.bad_request("messages is too long", param="messages"))
        with pytest.raises(openai.BadRequestError) as caught:
            await client.chat.completions.create(model=MODEL, messages=QUESTION)

    assert caught.value.status_code == 400
    assert caught.value.param == "messages"
    assert caught.value.body == {
        "message": "messages is too long",
        "type": "invalid_request_error",
        "param": "messages",
        "code": None,
    }
    assert len(fake.requests) == 1


async def test_unknown_endpoint_raises_not_found() -> None:
    async with FakeOpenAI() as fake, client_for(fake) as client:
        with pytest.raises(openai.NotFoundError):
            await client.embeddings.create(model="text-embedding-3-small", input="hi")

    assert fake.requests == []


# --------------------------------------------------------------------------- slow server


async def test_slow_reply_times_out_the_client_quickly() -> None:
    async with FakeOpenAI() as fake, client_for(fake, timeout=0.2) as client:
        fake.enqueue(Reply.text("too late").delayed(30))
        started = time.monotonic()
        with pytest.raises(openai.APITimeoutError):
            await client.chat.completions.create(model=MODEL, messages=QUESTION)
        assert time.monotonic() - started < 5

        fake.enqueue(Reply.text("in time").delayed(0.01))
        completion = await client.chat.completions.create(model=MODEL, messages=QUESTION)
        assert completion.choices[0].message.content == "in time"


async def test_stop_during_a_delay_answers_503_and_returns_promptly() -> None:
    async with FakeOpenAI() as fake, client_for(fake) as client:
        fake.enqueue(Reply.text("never").delayed(60))
        call = asyncio.create_task(client.chat.completions.create(model=MODEL, messages=QUESTION))
        async with asyncio.timeout(5):
            await fake.wait_for_requests(1)
        started = time.monotonic()
        await fake.stop()
        stopped_in = time.monotonic() - started

        with pytest.raises(openai.InternalServerError) as caught:
            await call

    assert stopped_in < 3
    assert caught.value.status_code == 503


async def test_port_is_released_after_exit() -> None:
    async with FakeOpenAI() as fake:
        port = fake.port

    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)


# --------------------------------------------------------------------------- garbage


async def test_non_json_body_is_returned_as_a_str_by_a_default_client() -> None:
    # Surprise: without strict validation the SDK hands back the raw text, not an error.
    async with FakeOpenAI() as fake, client_for(fake) as client:
        fake.enqueue(Reply.raw("<html>upstream hiccup</html>"))
        result: object = await client.chat.completions.create(model=MODEL, messages=QUESTION)

    assert result == "<html>upstream hiccup</html>"


async def test_non_json_body_raises_api_response_validation_error_when_strict() -> None:
    async with FakeOpenAI() as fake, client_for(fake, _strict_response_validation=True) as client:
        fake.enqueue(Reply.raw("<html>upstream hiccup</html>"))
        with pytest.raises(openai.APIResponseValidationError, match="Content-Type"):
            await client.chat.completions.create(model=MODEL, messages=QUESTION)


async def test_broken_json_with_json_content_type_raises_json_decode_error() -> None:
    # Not an openai.OpenAIError: the SDK lets json.JSONDecodeError escape.
    async with FakeOpenAI() as fake, client_for(fake) as client:
        fake.enqueue(Reply.raw('{"choices": [', content_type="application/json"))
        with pytest.raises(json.JSONDecodeError):
            await client.chat.completions.create(model=MODEL, messages=QUESTION)


async def test_wrongly_shaped_json_is_not_validated_by_a_default_client() -> None:
    async with FakeOpenAI() as fake, client_for(fake) as client:
        fake.enqueue(Reply.raw('{"unexpected": true}', content_type="application/json"))
        completion = await client.chat.completions.create(model=MODEL, messages=QUESTION)

    assert completion.choices is None


async def test_wrongly_shaped_json_raises_api_response_validation_error_when_strict() -> None:
    async with FakeOpenAI() as fake, client_for(fake, _strict_response_validation=True) as client:
        fake.enqueue(Reply.raw('{"unexpected": true}', content_type="application/json"))
        with pytest.raises(openai.APIResponseValidationError):
            await client.chat.completions.create(model=MODEL, messages=QUESTION)


async def test_content_that_is_not_the_wanted_json_fails_pydantic_parsing() -> None:
    async with FakeOpenAI() as fake, client_for(fake) as client:
        fake.enqueue(Reply.text("Sure! The city is Oslo."))
        with pytest.raises(pydantic.ValidationError):
            await client.chat.completions.parse(
                model=MODEL, messages=QUESTION, response_format=City
            )


async def test_tool_rounds_are_scripted_from_the_results_sent_back(fake_openai: FakeOpenAI) -> None:
    from tests.support.fake_openai import tool_messages

    def round_two(request: dict[str, Any]) -> Reply:
        [result] = tool_messages(request)
        return Reply.text(f"got {result['content']} for {result['tool_call_id']}")

    fake_openai.enqueue(Reply.tool_call("calc", {"x": 1}, id="call_1"), round_two)
    async with openai.AsyncOpenAI(base_url=fake_openai.base_url, api_key="k") as client:
        first = await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "go"}]
        )
        call = first.choices[0].message.tool_calls[0]
        second = await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
                {"role": "tool", "tool_call_id": call.id, "content": "42"},
            ],
        )
    assert second.choices[0].message.content == "got 42 for call_1"
    assert tool_messages({"messages": "junk"}) == []
