"""Every HTTP status the BFF answers with is decided here.

Switchboard's errors carry a wire code (``ErrorCode``); this module maps each
code to its HTTP status and writes the RFC 9457 problem body, with the headers
that go with a status (``Retry-After`` on 429 and 503, ``WWW-Authenticate`` on
401). The few answers that are not a plain code's status are decided here too:
an overloaded orchestrator (503, not the caller's 429), a client that went away
(499), an answer too large to deliver (502: the request was fine, what came back was
not; 413 is for requests), an error Litestar raised with a status of its own (404, 405, 413...), and
readiness. The routes document the statuses they give with
:func:`problem_responses`, so the OpenAPI document lists what this module
decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from litestar import Response
from litestar.openapi.datastructures import ResponseSpec

from switchboard.orchestrator import ErrorCode, OverloadedError, RemoteError, SwitchboardError

__all__ = [
    "AGENTS_PROBLEMS",
    "AUTH_PROBLEMS",
    "CHAT_PROBLEMS",
    "CLIENT_GONE",
    "HISTORY_PROBLEMS",
    "METHOD_NOT_ALLOWED",
    "NOT_READY",
    "PROBLEM_MEDIA_TYPE",
    "Problem",
    "client_gone",
    "method_not_allowed",
    "problem",
    "problem_for",
    "problem_for_status",
    "problem_responses",
    "ready_status",
    "status_for",
]

PROBLEM_MEDIA_TYPE = "application/problem+json"

#: nginx's "client closed request": the client went away before its answer was ready.
CLIENT_GONE = 499
#: A route asked with a method it does not serve: the one status with no wire code, as no
#: NATS request has a method; its problem's code is ``method_not_allowed``.
METHOD_NOT_ALLOWED = 405
#: ``/readyz`` when a check fails: load balancers take the replica out of rotation.
NOT_READY = 503

_STATUS: dict[ErrorCode, int] = {
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.TOO_LARGE: 413,
    ErrorCode.OVERLOADED: 429,
    ErrorCode.INTERNAL: 500,
    ErrorCode.AGENT_ERROR: 502,
    ErrorCode.LLM_ERROR: 502,
    ErrorCode.NO_RESPONDERS: 503,
    ErrorCode.SHUTTING_DOWN: 503,
    ErrorCode.TIMEOUT: 504,
    ErrorCode.CANCELLED: 409,
    # An agent's call to another agent was refused: the request was fine, an agent was not.
    ErrorCode.CALL_CYCLE: 502,
    ErrorCode.CALL_DEPTH: 502,
    ErrorCode.CALL_BUDGET: 502,
    ErrorCode.CALL_FORBIDDEN: 502,
}

#: The code of an error Litestar raised with a status of its own (routing, body size).
_CODE: dict[int, ErrorCode] = {
    401: ErrorCode.UNAUTHORIZED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    413: ErrorCode.TOO_LARGE,
    429: ErrorCode.OVERLOADED,
}

_TITLES: dict[ErrorCode, str] = {
    ErrorCode.BAD_REQUEST: "Bad request",
    ErrorCode.UNAUTHORIZED: "Unauthorized",
    ErrorCode.FORBIDDEN: "Forbidden",
    ErrorCode.NOT_FOUND: "Not found",
    ErrorCode.TOO_LARGE: "Request too large",
    ErrorCode.OVERLOADED: "Too many requests",
    ErrorCode.INTERNAL: "Internal error",
    ErrorCode.AGENT_ERROR: "An agent failed",
    ErrorCode.LLM_ERROR: "The language model failed",
    ErrorCode.NO_RESPONDERS: "Service unavailable",
    ErrorCode.SHUTTING_DOWN: "Service restarting",
    ErrorCode.TIMEOUT: "Timed out",
    ErrorCode.CANCELLED: "Cancelled",
    ErrorCode.CALL_CYCLE: "An agent call would loop",
    ErrorCode.CALL_DEPTH: "Agent calls nested too deep",
    ErrorCode.CALL_BUDGET: "Agent call budget spent",
    ErrorCode.CALL_FORBIDDEN: "Agent call not declared",
}


class Problem(msgspec.Struct, kw_only=True):
    """An error response body (``application/problem+json``)."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    correlation_id: str | None = None


def status_for(code: ErrorCode) -> int:
    """The HTTP status of an error code (500 for a code this version does not know)."""
    return _STATUS.get(code, 500)


def problem(
    code: ErrorCode,
    detail: str,
    *,
    status: int | None = None,
    correlation_id: str | None = None,
    headers: dict[str, str] | None = None,
    retry_after: float | None = None,
    title: str | None = None,
) -> Response[Any]:
    """A problem+json response for an error ``code`` (no stack trace, ever).

    ``status`` and ``title`` override the code's own (only this module's deciders pass
    them);
    ``retry_after`` is the seconds a refused caller should wait (at least 1).
    """
    status = status or status_for(code)
    body = Problem(
        type=f"urn:switchboard:error:{code.value}",
        title=title or _TITLES.get(code, "Error"),
        status=status,
        detail=detail,
        code=code.value,
        correlation_id=correlation_id,
    )
    all_headers = dict(headers or {})
    if correlation_id:
        all_headers["X-Correlation-Id"] = correlation_id
    if retry_after is not None:
        all_headers["Retry-After"] = str(max(1, round(retry_after)))
    if code is ErrorCode.OVERLOADED or status == 503:
        all_headers.setdefault("Retry-After", "1")
    if status == 401:
        all_headers.setdefault("WWW-Authenticate", 'Bearer realm="switchboard"')
    return Response(
        content=msgspec.json.encode(body),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=all_headers,
    )


def problem_for(exc: SwitchboardError, *, correlation_id: str | None = None) -> Response[Any]:
    """The answer to a Switchboard error: its code's status, but 503 when the
    orchestrator said it is overloaded (the service is, not this caller), 502 when it
    said ``too_large`` (the answer is over the limit: the caller's request was fine), and
    the wait an :class:`OverloadedError` knows in ``Retry-After``."""
    status = title = None
    if isinstance(exc, RemoteError) and exc.code is ErrorCode.OVERLOADED:
        status = 503
    elif isinstance(exc, RemoteError) and exc.code is ErrorCode.TOO_LARGE:
        status, title = 502, "Answer too large"
    retry_after = exc.retry_after if isinstance(exc, OverloadedError) else None
    return problem(
        exc.code,
        str(exc),
        status=status,
        correlation_id=correlation_id,
        retry_after=retry_after,
        title=title,
    )


def problem_for_status(status: int, detail: str) -> Response[Any]:
    """The answer to an error Litestar raised with its own ``status`` (no route, wrong
    method, body too large...): the same status, with the code that matches it. A
    5xx never shows its detail."""
    code = _CODE.get(status, ErrorCode.BAD_REQUEST if status < 500 else ErrorCode.INTERNAL)
    return problem(code, detail if status < 500 else "Internal error.", status=status)


def method_not_allowed(method: str, path: str, allowed: str) -> Response[Any]:
    """405 with the ``Allow`` header (RFC 9110) and a sentence that names the methods."""
    use = " or ".join(m.strip() for m in allowed.split(",") if m.strip() and m.strip() != "OPTIONS")
    body = Problem(
        type="urn:switchboard:error:method_not_allowed",
        title="Method not allowed",
        status=METHOD_NOT_ALLOWED,
        detail=f"{method} is not allowed on {path}" + (f"; use {use}." if use else "."),
        code="method_not_allowed",
    )
    return Response(
        content=msgspec.json.encode(body),
        status_code=METHOD_NOT_ALLOWED,
        media_type=PROBLEM_MEDIA_TYPE,
        headers={"Allow": allowed} if allowed else {},
    )


def client_gone(correlation_id: str) -> Response[Any]:
    """The answer (nobody reads it, but the access log and metrics do) to a client that
    disconnected before its conversation was answered."""
    return problem(
        ErrorCode.BAD_REQUEST,
        "The client went away.",
        status=CLIENT_GONE,
        correlation_id=correlation_id,
    )


def ready_status(ready: bool) -> int:
    """The status of ``/readyz``: 200, or :data:`NOT_READY` when a check fails."""
    return 200 if ready else NOT_READY


#: The problems every authenticated route can give.
AUTH_PROBLEMS: Mapping[int, str] = {
    401: "Missing or invalid API key.",
    429: "Too many requests or failed logins.",
}
#: The problems of the chat routes.
CHAT_PROBLEMS: Mapping[int, str] = {
    **AUTH_PROBLEMS,
    400: "Invalid body.",
    409: "Cancelled (ai.cancel.<correlation_id>) before it was answered.",
    413: "Body too large.",
    CLIENT_GONE: "Client went away.",
    500: "Internal error.",
    502: "An agent or the LLM failed, or the answer is over the limit (too_large).",
    503: "Orchestrator unavailable or restarting.",
    504: "Timed out.",
}

#: The problems of ``GET /v1/agents``.
AGENTS_PROBLEMS: Mapping[int, str] = {
    **AUTH_PROBLEMS,
    503: "Orchestrator unavailable.",
    504: "Timed out.",
}
#: The problems of ``GET /v1/conversations/{id}``.
HISTORY_PROBLEMS: Mapping[int, str] = {
    **AUTH_PROBLEMS,
    404: "No such conversation (or not yours).",
    503: "Orchestrator unavailable.",
    504: "Timed out.",
}


def problem_responses(described: Mapping[int, str]) -> dict[int, ResponseSpec]:
    """OpenAPI documentation of the problem responses a route can give."""
    return {
        status: ResponseSpec(
            data_container=Problem, description=text, media_type=PROBLEM_MEDIA_TYPE
        )
        for status, text in described.items()
    }
