"""A local, scriptable OpenAI-compatible HTTP server for tests.

Tests never reach the internet: LLM code is exercised with the *real*
``openai.AsyncOpenAI`` client whose ``base_url`` points at this server.

    async with FakeOpenAI() as fake:
        fake.enqueue(Reply.tool_call("lookup", {"q": "x"}), Reply.text("done"))
        async with openai.AsyncOpenAI(base_url=fake.base_url, api_key="test") as client:
            ...
        assert fake.requests[0]["model"] == "gpt-4o-mini"

The server is a tiny ASGI app served by uvicorn (h11) on ``127.0.0.1`` and a
free port, as a task in the caller's event loop. It serves
``POST /v1/chat/completions`` (plain JSON, or SSE when ``"stream": true``),
``GET /v1/models`` and ``GET /v1/models/{id}``. Every chat request body is
recorded in :attr:`FakeOpenAI.requests`, then answered with the next scripted
:class:`Reply` (or :data:`Responder` callable); once the script is empty the
:attr:`FakeOpenAI.default` answer is used (a plain assistant message ``"ok"``).

Token usage is deterministic: one token per whitespace-separated word (prompt:
the text of every message; completion: content plus tool-call names/arguments).

Tool-calling rounds are scripted with Responders that read what the client sent back:
:func:`tool_messages` gives a request's ``tool`` messages (the results of the calls the
fake model made), so a round can be built from the one before it::

    def round_two(request):
        last = tool_messages(request)[-1]["content"]
        return Reply.tool_call("calculator", {"instruction": f"{last} + 9"})

    fake.enqueue(Reply.tool_call("calculator", {"instruction": "17*23"}), round_two,
                 Reply.text("done"))

The root conftest lists this module in ``pytest_plugins``, so every test can
ask for the ``fake_openai`` fixture.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any, Self

import pytest_asyncio
import uvicorn

from switchboard.orchestrator import QuietServer

__all__ = [
    "FakeOpenAI",
    "Reply",
    "Responder",
    "StreamRecord",
    "ToolCall",
    "fake_openai",
    "tool_messages",
]

JSONObject = dict[str, Any]

# ASGI, spelled out so that nothing depends on uvicorn's private type module.
_Scope = Mapping[str, Any]
_Message = Mapping[str, Any]
_Receive = Callable[[], Awaitable[_Message]]
_Send = Callable[[_Message], Awaitable[None]]

DEFAULT_MODELS: tuple[str, ...] = ("gpt-4o-mini", "gpt-4o")
"""Model ids listed by ``GET /v1/models`` unless told otherwise."""

_JSON = "application/json"
_SSE = "text/event-stream; charset=utf-8"


# --------------------------------------------------------------------------- script


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCall:
    """One function call the fake model asks for.

    ``arguments`` is the JSON *string* sent on the wire (the model's raw output,
    which need not be valid JSON). ``id`` defaults to a unique ``call_<n>``.
    """

    name: str
    arguments: str = "{}"
    id: str | None = None

    @classmethod
    def of(
        cls, name: str, arguments: str | Mapping[str, Any] = "{}", *, id: str | None = None
    ) -> Self:
        """A call whose arguments may be given as a mapping (dumped to JSON)."""
        args = arguments if isinstance(arguments, str) else json.dumps(dict(arguments))
        return cls(name=name, arguments=args, id=id)


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """One scripted answer of the fake server. Build it with the class methods.

    Exactly one shape applies, in this order: ``body`` (sent verbatim),
    ``error`` (sent as ``{"error": error}`` with ``status``), or else a
    ``chat.completion`` with ``content`` and/or ``tool_calls``.
    ``delay`` seconds pass (without blocking the loop) before anything is sent.
    """

    content: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None
    """Defaults to ``"tool_calls"`` when there are tool calls, else ``"stop"``."""
    status: int = 200
    error: JSONObject | None = None
    body: bytes | None = None
    content_type: str = _JSON
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0
    chunk_delay: float = 0.0
    """Seconds between streamed chunks (``"stream": true``): a model generating tokens."""
    stream_usage: bool = True
    """False: ignore ``stream_options.include_usage``, as servers without stream usage do."""

    # -- successful completions

    @classmethod
    def text(cls, content: str, *, finish_reason: str = "stop") -> Self:
        """A plain assistant message: ``choices[0].message.content == content``."""
        return cls(content=content, finish_reason=finish_reason)

    @classmethod
    def structured(cls, value: Any) -> Self:
        """Structured output: the content is ``json.dumps(value)``."""
        return cls(content=json.dumps(value))

    @classmethod
    def tool_call(
        cls,
        name: str,
        arguments: str | Mapping[str, Any] = "{}",
        *,
        id: str | None = None,
        content: str | None = None,
    ) -> Self:
        """One tool call (``finish_reason="tool_calls"``); mapping arguments are JSON-dumped."""
        return cls(content=content, tool_calls=(ToolCall.of(name, arguments, id=id),))

    @classmethod
    def parallel_tool_calls(cls, *calls: ToolCall, content: str | None = None) -> Self:
        """Several parallel tool calls in one assistant message."""
        return cls(content=content, tool_calls=calls)

    # -- failures

    @classmethod
    def http_error(
        cls,
        status: int,
        message: str,
        *,
        type: str = "server_error",
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Self:
        """An HTTP error with an OpenAI-style body ``{"error": {message, type, param, code}}``."""
        error = {"message": message, "type": type, "param": param, "code": code}
        return cls(status=status, error=error, headers=tuple((headers or {}).items()))

    @classmethod
    def rate_limited(
        cls,
        *,
        retry_after: str | None = "0.01",
        message: str = "Rate limit reached for requests. Please try again later.",
    ) -> Self:
        """429 ``rate_limit_exceeded``; the SDK retries it, waiting ``retry-after`` seconds.

        Keep ``retry_after`` small but *positive*: the SDK ignores ``"0"`` and
        falls back to its own 0.5 s exponential backoff.
        """
        headers = {} if retry_after is None else {"retry-after": retry_after}
        return cls.http_error(
            429, message, type="requests", code="rate_limit_exceeded", headers=headers
        )

    @classmethod
    def server_error(
        cls,
        message: str = "The server had an error while processing your request.",
        *,
        status: int = 500,
    ) -> Self:
        """5xx ``server_error`` (retried by the SDK while it has retries left)."""
        return cls.http_error(status, message, type="server_error")

    @classmethod
    def bad_request(
        cls,
        message: str = "Invalid request.",
        *,
        param: str | None = None,
        code: str | None = None,
    ) -> Self:
        """400 ``invalid_request_error`` (never retried by the SDK)."""
        return cls.http_error(400, message, type="invalid_request_error", param=param, code=code)

    @classmethod
    def raw(
        cls,
        body: bytes | str,
        *,
        status: int = 200,
        content_type: str = "text/plain; charset=utf-8",
        headers: Mapping[str, str] | None = None,
    ) -> Self:
        """Garbage on purpose: ``body`` is sent verbatim with this status and content type."""
        data = body.encode() if isinstance(body, str) else body
        return cls(
            status=status,
            body=data,
            content_type=content_type,
            headers=tuple((headers or {}).items()),
        )

    # -- modifiers

    def delayed(self, seconds: float) -> Self:
        """The same reply, sent after ``seconds`` (a slow server)."""
        return replace(self, delay=seconds)

    def streamed(self, chunk_delay: float, *, usage: bool = True) -> Self:
        """The same reply, streamed one piece every ``chunk_delay`` seconds; ``usage`` False:
        no usage chunk even when asked (servers that do not send one)."""
        return replace(self, chunk_delay=chunk_delay, stream_usage=usage)

    def with_headers(self, headers: Mapping[str, str]) -> Self:
        """The same reply with extra response headers."""
        return replace(self, headers=(*self.headers, *headers.items()))


Responder = Callable[[JSONObject], Reply | Awaitable[Reply]]
"""A dynamic answer: gets the parsed request body, returns (or awaits to) a :class:`Reply`."""

Scripted = Reply | Responder


@dataclass(slots=True)
class StreamRecord:
    """What happened to one streamed answer (``FakeOpenAI.streams``, in request order).

    ``pieces`` counts the content pieces sent; ``disconnected`` is True when the client
    closed the HTTP stream before the last chunk (the server stopped generating there);
    ``done`` is set once the stream ended either way.
    """

    total: int
    pieces: int = 0
    disconnected: bool = False
    completed: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)


# --------------------------------------------------------------------------- helpers


def _words(text: str) -> int:
    return len(text.split())


def _text_of(content: Any) -> str:
    """The text in a message ``content``: a string, or a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, Mapping))
    return ""


def _prompt_tokens(request: Mapping[str, Any]) -> int:
    messages = request.get("messages")
    if not isinstance(messages, list):
        return 0
    total = 0
    for message in messages:
        if not isinstance(message, Mapping):
            continue
        total += _words(_text_of(message.get("content")))
        for call in message.get("tool_calls") or ():
            if isinstance(call, Mapping) and isinstance(call.get("function"), Mapping):
                function = call["function"]
                total += _words(str(function.get("name", "")))
                total += _words(str(function.get("arguments", "")))
    return total


def tool_messages(request: Mapping[str, Any]) -> list[JSONObject]:
    """The ``tool`` messages of a chat request, in order: each ``{"role": "tool",
    "tool_call_id": ..., "content": ...}`` a client sent back after the model's calls."""
    messages = request.get("messages")
    if not isinstance(messages, list):
        return []
    return [dict(m) for m in messages if isinstance(m, Mapping) and m.get("role") == "tool"]


def _pieces(text: str) -> list[str]:
    """Split ``text`` into stream deltas (a word plus its trailing space) that join back."""
    return re.findall(r"\s*\S+\s*|\s+", text) or [text]


def _encode(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _error_body(message: str, type_: str, code: str | None = None) -> bytes:
    return _encode({"error": {"message": message, "type": type_, "param": None, "code": code}})


# --------------------------------------------------------------------------- server


class FakeOpenAI:
    """A scriptable OpenAI-compatible server; use as ``async with FakeOpenAI() as fake:``.

    Attributes:
        requests: parsed JSON bodies of every ``POST /v1/chat/completions``, in order.
        request_headers: the matching request headers (lower-cased names).
        default: the answer once the script is empty (a Reply or a Responder).
        models: the ids listed by ``GET /v1/models``.
        responder_errors: exceptions raised by Responder callables (each answered
            with a non-retryable 500 so the test sees it).
    """

    def __init__(
        self,
        *,
        default: Scripted | None = None,
        models: Iterable[str] = DEFAULT_MODELS,
        shutdown_timeout: int = 5,
    ) -> None:
        self.default: Scripted = Reply.text("ok") if default is None else default
        self.models: list[str] = list(models)
        self.requests: list[JSONObject] = []
        self.request_headers: list[dict[str, str]] = []
        self.responder_errors: list[BaseException] = []
        self.streams: list[StreamRecord] = []
        self._script: deque[Scripted] = deque()
        self._shutdown_timeout = shutdown_timeout
        self._ids = itertools.count(1)
        self._server: QuietServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing: asyncio.Event | None = None
        self._arrived: asyncio.Condition | None = None
        self._port: int | None = None

    # -- script

    def enqueue(self, *replies: Scripted) -> None:
        """Append answers to the script; each request consumes the next one."""
        self._script.extend(replies)

    @property
    def pending(self) -> int:
        """How many scripted answers have not been used yet."""
        return len(self._script)

    # -- addresses

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeOpenAI is not running; use `async with FakeOpenAI()`")
        return self._port

    @property
    def url(self) -> str:
        """The server root, e.g. ``http://127.0.0.1:54321``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """What to pass as ``openai.AsyncOpenAI(base_url=...)``."""
        return f"{self.url}/v1"

    @property
    def last_request(self) -> JSONObject:
        if not self.requests:
            raise AssertionError("FakeOpenAI has received no chat completion request")
        return self.requests[-1]

    async def wait_for_requests(self, count: int) -> None:
        """Wait until at least ``count`` chat requests have arrived.

        Bound it with ``async with asyncio.timeout(...)`` in the caller.
        """
        if self._arrived is None:
            raise RuntimeError("FakeOpenAI is not running")
        arrived = self._arrived
        async with arrived:
            await arrived.wait_for(lambda: len(self.requests) >= count)

    # -- lifecycle

    async def start(self) -> None:
        """Bind a free port on 127.0.0.1 and return once the server is listening."""
        if self._task is not None:
            raise RuntimeError("FakeOpenAI is already started")
        self._closing = asyncio.Event()
        self._arrived = asyncio.Condition()
        config = uvicorn.Config(
            self._app,
            host="127.0.0.1",
            port=0,
            http="h11",
            ws="none",
            interface="asgi3",
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=self._shutdown_timeout,
        )
        server = self._server = QuietServer(config)
        task = self._task = asyncio.create_task(server.serve(), name="fake-openai-server")
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    await task  # surfaces the startup error, if any
                    raise RuntimeError("the fake OpenAI server exited before listening")
                await asyncio.sleep(0.005)
        self._port = int(server.servers[0].sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop serving; in-flight delayed replies are cut short with a 503."""
        task, server = self._task, self._server
        if task is None or server is None:
            return
        if self._closing is not None:
            self._closing.set()
        server.should_exit = True
        try:
            await task
        finally:
            self._task = self._server = None
            self._port = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- ASGI

    async def _app(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        if scope["type"] != "http":
            return
        method: str = scope["method"]
        path: str = scope["path"].rstrip("/")
        if path == "/v1/chat/completions":
            if method != "POST":
                await self._send(
                    send, 405, _error_body("Method not allowed.", "invalid_request_error")
                )
                return
            await self._chat_completions(scope, receive, send)
        elif path == "/v1/models" and method == "GET":
            data = [self._model(model) for model in self.models]
            await self._send(send, 200, _encode({"object": "list", "data": data}))
        elif path.startswith("/v1/models/") and method == "GET":
            model = path.removeprefix("/v1/models/")
            if model in self.models:
                await self._send(send, 200, _encode(self._model(model)))
            else:
                message = f"The model '{model}' does not exist"
                await self._send(
                    send, 404, _error_body(message, "invalid_request_error", "model_not_found")
                )
        else:
            message = f"Unknown request URL: {method} {scope['path']}"
            await self._send(
                send, 404, _error_body(message, "invalid_request_error", "unknown_url")
            )

    @staticmethod
    def _model(model: str) -> JSONObject:
        return {
            "id": model,
            "object": "model",
            "created": 1_700_000_000,
            "owned_by": "switchboard-tests",
        }

    async def _chat_completions(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        raw = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            raw += message.get("body", b"")
            if not message.get("more_body", False):
                break
        try:
            request = json.loads(raw)
        except ValueError as err:
            await self._send(
                send,
                400,
                _error_body(
                    f"We could not parse the JSON body of your request: {err}",
                    "invalid_request_error",
                ),
            )
            return
        if not isinstance(request, dict):
            await self._send(
                send,
                400,
                _error_body("The request body must be a JSON object.", "invalid_request_error"),
            )
            return

        self.requests.append(request)
        self.request_headers.append(
            {
                name.decode("latin-1").lower(): value.decode("latin-1")
                for name, value in scope["headers"]
            }
        )
        if self._arrived is not None:
            async with self._arrived:
                self._arrived.notify_all()

        reply = await self._next_reply(request)
        if reply.delay > 0 and not await self._wait(reply.delay, receive):
            if self._closing is not None and self._closing.is_set():
                await self._send(
                    send,
                    503,
                    _error_body("The fake OpenAI server is shutting down.", "server_error"),
                    headers=(("x-should-retry", "false"),),
                )
            return  # else: the client hung up; there is nobody to answer
        await self._answer(request, reply, send, receive)

    async def _next_reply(self, request: JSONObject) -> Reply:
        scripted = self._script.popleft() if self._script else self.default
        if isinstance(scripted, Reply):
            return scripted
        try:
            result = scripted(request)
            if not isinstance(result, Reply):
                result = await result
        except Exception as err:
            self.responder_errors.append(err)
            return Reply.http_error(
                500,
                f"fake_openai responder raised {err!r}",
                type="fake_openai_error",
                headers={"x-should-retry": "false"},
            )
        return result

    async def _wait(self, delay: float, receive: _Receive) -> bool:
        """Sleep ``delay`` seconds; False if the client hung up or the server is closing."""

        async def disconnected() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        assert self._closing is not None
        sleep = asyncio.ensure_future(asyncio.sleep(delay))
        waiters = {
            sleep,
            asyncio.ensure_future(self._closing.wait()),
            asyncio.ensure_future(disconnected()),
        }
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)
        return sleep.done() and not sleep.cancelled()

    async def _answer(
        self, request: JSONObject, reply: Reply, send: _Send, receive: _Receive
    ) -> None:
        if reply.body is not None:
            await self._send(
                send,
                reply.status,
                reply.body,
                content_type=reply.content_type,
                headers=reply.headers,
            )
            return
        if reply.error is not None:
            await self._send(
                send, reply.status, _encode({"error": reply.error}), headers=reply.headers
            )
            return

        n = next(self._ids)
        completion_id = f"chatcmpl-fake{n:06d}"
        model = request.get("model")
        model = model if isinstance(model, str) else "fake-model"
        calls = [
            {
                "id": call.id or f"call_fake{n:06d}_{i}",
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for i, call in enumerate(reply.tool_calls)
        ]
        finish_reason = reply.finish_reason or ("tool_calls" if calls else "stop")
        completion_tokens = _words(reply.content or "") + sum(
            _words(call.name) + _words(call.arguments) for call in reply.tool_calls
        )
        prompt_tokens = _prompt_tokens(request)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
        common = {
            "id": completion_id,
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_fake",
            "service_tier": "default",
        }
        if request.get("stream") is True:
            await self._stream(send, reply, common, calls, finish_reason, usage, request, receive)
            return

        message: JSONObject = {
            "role": "assistant",
            "content": reply.content,
            "refusal": None,
            "annotations": [],
        }
        if calls:
            message["tool_calls"] = calls
        body = {
            **common,
            "object": "chat.completion",
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
            ],
            "usage": usage,
        }
        await self._send(send, reply.status, _encode(body), headers=reply.headers)

    async def _stream(
        self,
        send: _Send,
        reply: Reply,
        common: JSONObject,
        calls: list[JSONObject],
        finish_reason: str,
        usage: JSONObject,
        request: JSONObject,
        receive: _Receive,
    ) -> None:
        options = request.get("stream_options")
        include_usage = (
            reply.stream_usage
            and isinstance(options, Mapping)
            and options.get("include_usage") is True
        )

        def chunk(delta: JSONObject, finish: str | None = None) -> JSONObject:
            body: JSONObject = {
                **common,
                "object": "chat.completion.chunk",
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
            if include_usage:
                body["usage"] = None
            return body

        chunks = [chunk({"role": "assistant", "content": "", "refusal": None})]
        if reply.content:
            chunks += [chunk({"content": piece}) for piece in _pieces(reply.content)]
        for index, call in enumerate(calls):
            head = {**call, "index": index, "function": {**call["function"], "arguments": ""}}
            chunks.append(chunk({"tool_calls": [head]}))
            args = call["function"]["arguments"]
            chunks.append(
                chunk({"tool_calls": [{"index": index, "function": {"arguments": args}}]})
            )
        chunks.append(chunk({}, finish_reason))
        if include_usage:
            chunks.append(
                {**common, "object": "chat.completion.chunk", "choices": [], "usage": usage}
            )

        headers = [(b"content-type", _SSE.encode()), (b"cache-control", b"no-cache")]
        headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers]
        record = StreamRecord(total=len(_pieces(reply.content)) if reply.content else 0)
        self.streams.append(record)
        try:
            await send({"type": "http.response.start", "status": reply.status, "headers": headers})
            for body in chunks:
                if reply.chunk_delay > 0 and not await self._wait(reply.chunk_delay, receive):
                    # the client hung up mid-answer (or the server is closing): stop generating
                    record.disconnected = self._closing is None or not self._closing.is_set()
                    return
                await send(
                    {
                        "type": "http.response.body",
                        "body": b"data: " + _encode(body) + b"\n\n",
                        "more_body": True,
                    }
                )
                if body["choices"] and "content" in body["choices"][0]["delta"]:
                    record.pieces += bool(body["choices"][0]["delta"]["content"])
            await send(
                {"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False}
            )
            record.completed = True
        finally:
            record.done.set()

    @staticmethod
    async def _send(
        send: _Send,
        status: int,
        body: bytes,
        *,
        content_type: str = _JSON,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        raw_headers = [
            (b"content-type", content_type.encode("latin-1")),
            (b"content-length", str(len(body)).encode()),
            (b"x-request-id", f"req_fake_{time.monotonic_ns()}".encode()),
        ]
        raw_headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})


# --------------------------------------------------------------------------- fixture


@pytest_asyncio.fixture
async def fake_openai() -> AsyncIterator[FakeOpenAI]:
    """A started :class:`FakeOpenAI` (default answer ``"ok"``), stopped after the test."""
    async with FakeOpenAI() as fake:
        yield fake
