"""structlog set up once per process: JSON off a TTY (or when asked), console on one.

Context (correlation id, user, agent, step) lives in contextvars: bind it for
a block with ``structlog.contextvars.bound_contextvars(...)`` and every log
line inside -- including those of libraries using stdlib logging -- carries it.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog
import structlog.tracebacks

from .tracing import add_trace_ids

__all__ = ["configure_logging", "get_logger"]

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def get_logger(name: str | None = None, **initial: Any) -> Any:
    """A structlog logger; ``name`` becomes the ``logger`` field."""
    if name is not None:
        initial["logger"] = name
    return structlog.get_logger(**initial)


def configure_logging(level: str = "info", *, json: bool | None = None, cache: bool = True) -> None:
    """Configure structlog and stdlib logging for this process (idempotent).

    ``json=None`` picks JSON unless stderr is a terminal. ``cache=False`` keeps
    loggers re-configurable (``structlog.testing.capture_logs`` in tests).
    """
    numeric = _LEVELS.get(level.lower())
    if numeric is None:
        from ..core.errors import ConfigurationError

        raise ConfigurationError(f"Log level {level!r} is not one of: {', '.join(_LEVELS)}.")
    use_json = (not sys.stderr.isatty()) if json is None else json
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        add_trace_ids,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any
    if use_json:
        # Tracebacks as data, without local variables: locals can hold secrets (API keys).
        shared.append(
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
            )
        )
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())

    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=cache,
    )
    # Foreign (stdlib) log records -- nats-py, uvicorn, openai -- get the same format.
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    # Chatty libraries: keep their noise at warning unless we debug.
    for noisy in ("uvicorn.access", "httpx", "httpcore", "openai"):
        logging.getLogger(noisy).setLevel(max(numeric, logging.WARNING))
