"""The BFF's routes, one module per concern."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from .chat import chat, chat_stream
from .operations import healthz, metrics, readyz
from .pages import index, static_routers
from .queries import conversation, list_agents

__all__ = ["route_handlers"]


def route_handlers() -> list[ControllerRouterHandler]:
    """Every route of the app (the static file routers are made anew for each app)."""
    return [
        chat,
        chat_stream,
        list_agents,
        conversation,
        healthz,
        readyz,
        metrics,
        index,
        *static_routers(),
    ]
