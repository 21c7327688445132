"""OpenAIProvider: any OpenAI-compatible chat-completions server through the ``openai`` package.

Structured answers use a forced tool call whose parameters are the msgspec
JSON schema of the wanted type (supported by OpenAI and by most compatible
servers), with the reply's content as a fallback when a server ignores
tools; either way the JSON is validated with msgspec. This module is the
only place that knows the ``openai`` exceptions.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, TypeVar

import msgspec
import openai
import structlog

from ..core import tracing
from ..core.deadline import Deadline
from ..core.envelopes import Usage
from ..core.errors import LLMError
from ..metrics import LLM_DURATION, LLM_REQUESTS, LLM_TOKENS
from .base import ChatMessage, Completion, Tool, ToolCall, ToolTurn
from .entities import decode_entities
from .openai_stream import OpenAITokenStream, token_usage

__all__ = ["OpenAIProvider"]

T = TypeVar("T")

log = structlog.get_logger("switchboard.llm")

#: Sampling for structured answers (plans): the most likely tokens, not creative ones, and
#: a bound on the answer, so that a model looping inside its grammar stops with an invalid
#: value in seconds rather than at the context's end (or the deadline). The schema itself
#: (the tool's parameters) is what constrained decoding follows: see docs/llm-servers.md.
STRUCTURED_OPTIONS: dict[str, Any] = {"temperature": 0, "max_tokens": 1024}


class OpenAIProvider:
    """Chat completions from OpenAI or any compatible server (``base_url``)."""

    provider = "openai"
    offline = False

    def __init__(
        self,
        *,
        model: str = "gpt-4o-mini",
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 2,
        client: openai.AsyncOpenAI | None = None,
    ) -> None:
        self.model = model
        self.timeout = timeout
        self._client = client or openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries
        )
        self._owns_client = client is None

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.close()

    def __repr__(self) -> str:
        return f"<OpenAIProvider model={self.model!r} base_url={str(self._client.base_url)!r}>"

    async def complete(
        self,
        messages: list[ChatMessage],
        *,
        deadline: Deadline | None = None,
        max_tokens: int | None = None,
    ) -> Completion:
        options: dict[str, Any] = {}
        if max_tokens is not None:
            options["max_tokens"] = max_tokens
        response = await self._create(messages, deadline, **options)
        message = _first_message(response)
        content = getattr(message, "content", None)
        if not isinstance(content, str) or not content.strip():
            raise LLMError(f"The model {self.model} answered with no text.")
        text = decode_entities(content.strip(), (m.content for m in messages))
        return Completion(text=text, usage=_usage(response))

    def stream(
        self,
        messages: list[ChatMessage],
        *,
        deadline: Deadline | None = None,
        max_tokens: int | None = None,
    ) -> OpenAITokenStream:
        """:meth:`complete`, streamed (``async with provider.stream(...) as tokens``)."""
        return OpenAITokenStream(
            self._client,
            provider=self.provider,
            model=self.model,
            messages=messages,
            deadline=deadline,
            max_tokens=max_tokens,
            timeout=self.timeout,
        )

    async def structured(
        self,
        messages: list[ChatMessage],
        schema: type[T],
        *,
        name: str,
        description: str,
        deadline: Deadline | None = None,
    ) -> tuple[T, Usage]:
        tool = {
            "type": "function",
            "function": {
                "name": name,
                "description": description,
                "parameters": _json_schema(schema),
            },
        }
        response = await self._create(
            messages,
            deadline,
            tools=[tool],
            tool_choice={"type": "function", "function": {"name": name}},
            **STRUCTURED_OPTIONS,
        )
        message = _first_message(response)
        raw: str | None = None
        for call in getattr(message, "tool_calls", None) or []:
            function = getattr(call, "function", None)
            if function is not None and function.name == name:
                raw = function.arguments
                break
        if raw is None:  # a server that ignores tools may still answer with the JSON
            raw = getattr(message, "content", None)
        if not isinstance(raw, str) or not raw.strip():
            raise LLMError(f"The model {self.model} gave no {name} answer.")
        try:
            value = msgspec.json.decode(_strip_fences(raw), type=schema)
        except msgspec.MsgspecError as exc:
            raise LLMError(f"The model {self.model} gave an invalid {name}: {exc}.") from exc
        return value, _usage(response)

    async def tool_round(
        self,
        messages: list[ChatMessage],
        tools: list[Tool],
        *,
        final: bool = False,
        deadline: Deadline | None = None,
    ) -> ToolTurn:
        """One turn of the tool-calling loop: the model's parallel tool calls, or its text.

        ``final`` sends ``tool_choice="none"``: the model must answer in text.
        """
        specs = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.parameters,
                },
            }
            for t in tools
        ]
        response = await self._create(
            messages, deadline, tools=specs, tool_choice="none" if final else "auto"
        )
        message = _first_message(response)
        calls = tuple(
            ToolCall(
                id=str(getattr(call, "id", "") or f"call_{index}"),
                name=str(getattr(function, "name", "") or ""),
                arguments=str(getattr(function, "arguments", "") or ""),
            )
            for index, call in enumerate(getattr(message, "tool_calls", None) or [])
            if (function := getattr(call, "function", None)) is not None
        )
        content = getattr(message, "content", None)
        text = content.strip() if isinstance(content, str) and content.strip() else None
        if text is not None:
            text = decode_entities(text, (m.content or "" for m in messages))
        return ToolTurn(text=text, calls=calls, usage=_usage(response))

    async def _create(
        self, messages: list[ChatMessage], deadline: Deadline | None, **options: Any
    ) -> Any:
        if not tracing.ENABLED:
            return await self._request(messages, deadline, **options)
        # The OpenTelemetry GenAI conventions: one client span per model call, with tokens.
        with tracing.span(
            f"chat {self.model}",
            **{
                "gen_ai.operation.name": "chat",
                "gen_ai.system": self.provider,
                "gen_ai.request.model": self.model,
            },
        ) as current:
            response = await self._request(messages, deadline, **options)
            usage = _usage(response)
            if current is not None:
                current.set_attribute("gen_ai.usage.input_tokens", usage.prompt_tokens)
                current.set_attribute("gen_ai.usage.output_tokens", usage.completion_tokens)
                model = getattr(response, "model", None)
                if isinstance(model, str):
                    current.set_attribute("gen_ai.response.model", model)
            return response

    async def _request(
        self, messages: list[ChatMessage], deadline: Deadline | None, **options: Any
    ) -> Any:
        timeout = self.timeout
        if deadline is not None:
            timeout = min(timeout, deadline.remaining())
            if timeout <= 0:
                raise LLMError("No time is left for the language model before the deadline.")
        started = time.perf_counter()
        outcome = "ok"
        try:
            async with asyncio.timeout(timeout + 1.0):  # the client's own timeout comes first
                response = await self._client.chat.completions.create(
                    model=self.model,
                    messages=[_wire(m) for m in messages],  # type: ignore[misc]
                    timeout=timeout,
                    **options,
                )
        except openai.APITimeoutError as exc:
            outcome = "timeout"
            raise LLMError(f"The model {self.model} did not answer within {timeout:.1f}s.") from exc
        except TimeoutError as exc:
            outcome = "timeout"
            raise LLMError(f"The model {self.model} did not answer within {timeout:.1f}s.") from exc
        except openai.RateLimitError as exc:
            outcome = "rate_limited"
            raise LLMError(
                f"The model {self.model} is rate limited (HTTP 429) and retries did not help."
            ) from exc
        except openai.APIStatusError as exc:
            outcome = f"http_{exc.status_code}"
            raise LLMError(f"The model {self.model} failed with HTTP {exc.status_code}.") from exc
        except openai.APIConnectionError as exc:
            outcome = "unreachable"
            raise LLMError(f"The model server for {self.model} is unreachable.") from exc
        except (openai.OpenAIError, ValueError) as exc:  # JSONDecodeError is a ValueError
            outcome = "invalid_response"
            raise LLMError(f"The model {self.model} sent an unreadable response.") from exc
        finally:
            LLM_REQUESTS.labels(self.provider, self.model, outcome).inc()
            LLM_DURATION.labels(self.provider, self.model).observe(
                time.perf_counter() - started, tracing.exemplar()
            )
        usage = _usage(response)
        LLM_TOKENS.labels(self.provider, self.model, "prompt").inc(usage.prompt_tokens)
        LLM_TOKENS.labels(self.provider, self.model, "completion").inc(usage.completion_tokens)
        return response


def _wire(message: ChatMessage) -> dict[str, Any]:
    """One message as the chat-completions API takes it (tool calls and results included)."""
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    if message.tool_calls:
        return {
            "role": message.role,
            "content": message.content or None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in message.tool_calls
            ],
        }
    return {"role": message.role, "content": message.content}


def _first_message(response: Any) -> Any:
    choices = getattr(response, "choices", None)
    if not choices:
        raise LLMError("The model's response has no choices (not a chat completion).")
    return getattr(choices[0], "message", None)


def _usage(response: Any) -> Usage:
    usage = getattr(response, "usage", None)
    return Usage() if usage is None else token_usage(usage)


def _strip_fences(text: str) -> str:
    """Models like to wrap JSON in ```json fences."""
    text = text.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.rsplit("```", 1)[0]
    return text.strip()


def _json_schema(schema: type[Any]) -> dict[str, Any]:
    """An inline JSON schema (no $refs) for a msgspec type, as tool parameters."""
    raw = msgspec.json.schema(schema)
    defs = raw.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return inline(defs[ref.rsplit("/", 1)[-1]])
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return inline(raw)  # type: ignore[no-any-return]
