"""ASGI middleware around the whole app: HTTP metrics."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from switchboard.orchestrator.core import tracing
from switchboard.orchestrator.metrics import HTTP_DURATION, HTTP_REQUESTS

__all__ = ["metrics_middleware"]


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
            HTTP_DURATION.labels(route, scope["method"]).observe(
                time.perf_counter() - started, tracing.exemplar()
            )

    return counted
