"""``LLM.stream``: the real openai client streaming from the fake server, chunk by chunk."""

from __future__ import annotations

import asyncio
import time

import pytest

from switchboard.orchestrator import ChatMessage, Deadline, LLMError, LocalLLM, OpenAIProvider
from switchboard.orchestrator.core import Usage
from switchboard.orchestrator.llm.openai_stream import OpenAITokenStream
from tests.helpers import metric
from tests.support.fake_openai import FakeOpenAI, Reply

MODEL = "gpt-4o-mini"
ANSWER = "Message brokers pass messages between programs so that neither waits for the other."
HI = [ChatMessage("user", "what does a message broker do?")]


async def read_all(stream: OpenAITokenStream) -> None:
    async with stream as tokens:
        async for _ in tokens:
            pass


def provider(fake: FakeOpenAI, **options: object) -> OpenAIProvider:
    options.setdefault("max_retries", 0)
    options.setdefault("timeout", 10.0)
    return OpenAIProvider(model=MODEL, api_key="test-key", base_url=fake.base_url, **options)  # type: ignore[arg-type]


async def test_chunks_arrive_in_order_with_usage_from_the_stream(fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(Reply.text(ANSWER).streamed(0.01))
    llm = provider(fake_openai)
    first_tokens = metric(
        "switchboard_llm_time_to_first_token_seconds_count", provider="openai", model=MODEL
    )
    completion_tokens = metric(
        "switchboard_llm_tokens_total", provider="openai", model=MODEL, kind="completion"
    )
    async with llm.stream(HI, deadline=Deadline.after(10), max_tokens=64) as tokens:
        chunks = [chunk async for chunk in tokens]
    await llm.aclose()

    assert len(chunks) == len(ANSWER.split())  # one per word, as the server sent them
    assert "".join(chunks) == tokens.text == ANSWER
    request = fake_openai.last_request
    assert request["stream"] is True
    assert request["stream_options"] == {"include_usage": True}
    assert request["max_tokens"] == 64
    words = len(ANSWER.split())
    assert tokens.usage.completion_tokens == words
    assert tokens.usage.prompt_tokens == len(HI[0].content.split())
    assert tokens.usage.total_tokens == words + len(HI[0].content.split())
    assert tokens.first_token_s is not None and tokens.first_token_s > 0
    assert (
        metric("switchboard_llm_time_to_first_token_seconds_count", provider="openai", model=MODEL)
        == first_tokens + 1
    )
    assert (
        metric("switchboard_llm_tokens_total", provider="openai", model=MODEL, kind="completion")
        == completion_tokens + words
    )
    assert fake_openai.streams[-1].completed


async def test_a_server_without_stream_usage_still_streams(fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(Reply.text(ANSWER).streamed(0.0, usage=False))
    llm = provider(fake_openai)
    async with llm.stream(HI) as tokens:
        chunks = [chunk async for chunk in tokens]
    await llm.aclose()
    assert "".join(chunks) == ANSWER
    # No usage from the server: the completion is counted in chunks (a token each, about),
    # so a model's answer never looks free (the answer policy tells model outputs by it).
    assert tokens.usage == Usage(completion_tokens=len(chunks), total_tokens=len(chunks))


async def test_leaving_early_closes_the_servers_stream(fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(Reply.text(" ".join(["word"] * 200)).streamed(0.02))
    llm = provider(fake_openai)
    closed = metric(
        "switchboard_llm_requests_total", provider="openai", model=MODEL, outcome="closed"
    )
    async with llm.stream(HI) as tokens:
        async for _ in tokens:
            if len(tokens.text.split()) == 3:
                break
    record = fake_openai.streams[-1]
    async with asyncio.timeout(5):
        await record.done.wait()  # the server noticed, and stopped generating
    await llm.aclose()
    assert record.disconnected and not record.completed
    assert record.pieces < 50  # it stopped early, nowhere near the 200 words
    assert (
        metric("switchboard_llm_requests_total", provider="openai", model=MODEL, outcome="closed")
        == closed + 1
    )


async def test_cancelling_the_reader_closes_the_servers_stream(fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(Reply.text(" ".join(["word"] * 200)).streamed(0.02))
    llm = provider(fake_openai)
    got_some = asyncio.Event()

    async def read() -> None:
        async with llm.stream(HI) as tokens:
            async for _ in tokens:
                got_some.set()

    reader = asyncio.create_task(read())
    async with asyncio.timeout(5):
        await got_some.wait()
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    record = fake_openai.streams[-1]
    async with asyncio.timeout(5):
        await record.done.wait()
    await llm.aclose()
    assert record.disconnected and not record.completed


async def test_a_slow_stream_cannot_outlive_the_deadline(fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(Reply.text(" ".join(["slow"] * 100)).streamed(0.1))
    llm = provider(fake_openai)
    started = time.monotonic()
    tokens = llm.stream(HI, deadline=Deadline.after(0.6))
    with pytest.raises(LLMError, match=r"time|sent nothing"):
        await read_all(tokens)
    assert time.monotonic() - started < 3
    assert 0 < len(tokens.text.split()) < 100  # some text came, then time was up
    async with asyncio.timeout(5):
        await fake_openai.streams[-1].done.wait()
    assert fake_openai.streams[-1].disconnected
    await llm.aclose()


async def test_a_server_error_is_an_llm_error(fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(Reply.bad_request("no streaming here"))
    llm = provider(fake_openai)
    with pytest.raises(LLMError, match=r"HTTP 400"):
        await read_all(llm.stream(HI))
    await llm.aclose()


async def test_the_offline_provider_streams_its_answer_deterministically() -> None:
    llm = LocalLLM()
    runs = []
    for _ in range(2):
        async with llm.stream(HI) as tokens:
            runs.append([chunk async for chunk in tokens])
    assert runs[0] == runs[1] and len(runs[0]) > 10
    assert "".join(runs[0]) == tokens.text
    assert (await llm.complete(HI)).text == tokens.text
