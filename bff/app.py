"""The HTTP API (Litestar): chat, live progress over SSE, agents, history, health, docs.

:func:`create_app` assembles the layers, each in its own module: the routes
(``routes/``), admission (``admission``: the caller's user id from its
credential, never from the body; a place in flight), the request's correlation
id ``conv-{userID}-{uuid4}`` made once and bound into every log line
(``context``), the exception handlers (``exceptions``) and every HTTP status
(``problems``: ``application/problem+json`` with the error code and
correlation id; nothing leaks a stack trace). A client that disconnects
cancels its conversation all the way down to the agents (``disconnect``).
"""

from __future__ import annotations

from litestar import Litestar
from litestar.di import Provide

from .admission import authenticate
from .context import bind_correlation_id, log_scope
from .exceptions import exception_handlers
from .openapi import openapi_config
from .routes import route_handlers
from .schemas import MAX_BODY, ChatRequest
from .state import BffState

__all__ = ["create_app"]


def create_app(bff: BffState) -> Litestar:
    """The Litestar application for one BFF process (wrap it in
    :func:`~switchboard.bff.middleware.metrics_middleware` to count its requests)."""
    return Litestar(
        route_handlers=route_handlers(),
        dependencies={
            "bff": Provide(lambda: bff, sync_to_thread=False),
            "user": Provide(authenticate),
            "correlation_id": Provide(bind_correlation_id),
        },
        middleware=[log_scope],
        exception_handlers=exception_handlers(),
        openapi_config=openapi_config(version=bff.version, secured=bff.keys.enabled),
        request_max_body_size=MAX_BODY,
        signature_namespace={"BffState": BffState, "ChatRequest": ChatRequest},
        debug=False,
        logging_config=None,
    )
