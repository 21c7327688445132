"""The one mapping from Switchboard's error vocabulary to HTTP: RFC 9457 problem details."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Response

from switchboard.orchestrator import ErrorCode

__all__ = ["PROBLEM_MEDIA_TYPE", "Problem", "problem", "status_for"]

PROBLEM_MEDIA_TYPE = "application/problem+json"

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
    return _STATUS.get(code, 500)


def problem(
    code: ErrorCode,
    detail: str,
    *,
    status: int | None = None,
    correlation_id: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response[Any]:
    """A problem+json response for an error ``code`` (no stack trace, ever)."""
    status = status or status_for(code)
    body = Problem(
        type=f"urn:switchboard:error:{code.value}",
        title=_TITLES.get(code, "Error"),
        status=status,
        detail=detail,
        code=code.value,
        correlation_id=correlation_id,
    )
    all_headers = dict(headers or {})
    if correlation_id:
        all_headers["X-Correlation-Id"] = correlation_id
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
