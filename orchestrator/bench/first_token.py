"""``switchboard bench llm-latency --first-token URL``: time to first token, end to end.

Against any OpenAI-compatible model server (``URL``, its ``/v1`` base; ``--model``):
the built-in ``llm`` agent streams from it, and an orchestrator (offline planner: the
plan costs no model call) and a BFF run as processes on one nats-server. Each round,
one after the other, the same question is asked

- of the model server itself, by the ``openai`` client here: its own time to first
  token (``direct``, the baseline);
- through the system over NATS (``ConversationClient.stream``): the time to the first
  ``token`` event (``nats``);
- through the system over HTTP (the BFF's ``/v1/chat/stream``): the time to the first
  ``event: token`` line (``sse``).

Each is read to its end before the next starts (a local server answers one at a time;
the order turns each round), and all three send the agent's prompt, each with a question
of its own (a server's prompt cache treats them alike).
The row's latencies are the system's over NATS against the direct ones; extras give
the SSE side, the overheads (``*_overhead_p50_ms``: the system's median over the
model's), and the token messages per answer (coalescing, see ``core.tokens``) against
the model's chunks.
"""

from __future__ import annotations

import contextlib
import itertools
import statistics
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai

from ..core.client import ConversationClient
from ..core.conversation import ConversationReply
from ..core.progress import TokenEvent
from ..core.requester import Requester
from ..core.subjects import Subjects
from ..runtime.child import free_port
from .chain import bench_connection
from .stats import BenchResult, Run
from .system import bench_logs, nats_server, switchboard_part, together

__all__ = ["run_first_token"]

QUESTION = "explain in three sentences what a message broker does"
#: Every request asks a question of its own (numbered), as users do: no side is answered
#: from a server's cache of the previous prompt; the shared system prompt is cached alike.
_numbers = itertools.count(1)


def _question() -> str:
    return f"{QUESTION} (question {next(_numbers)})"


#: The built-in llm agent's system prompt (``agents/builtin/assistant.py``; a test keeps
#: them equal): the direct request is the very prompt the agent sends, so a server's
#: prompt cache serves every side alike.
SYSTEM = "You are a concise, accurate assistant. Answer in a few sentences."


@dataclass
class _Side:
    """One way of asking: the times to first token, to the end, and messages per answer."""

    first: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    messages: list[int] = field(default_factory=list)
    errors: int = 0

    def run(self) -> Run:
        return Run(
            requests=len(self.first),
            wall_s=sum(self.total) or 1.0,
            latencies=self.first,
            errors=self.errors,
        )

    def p50_ms(self) -> float:
        return round(statistics.median(self.first) * 1000, 1) if self.first else 0.0


async def run_first_token(
    *,
    model_url: str,
    model: str,
    api_key: str = "unset",
    nats_url: str | None = None,
    requests: int = 10,
    subject_prefix: str = "ai",
    progress: Callable[[str], None] = lambda _: None,
) -> list[BenchResult]:
    """Time to first token through the system (NATS and SSE) against the model's own."""
    http_port = free_port()
    model_env = {
        "SWITCHBOARD_LLM_PROVIDER": "openai",
        "OPENAI_BASE_URL": model_url,
        "OPENAI_API_KEY": api_key,
        "SWITCHBOARD_LLM_MODEL": model,
        "SWITCHBOARD_SUBJECT_PREFIX": subject_prefix,
    }
    part_env = {"SWITCHBOARD_SUBJECT_PREFIX": subject_prefix}
    direct, nats, sse = _Side(), _Side(), _Side()
    async with (
        bench_logs() as logs,
        nats_server(nats_url) as server,
        bench_connection(server.url) as nc,
        together(
            switchboard_part(
                "agent", ["agent", "llm"], nats_url=server.url, logs=logs, env=model_env
            ),
            switchboard_part(
                "orchestrator", ["orchestrator"], nats_url=server.url, logs=logs, env=part_env
            ),
            switchboard_part(
                "bff", ["bff"], nats_url=server.url, logs=logs, env=part_env, port=http_port
            ),
        ),
        Requester(nc, subjects=Subjects(subject_prefix)) as requester,
        openai.AsyncOpenAI(base_url=model_url, api_key=api_key, max_retries=0) as client,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}", timeout=120) as http,
    ):
        conversations = ConversationClient(requester, default_timeout=120, retries=0)
        ask = {
            "direct": lambda: _direct(client, model),
            "nats": lambda: _over_nats(conversations),
            "sse": lambda: _over_sse(http),
        }
        sides = {"direct": direct, "nats": nats, "sse": sse}
        for name in ask:  # warm up: model loaded, connections open, agents discovered
            with contextlib.suppress(Exception):
                await ask[name]()
        names = list(sides)
        for i in range(requests):
            for name in names[i % 3 :] + names[: i % 3]:  # each goes first in turn
                side = sides[name]
                try:
                    first, total, messages = await ask[name]()
                except Exception as exc:
                    side.errors += 1
                    progress(f"    {name} failed: {exc}")
                    continue
                side.first.append(first)
                side.total.append(total)
                side.messages.append(messages)
            progress(
                f"    round {i + 1}/{requests}: first token direct {direct.p50_ms()} ms, "
                f"nats {nats.p50_ms()} ms, sse {sse.p50_ms()} ms (medians so far)"
            )
    result = BenchResult.compare(
        "llm-first-token",
        1,
        [nats.run()],
        [direct.run()],
        model=model,
        model_url=model_url,
        baseline_name="the model server itself",
        ttft_direct_p50_ms=direct.p50_ms(),
        ttft_nats_p50_ms=nats.p50_ms(),
        ttft_sse_p50_ms=sse.p50_ms(),
        nats_overhead_p50_ms=round(nats.p50_ms() - direct.p50_ms(), 1),
        sse_overhead_p50_ms=round(sse.p50_ms() - direct.p50_ms(), 1),
        sse_errors=sse.errors,
        model_chunks_per_answer=_median(direct.messages),
        token_messages_per_answer_nats=_median(nats.messages),
        token_messages_per_answer_sse=_median(sse.messages),
        answer_s_direct=_median(direct.total),
        answer_s_nats=_median(nats.total),
    )
    progress(
        f"llm-first-token: {model} at {model_url}: first token {direct.p50_ms()} ms direct, "
        f"{nats.p50_ms()} ms over NATS, {sse.p50_ms()} ms over SSE (medians of "
        f"{len(direct.first)}); token messages per answer {_median(nats.messages)} for "
        f"{_median(direct.messages)} model chunks"
    )
    return [result]


def _median(values: list[float] | list[int]) -> float:
    return round(float(statistics.median(values)), 3) if values else 0.0


async def _direct(client: openai.AsyncOpenAI, model: str) -> tuple[float, float, int]:
    started = time.perf_counter()
    first = 0.0
    chunks = 0
    stream = await client.chat.completions.create(
        model=model,
        messages=[
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": _question()},
        ],
        stream=True,
    )
    async with stream:
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                chunks += 1
                if not first:
                    first = time.perf_counter() - started
    return first, time.perf_counter() - started, chunks


async def _over_nats(client: ConversationClient) -> tuple[float, float, int]:
    started = time.perf_counter()
    first = 0.0
    tokens = 0
    reply: ConversationReply | None = None
    async with client.stream(_question(), user_id="bench", agents=["llm"]) as events:
        async for item in events:
            if isinstance(item, TokenEvent):
                tokens += 1
                if not first:
                    first = time.perf_counter() - started
            elif isinstance(item, ConversationReply):
                reply = item
    if reply is None or reply.partial or not first:
        raise RuntimeError(f"no streamed answer over NATS: {reply.answer if reply else None}")
    return first, time.perf_counter() - started, tokens


async def _over_sse(http: httpx.AsyncClient) -> tuple[float, float, int]:
    started = time.perf_counter()
    first = 0.0
    tokens = 0
    body = {"message": _question(), "agents": ["llm"]}
    async with _sse(http, body) as lines:
        async for line in lines:
            if line == "event: token":
                tokens += 1
                if not first:
                    first = time.perf_counter() - started
    if not first:
        raise RuntimeError("no token event over SSE")
    return first, time.perf_counter() - started, tokens


@contextlib.asynccontextmanager
async def _sse(http: httpx.AsyncClient, body: dict[str, Any]) -> AsyncIterator[AsyncIterator[str]]:
    async with http.stream("POST", "/v1/chat/stream", json=body) as response:
        response.raise_for_status()
        yield response.aiter_lines()
