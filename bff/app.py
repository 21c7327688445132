"""The HTTP API (Litestar): chat, live progress over SSE, agents, history, health, docs.

Every chat request gets a correlation id ``conv-{userID}-{uuid4}`` here,
returned in the body and the ``X-Correlation-Id`` header and bound into every
log line. The user id comes from the credential, never from the body. Errors
are ``application/problem+json`` with the error code and correlation id;
nothing leaks a stack trace. A client that disconnects cancels its
conversation all the way down to the agents.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import structlog
import swagger_ui_bundle
from litestar import Litestar, Request, Response, get, post
from litestar.background_tasks import BackgroundTask
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException, ValidationException
from litestar.file_system import BaseLocalFileSystem
from litestar.openapi import OpenAPIConfig
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Components, SecurityScheme
from litestar.params import FromPath, JSONBody
from litestar.response import File, ServerSentEvent, ServerSentEventMessage
from litestar.static_files import create_static_files_router
from litestar.types import PathType
from litestar.types.file_types import FileInfo
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from switchboard.orchestrator import (
    MAX_MESSAGE_CHARS,
    AgentInfo,
    ConversationReply,
    ErrorCode,
    HistoryReply,
    OverloadedError,
    ProgressEvent,
    RemoteError,
    SwitchboardError,
    encode,
    encode_event,
    is_safe_token,
    new_correlation_id,
)
from switchboard.orchestrator.metrics import HTTP_DURATION, HTTP_REJECTED, HTTP_REQUESTS

from .auth import ApiKeys, AuthRateLimiter, Unauthorized
from .gateway import Gateway
from .limits import InFlightLimiter, Slot
from .openapi import ContractJsonRenderPlugin, ContractSwaggerRenderPlugin
from .problems import PROBLEM_MEDIA_TYPE, Problem, problem
from .schemas import ChatRequest

__all__ = ["BffState", "create_app", "metrics_middleware"]

T = TypeVar("T")

log = structlog.get_logger("switchboard.bff")

STATIC = Path(__file__).parent / "static"
FAVICON = "<link rel='icon' type='image/svg+xml' href='/static/favicon.svg'>"
#: A chat body may carry a message of MAX_MESSAGE_CHARS however its client escapes it: a
#: JSON encoder that writes ASCII only (Python's json, so ``requests``) takes 6 bytes per
#: character (\uXXXX), 12 for one outside the BMP. Plus room for the other fields.
MAX_BODY = 12 * MAX_MESSAGE_CHARS + 64 * 1024


@dataclass
class BffState:
    """Everything the handlers need (one per process)."""

    gateway: Gateway
    keys: ApiKeys
    limiter: InFlightLimiter
    auth_limiter: AuthRateLimiter
    ready: Callable[[], dict[str, bool]]
    version: str = "0.1.0"


class ClientGone(Exception):
    """The HTTP client disconnected before the answer was ready."""


def _client(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


async def authenticate(request: Request[Any, Any, Any], bff: NamedDependency[BffState]) -> str:
    """The caller's user id, from ``Authorization: Bearer <key>`` (dependency ``user``)."""
    client = _client(request)
    wait = bff.auth_limiter.blocked(client)
    if wait > 0:
        HTTP_REJECTED.labels("auth_rate_limit").inc()
        raise _TooManyFailures(wait)
    try:
        return bff.keys.authenticate(request.headers.get("authorization"))
    except Unauthorized:
        bff.auth_limiter.failed(client)
        HTTP_REJECTED.labels("unauthorized").inc()
        raise


class _TooManyFailures(Exception):
    def __init__(self, wait: float) -> None:
        super().__init__("Too many failed authentications from this address; wait and retry.")
        self.wait = wait


async def _until_disconnected(request: Request[Any, Any, Any], work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` in this task; cancel it if the client goes away first.

    One watcher task listens for ``http.disconnect`` and cancels the handler's own task;
    the cancellation travels down (the requester's cancel notice reaches the agents).
    """
    current = asyncio.current_task()
    assert current is not None
    receive = request.receive
    disconnected = finished = False

    async def watch() -> None:
        nonlocal disconnected
        while (await receive())["type"] != "http.disconnect":
            pass
        if not finished:  # too late to matter once the work is done
            disconnected = True
            current.cancel()

    watcher = asyncio.ensure_future(watch())
    try:
        return await work
    except asyncio.CancelledError:
        if not disconnected:
            raise
        current.uncancel()
        raise ClientGone from None
    finally:
        finished = True
        if not watcher.done():
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher


def _error(exc: SwitchboardError, correlation_id: str | None) -> Response[Any]:
    status = None
    if isinstance(exc, RemoteError) and exc.code is ErrorCode.OVERLOADED:
        status = 503  # the orchestrator is overloaded, not this caller
    return problem(exc.code, str(exc), status=status, correlation_id=correlation_id)


def _admit(bff: BffState, user: str) -> Slot | Response[Any]:
    """A place for the request, or the 429 that refuses it."""
    try:
        return bff.limiter.acquire(user)
    except OverloadedError as exc:
        reason = "user_limit" if "You already have" in str(exc) else "instance_limit"
        HTTP_REJECTED.labels(reason).inc()
        return problem(ErrorCode.OVERLOADED, str(exc))


# -- handlers --------------------------------------------------------------------------------


def _problems(**described: str) -> dict[int, ResponseSpec]:
    """OpenAPI documentation of the problem responses a route can give."""
    return {
        int(code[1:]): ResponseSpec(
            data_container=Problem, description=text, media_type=PROBLEM_MEDIA_TYPE
        )
        for code, text in described.items()
    }


_AUTH = {"s401": "Missing or invalid API key.", "s429": "Too many requests or failed logins."}
_CHAT = {
    **_AUTH,
    "s400": "Invalid body.",
    "s409": "Cancelled (ai.cancel.<correlation_id>) before it was answered.",
    "s413": "Body too large.",
    "s499": "Client went away.",
    "s500": "Internal error.",
    "s502": "An agent or the LLM failed.",
    "s503": "Orchestrator unavailable or restarting.",
    "s504": "Timed out.",
}


@post(
    "/v1/chat",
    summary="Ask and wait for the answer",
    tags=["chat"],
    status_code=200,
    responses=_problems(**_CHAT),
)
async def chat(
    request: Request[Any, Any, Any],
    data: JSONBody[ChatRequest],
    bff: NamedDependency[BffState],
    user: NamedDependency[str],
) -> Response[ConversationReply]:
    """The answer as JSON: correlation id, answer, per-step results and timings."""
    correlation_id = new_correlation_id(user)
    with structlog.contextvars.bound_contextvars(correlation_id=correlation_id, user_id=user):
        slot = _admit(bff, user)
        if not isinstance(slot, Slot):
            return slot
        try:
            reply = await _until_disconnected(
                request, bff.gateway.chat(user, data, correlation_id=correlation_id)
            )
        except ClientGone:
            log.info("client disconnected; conversation cancelled")
            return problem(
                ErrorCode.BAD_REQUEST,
                "The client went away.",
                status=499,
                correlation_id=correlation_id,
            )
        except SwitchboardError as exc:
            log.info("chat failed", code=exc.code.value, error=str(exc))
            return _error(exc, correlation_id)
        finally:
            slot.release()
    return Response(reply, headers={"X-Correlation-Id": correlation_id})


@post(
    "/v1/chat/stream",
    summary="Ask and follow the answer as it is built (SSE)",
    tags=["chat"],
    media_type="text/event-stream",
    status_code=200,
    responses=_problems(**_CHAT),
)
async def chat_stream(
    data: JSONBody[ChatRequest], bff: NamedDependency[BffState], user: NamedDependency[str]
) -> Response[Any]:
    """Server-Sent Events: ``planned``, ``step_started``, ``step_progress``,
    ``step_finished``, ``step_failed``, ``answered`` (ProgressEvent data), then one ``reply``
    event with the whole ConversationReply -- or an ``error`` event with a problem body."""
    correlation_id = new_correlation_id(user)
    slot = _admit(bff, user)
    if not isinstance(slot, Slot):
        return slot

    async def events() -> AsyncIterator[ServerSentEventMessage]:
        with structlog.contextvars.bound_contextvars(correlation_id=correlation_id, user_id=user):
            try:
                async for item in bff.gateway.stream(user, data, correlation_id=correlation_id):
                    if isinstance(item, ProgressEvent):
                        yield ServerSentEventMessage(
                            event=item.kind, id=str(item.seq), data=encode_event(item).decode()
                        )
                    else:
                        yield ServerSentEventMessage(event="reply", data=encode(item).decode())
            except SwitchboardError as exc:
                body = _error(exc, correlation_id).content
                yield ServerSentEventMessage(event="error", data=bytes(body).decode())
            finally:
                slot.release()

    stream = events()
    # A client that hangs up before the stream starts: the generator never runs, nor its
    # ``finally``. The response's background task gives the slot back then; if sending
    # fails outright, the slot goes back when the dropped generator is collected.
    weakref.finalize(stream, slot.release)
    return ServerSentEvent(
        stream,
        headers={"X-Correlation-Id": correlation_id, "Cache-Control": "no-store"},
        background=BackgroundTask(slot.release),
    )


@get(
    "/v1/agents",
    summary="The live agent catalog",
    tags=["agents"],
    responses=_problems(**_AUTH, s503="Orchestrator unavailable.", s504="Timed out."),
)
async def list_agents(
    bff: NamedDependency[BffState], user: NamedDependency[str]
) -> Response[list[AgentInfo]]:
    correlation_id = new_correlation_id(user)
    try:
        agents = await bff.gateway.agents(correlation_id)
    except SwitchboardError as exc:
        return _error(exc, correlation_id)
    return Response(agents)


@get(
    "/v1/conversations/{conversation_id:str}",
    summary="Your own conversation history",
    tags=["conversations"],
    responses=_problems(
        **_AUTH,
        s404="No such conversation (or not yours).",
        s503="Orchestrator unavailable.",
        s504="Timed out.",
    ),
)
async def conversation(
    conversation_id: FromPath[str], bff: NamedDependency[BffState], user: NamedDependency[str]
) -> Response[HistoryReply]:
    correlation_id = new_correlation_id(user)
    if not is_safe_token(conversation_id) or len(conversation_id) > 200:
        return problem(ErrorCode.NOT_FOUND, "No such conversation.", correlation_id=correlation_id)
    try:
        history = await bff.gateway.history(user, conversation_id, correlation_id=correlation_id)
    except SwitchboardError as exc:
        return _error(exc, correlation_id)
    if not history.turns:  # another user's conversation looks exactly like a missing one
        return problem(ErrorCode.NOT_FOUND, "No such conversation.", correlation_id=correlation_id)
    return Response(history)


@get("/healthz", summary="Alive", tags=["operations"], include_in_schema=True)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get(
    "/readyz",
    summary="Connected to NATS and serving",
    tags=["operations"],
    responses={
        503: ResponseSpec(data_container=dict[str, Any], description="Not ready (see checks).")
    },
)
async def readyz(bff: NamedDependency[BffState]) -> Response[dict[str, Any]]:
    checks = bff.ready()
    ready = all(checks.values())
    return Response(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )


@get("/metrics", summary="Prometheus metrics", tags=["operations"], media_type=CONTENT_TYPE_LATEST)
async def metrics() -> Response[bytes]:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@get("/", include_in_schema=False)
async def index() -> File:
    return File(
        STATIC / "index.html",
        content_disposition_type="inline",
        media_type="text/html; charset=utf-8",
    )


# -- errors ----------------------------------------------------------------------------------


def _validation(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    items = exc.extra if isinstance(exc.extra, list) else []
    details = "; ".join(
        f"{item.get('message', '')}" + (f" (at {item['key']})" if item.get("key") else "")
        for item in items
        if isinstance(item, dict)
    )
    return problem(ErrorCode.BAD_REQUEST, details or str(exc.detail))


def _http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    code = {
        401: ErrorCode.UNAUTHORIZED,
        403: ErrorCode.FORBIDDEN,
        404: ErrorCode.NOT_FOUND,
        413: ErrorCode.TOO_LARGE,
        429: ErrorCode.OVERLOADED,
    }.get(status, ErrorCode.BAD_REQUEST if status < 500 else ErrorCode.INTERNAL)
    detail = str(exc.detail) if status < 500 else "Internal error."
    return problem(code, detail, status=status)


def _undecodable(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Litestar's body decoding lets these through: a body that is not UTF-8, or nested
    too deeply to parse. They are the client's mistakes, never a 500."""
    if isinstance(exc, RecursionError):
        return problem(ErrorCode.BAD_REQUEST, "The JSON body is nested too deeply.")
    return problem(ErrorCode.BAD_REQUEST, "The body is not valid UTF-8 JSON.")


def _unauthorized(request: Request[Any, Any, Any], exc: Unauthorized) -> Response[Any]:
    return problem(ErrorCode.UNAUTHORIZED, str(exc))


def _too_many(request: Request[Any, Any, Any], exc: _TooManyFailures) -> Response[Any]:
    return problem(
        ErrorCode.OVERLOADED, str(exc), headers={"Retry-After": str(max(1, round(exc.wait)))}
    )


def _switchboard(request: Request[Any, Any, Any], exc: SwitchboardError) -> Response[Any]:
    return _error(exc, None)


def _internal(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error in the HTTP API", path=request.url.path, exc_info=exc)
    return problem(ErrorCode.INTERNAL, "Internal error; the server's logs have the details.")


# -- the app ---------------------------------------------------------------------------------


def metrics_middleware(app: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """ASGI wrapper counting every HTTP request by route template, method and status."""

    async def counted(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def capture(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, capture)
        finally:
            route = scope.get("path_template") or "unmatched"
            HTTP_REQUESTS.labels(route, scope["method"], str(status)).inc()
            HTTP_DURATION.labels(route, scope["method"]).observe(time.perf_counter() - started)

    return counted


class _LocalFiles(BaseLocalFileSystem):
    """Local files, where a path no file can have (a NUL byte) is not found, not a 500."""

    async def info(self, path: PathType, **kwargs: Any) -> FileInfo:
        if "\x00" in str(path):
            raise FileNotFoundError(path)
        return await super().info(path, **kwargs)


def create_app(bff: BffState) -> Litestar:
    """The Litestar application for one BFF process."""
    docs_assets = create_static_files_router(
        path="/docs-assets",
        directories=[swagger_ui_bundle.swagger_ui_path],
        file_system=_LocalFiles(),
        include_in_schema=False,
        name="docs-assets",
    )
    static = create_static_files_router(
        path="/static",
        directories=[STATIC],
        file_system=_LocalFiles(),
        include_in_schema=False,
        name="static",
    )
    openapi = OpenAPIConfig(
        title="Switchboard",
        version=bff.version,
        description="Correlation-routed multi-agent orchestration over NATS.",
        path="/docs",
        render_plugins=[
            ContractSwaggerRenderPlugin(
                path="/",
                favicon=FAVICON,
                js_url="/docs-assets/swagger-ui-bundle.js",
                css_url="/docs-assets/swagger-ui.css",
                standalone_preset_js_url="/docs-assets/swagger-ui-standalone-preset.js",
            ),
            ContractJsonRenderPlugin(path="/openapi.json"),
        ],
        components=Components(
            security_schemes={
                "bearer": SecurityScheme(
                    type="http", scheme="bearer", description="API key (none in local mode)"
                ),
            }
        ),
        security=[{"bearer": []}] if bff.keys.enabled else None,
    )
    user = Provide(authenticate)
    return Litestar(
        route_handlers=[
            chat,
            chat_stream,
            list_agents,
            conversation,
            healthz,
            readyz,
            metrics,
            index,
            static,
            docs_assets,
        ],
        dependencies={"bff": Provide(lambda: bff, sync_to_thread=False), "user": user},
        exception_handlers={
            ValidationException: _validation,
            HTTPException: _http,
            Unauthorized: _unauthorized,
            UnicodeError: _undecodable,
            RecursionError: _undecodable,
            _TooManyFailures: _too_many,
            SwitchboardError: _switchboard,
            Exception: _internal,
        },
        openapi_config=openapi,
        request_max_body_size=MAX_BODY,
        signature_namespace={"BffState": BffState, "ChatRequest": ChatRequest},
        debug=False,
        logging_config=None,
    )
