"""A request's correlation id, made once, and the log context that carries it.

Every authenticated route depends on ``correlation_id``
(:func:`bind_correlation_id`): after the caller is authenticated, it makes the
id ``conv-{userID}-{uuid4}`` and binds it, with the user id, into structlog's
contextvars. Handlers receive the id and never make one, so every log line of
the request names it -- the handler's, the gateway's, an exception handler's,
and those of an SSE stream that is still sending after the handler returned.

Litestar releases dependencies before the response is sent, too early for a
stream, so the binding's lifetime is the ASGI call instead: :func:`log_scope`
wraps each route and puts the log context back as it found it once the last
byte is sent.
"""

from __future__ import annotations

import structlog
from litestar.di import NamedDependency
from litestar.types import ASGIApp, Receive, Scope, Send

from switchboard.orchestrator import new_correlation_id

from .tracing import tag_correlation_id

__all__ = ["bind_correlation_id", "log_scope"]


async def bind_correlation_id(user: NamedDependency[str]) -> str:
    """The request's correlation id, bound into the log context (dependency
    ``correlation_id``; it needs ``user``, so it runs after authentication).

    Litestar resolves a dependency that is alone at its depth of the dependency graph
    in the request's own task, so the binding reaches the handler; keep it the only
    dependency that needs ``user`` (one resolved beside it runs in a task group, and
    this binding would be lost: ``tests/bff/test_context.py`` would fail).
    """
    correlation_id = new_correlation_id(user)
    structlog.contextvars.bind_contextvars(correlation_id=correlation_id, user_id=user)
    tag_correlation_id(correlation_id)
    return correlation_id


def log_scope(app: ASGIApp) -> ASGIApp:
    """ASGI middleware: whatever a request binds into the log context lasts until its
    response is sent, and no longer."""

    async def scoped(scope: Scope, receive: Receive, send: Send) -> None:
        outer = structlog.contextvars.get_contextvars()
        try:
            await app(scope, receive, send)
        finally:
            structlog.contextvars.clear_contextvars()
            structlog.contextvars.bind_contextvars(**outer)

    return scoped
