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

from switchboard.orchestrator import ErrorCode, SwitchboardError

from .problems import problem, problem_for, problem_for_status

__all__ = ["exception_handlers"]

log = structlog.get_logger("switchboard.bff")


def _validation(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    items = exc.extra if isinstance(exc.extra, list) else []
    details = "; ".join(
        f"{item.get('message', '')}" + (f" (at {item['key']})" if item.get("key") else "")
        for item in items
        if isinstance(item, dict)
    )
    return problem(ErrorCode.BAD_REQUEST, details or str(exc.detail))


def _http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    return problem_for_status(exc.status_code, str(exc.detail))


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
