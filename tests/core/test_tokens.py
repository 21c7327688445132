"""TokenCoalescer: the first piece at once, then batches bounded in age and size."""

from __future__ import annotations

import asyncio

import pytest

from switchboard.orchestrator.core import TokenCoalescer
from tests.helpers import eventually


class Sent:
    def __init__(self) -> None:
        self.texts: list[str] = []

    async def __call__(self, text: str) -> None:
        self.texts.append(text)


async def test_the_first_piece_goes_at_once_and_a_burst_goes_together() -> None:
    sent = Sent()
    async with TokenCoalescer(sent, max_delay=10.0) as tokens:
        await tokens.add("Hello")
        assert sent.texts == ["Hello"]  # no waiting for the first token
        for i in range(50):
            await tokens.add(f" w{i}")
        assert sent.texts == ["Hello"]  # held: young, and under max_bytes
    assert sent.texts == ["Hello", "".join(f" w{i}" for i in range(50))]
    assert (tokens.chunks, tokens.messages) == (51, 2)


async def test_held_text_goes_once_max_bytes_are_held() -> None:
    sent = Sent()
    async with TokenCoalescer(sent, max_delay=10.0, max_bytes=16) as tokens:
        for piece in ["a", "bbbbbbbb", "cccccccc", "d", "eeeeeeeeeeeeeeee", "f"]:
            await tokens.add(piece)
    assert sent.texts == ["a", "bbbbbbbbcccccccc", "deeeeeeeeeeeeeeee", "f"]
    assert "".join(sent.texts) == "abbbbbbbbccccccccdeeeeeeeeeeeeeeeef"


async def test_held_text_goes_after_max_delay_without_another_piece() -> None:
    sent = Sent()
    async with TokenCoalescer(sent, max_delay=0.05) as tokens:
        await tokens.add("one")
        await tokens.add(" two")
        await eventually(lambda: len(sent.texts) == 2, timeout=5)  # quiet model: timer sends
        assert sent.texts == ["one", " two"]
    assert tokens.messages == 2
    assert tokens.max_wait > 0.03


async def test_a_slow_model_has_each_piece_sent_at_once() -> None:
    sent = Sent()
    async with TokenCoalescer(sent, max_delay=0.02) as tokens:
        for i in range(4):
            await tokens.add(f"p{i}")
            assert sent.texts[-1] == f"p{i}"  # nothing sent for max_delay: no holding
            await asyncio.sleep(0.05)
    assert tokens.messages == 4
    assert tokens.max_wait < 0.02


async def test_a_failing_send_loses_tokens_not_the_answer() -> None:
    async def broken(text: str) -> None:
        raise ConnectionError("gone")

    async with TokenCoalescer(broken, max_delay=0.01) as tokens:
        for piece in "abc":
            await tokens.add(piece)
            await asyncio.sleep(0.03)
    assert tokens.messages == 3


async def test_cancelled_it_sends_nothing_more_and_leaves_no_task() -> None:
    sent = Sent()
    started = asyncio.Event()

    async def produce() -> None:
        async with TokenCoalescer(sent, max_delay=10.0) as tokens:
            await tokens.add("first")
            await tokens.add(" held")
            started.set()
            await asyncio.sleep(30)

    before = set(asyncio.all_tasks())
    task = asyncio.create_task(produce())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sent.texts == ["first"]
    assert set(asyncio.all_tasks()) <= before
