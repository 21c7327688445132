"""The exception handlers: every exception that leaves a route becomes a problem body.

This is the BFF's one boundary for exceptions: Switchboard's own errors (the
tree: a bad credential, an overload, a failed request), Litestar's (validation,
routing, body size) and the few a body can slip past Litestar's decoding. The
statuses are :mod:`~switchboard.bff.problems`' decision; nothing here leaks a
stack trace.
"""

from __future__ import annotations

from typing import Any

import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap

from switchboard.orchestrator import MAX_MESSAGE_CHARS, ErrorCode, SwitchboardError, invalid_field

from .problems import (
    METHOD_NOT_ALLOWED,
    method_not_allowed,
    problem,
    problem_for,
    problem_for_status,
)
from .schemas import MAX_BODY

__all__ = ["exception_handlers"]

log = structlog.get_logger("switchboard.bff")


def _validation(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    # Worded as over NATS (invalid_field): "`$.message` is too long: at most 32000 characters."
    items = exc.extra if isinstance(exc.extra, list) else []
    details = " ".join(
        invalid_field(str(item.get("message", "")), _path(item.get("key")))
        for item in items
        if isinstance(item, dict)
    )
    return problem(ErrorCode.BAD_REQUEST, details or str(exc.detail))


def _path(key: object) -> str:
    """The JSON path of Litestar's ``key``: a body field, or ``data`` (the body itself)."""
    return f"$.{key}" if key and key != _BODY else "$"


#: Litestar's name of the request body (the routes' ``data`` parameter).
_BODY = "data"


def _http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if exc.status_code == METHOD_NOT_ALLOWED:
        allowed = (exc.headers or {}).get("allow", "")
        return method_not_allowed(request.method, request.url.path, allowed)
    if exc.status_code == TOO_LARGE:
        return problem(
            ErrorCode.TOO_LARGE,
            f"The request body is larger than {MAX_BODY:,} bytes, the limit "
            f"(a message may have at most {MAX_MESSAGE_CHARS} characters).",
            status=TOO_LARGE,
        )
    return problem_for_status(exc.status_code, str(exc.detail))


#: Litestar's status for a body over ``request_max_body_size``.
TOO_LARGE = 413


def _undecodable(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Litestar's body decoding lets these through: a body that is not UTF-8, or nested
    too deeply to parse. They are the client's mistakes, never a 500."""
    if isinstance(exc, RecursionError):
        return problem(ErrorCode.BAD_REQUEST, "The JSON body is nested too deeply.")
    return problem(ErrorCode.BAD_REQUEST, "The body is not valid UTF-8 JSON.")


def _switchboard(request: Request[Any, Any, Any], exc: SwitchboardError) -> Response[Any]:
    # No correlation id in the body: admission refusals come before the request has
    # one, and a route's failed request answers with its own (problem_for).
    return problem_for(exc)


def _internal(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error in the HTTP API", path=request.url.path, exc_info=exc)
    return problem(ErrorCode.INTERNAL, "Internal error; the server's logs have the details.")


def exception_handlers() -> ExceptionHandlersMap:
    """The app's exception handlers, most specific first."""
    return {
        ValidationException: _validation,
        HTTPException: _http,
        UnicodeError: _undecodable,
        RecursionError: _undecodable,
        SwitchboardError: _switchboard,
        Exception: _internal,
    }
