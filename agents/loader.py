"""Finding agents by name: a built-in (``calculator``) or a user's (``my_module:my_agent``)."""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from orchestrator import ConfigurationError

from .builtin import BUILTIN_NAMES, builtin_agents
from .sdk import Agent

__all__ = ["load_agents"]


def _from_module(spec: str) -> list[Agent]:
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(
            f"Cannot import {module_name!r} for agent {spec!r}: {exc}."
        ) from exc
    try:
        value = getattr(module, attr)
    except AttributeError:
        raise ConfigurationError(f"Module {module_name!r} has no attribute {attr!r}.") from None
    if callable(value) and not isinstance(value, Agent):
        value = value()
    items = list(value) if isinstance(value, list | tuple) else [value]
    for item in items:
        if not isinstance(item, Agent):
            raise ConfigurationError(
                f"{spec!r} is a {type(item).__name__}, not an Agent (make one with "
                "@agents.agent(name, description))."
            )
    return items


def load_agents(specs: Iterable[str]) -> list[Agent]:
    """Agents for names like ``calculator``, ``all`` (every built-in) or ``pkg.mod:attr``.

    Raises:
        ConfigurationError: unknown name, import error, or not an Agent.
    """
    builtins = builtin_agents()
    found: dict[str, Agent] = {}
    for spec in specs:
        if spec == "all":
            items = list(builtins.values())
        elif ":" in spec:
            items = _from_module(spec)
        elif spec in builtins:
            items = [builtins[spec]]
        else:
            raise ConfigurationError(
                f"Unknown agent {spec!r}: use a built-in ({', '.join(BUILTIN_NAMES)}, or all) or "
                "'module:attribute' for your own."
            )
        for item in items:
            found[item.name] = item
    if not found:
        raise ConfigurationError("No agent to run: name at least one.")
    return list(found.values())
