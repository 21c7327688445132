"""A streamed chat completion from an OpenAI-compatible server: text chunks, then usage.

``OpenAIProvider.stream`` returns one of these. The request goes out when the ``async
with`` block is entered (``stream=True``, ``stream_options.include_usage``); each chunk's
text comes out of the iteration, and the last chunk's ``usage`` is counted (a server
that sends none: the chunks, about a token each). Leaving the block -- at the end, on
``break``, on an error, or because the task was cancelled -- closes the HTTP response (the
SDK's ``AsyncStream.close``): the connection is dropped with the body unread, so the model
server sees its client gone and stops generating.

Timing: the wait for each chunk (the first included) is bounded by the provider's timeout
(how long a model may stay silent) and by the deadline, so a stream never runs past the
deadline however long the answer is.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Self, cast

import openai
from openai.types.chat import ChatCompletionMessageParam

from ..core.deadline import Deadline
from ..core.envelopes import Usage
from ..core.errors import LLMError
from ..metrics import LLM_DURATION, LLM_FIRST_TOKEN, LLM_REQUESTS, LLM_TOKENS
from .base import ChatMessage

__all__ = ["OpenAITokenStream"]


class OpenAITokenStream:
    """One streamed answer (see the module docstring); a :class:`~.base.TokenStream`."""

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        *,
        provider: str,
        model: str,
        messages: list[ChatMessage],
        deadline: Deadline | None,
        max_tokens: int | None,
        timeout: float,
    ) -> None:
        self.provider = provider
        self.model = model
        self._client = client
        self._messages = messages
        self._deadline = deadline
        self._max_tokens = max_tokens
        self._timeout = timeout
        self._stream: openai.AsyncStream[Any] | None = None
        self._parts: list[str] = []
        self._usage = Usage()
        self._outcome = "closed"  # left before the end, unless the iteration says otherwise
        self._started = 0.0
        self.first_token_s: float | None = None
        """Seconds from the request to the first text chunk (None before it)."""

    @property
    def usage(self) -> Usage:
        """The server's usage; from one that sends none (llama.cpp's server ignores
        ``include_usage``), the completion counted in chunks, about a token each -- a
        model's answer never counts as free."""
        if self._usage.total_tokens or not self._parts:
            return self._usage
        return Usage(completion_tokens=len(self._parts), total_tokens=len(self._parts))

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def __repr__(self) -> str:
        return f"<OpenAITokenStream model={self.model!r} chunks={len(self._parts)}>"

    def _wait(self) -> float:
        """How long the next chunk may take: the silence allowed, within the deadline."""
        wait = self._timeout
        if self._deadline is not None:
            wait = min(wait, self._deadline.remaining())
        if wait <= 0:
            self._outcome = "timeout"
            raise LLMError(f"The model {self.model} ran out of time before the deadline.")
        return wait

    @contextmanager
    def _errors(self, wait: float) -> Iterator[None]:
        """The ``openai`` (and timeout) errors as LLMError, the outcome noted for the metrics."""
        try:
            yield
        except (openai.APITimeoutError, TimeoutError) as exc:
            self._outcome = "timeout"
            raise LLMError(f"The model {self.model} sent nothing for {wait:.1f}s.") from exc
        except openai.RateLimitError as exc:
            self._outcome = "rate_limited"
            raise LLMError(
                f"The model {self.model} is rate limited (HTTP 429) and retries did not help."
            ) from exc
        except openai.APIStatusError as exc:
            self._outcome = f"http_{exc.status_code}"
            raise LLMError(f"The model {self.model} failed with HTTP {exc.status_code}.") from exc
        except openai.APIConnectionError as exc:
            self._outcome = "unreachable"
            raise LLMError(f"The model server for {self.model} is unreachable.") from exc
        except (openai.OpenAIError, ValueError) as exc:  # JSONDecodeError is a ValueError
            self._outcome = "invalid_response"
            raise LLMError(f"The model {self.model} sent an unreadable stream.") from exc

    async def __aenter__(self) -> Self:
        self._started = time.perf_counter()
        try:
            wait = self._wait()
            with self._errors(wait):
                async with asyncio.timeout(wait + 1.0):  # the client's own timeout comes first
                    self._stream = await self._client.chat.completions.create(
                        model=self.model,
                        messages=cast(
                            "list[ChatCompletionMessageParam]",
                            [{"role": m.role, "content": m.content} for m in self._messages],
                        ),
                        stream=True,
                        stream_options={"include_usage": True},
                        max_tokens=openai.omit if self._max_tokens is None else self._max_tokens,
                        timeout=wait,
                    )
        except BaseException:
            self._observe()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._stream is not None:
                await self._stream.close()  # drops the connection: the server stops generating
        finally:
            self._observe()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> str:
        stream = self._stream
        if stream is None:
            raise RuntimeError("Iterate a token stream inside `async with llm.stream(...)`.")
        while True:
            wait = self._wait()
            try:
                with self._errors(wait):
                    async with asyncio.timeout(wait):
                        chunk = await stream.__anext__()
            except StopAsyncIteration:
                self._outcome = "ok"
                raise
            usage = getattr(chunk, "usage", None)
            if usage is not None:
                self._usage = token_usage(usage)
            text = "".join(
                content
                for choice in getattr(chunk, "choices", None) or ()
                if isinstance(content := getattr(choice.delta, "content", None), str)
            )
            if text:
                if self.first_token_s is None:
                    self.first_token_s = time.perf_counter() - self._started
                    LLM_FIRST_TOKEN.labels(self.provider, self.model).observe(self.first_token_s)
                self._parts.append(text)
                return text

    def _observe(self) -> None:
        LLM_REQUESTS.labels(self.provider, self.model, self._outcome).inc()
        LLM_DURATION.labels(self.provider, self.model).observe(time.perf_counter() - self._started)
        usage = self.usage
        LLM_TOKENS.labels(self.provider, self.model, "prompt").inc(usage.prompt_tokens)
        LLM_TOKENS.labels(self.provider, self.model, "completion").inc(usage.completion_tokens)


def token_usage(usage: Any) -> Usage:
    """The ``usage`` object of an OpenAI response or stream chunk as a :class:`Usage`."""
    prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
    completion = int(getattr(usage, "completion_tokens", 0) or 0)
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=int(getattr(usage, "total_tokens", 0) or prompt + completion),
    )
