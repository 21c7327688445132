"""Finding agents by name: a built-in (``calculator``) or a user's (``my_module:my_agent``).

``MODULE:ATTR`` imports ``MODULE`` (a full dotted name: relative names are not
supported) and reads ``ATTR``, which must be one of:

* an :class:`~switchboard.agents.sdk.Agent` (what ``@agent(name, description)`` makes);
* a list or tuple of Agents;
* a *factory*: a plain (not async) function defined in ``MODULE`` itself that takes
  no arguments and returns an Agent or a list or tuple of Agents.

Nothing else is called: not builtins (``builtins:input`` would wait on stdin), not
classes, not functions imported from elsewhere, not functions needing arguments.
Every failure (the module cannot be imported or raises while importing, the
attribute is missing or of the wrong kind, the factory raises) is a one-line
:class:`~orchestrator.ConfigurationError` naming the spec.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterable
from types import ModuleType
from typing import Any

from switchboard.orchestrator.core import ConfigurationError

from .builtin import BUILTIN_NAMES, builtin_agents
from .sdk import Agent

__all__ = ["load_agents"]

_EXPECTED = (
    "an Agent (made with @agent(name, description)), a list or tuple of Agents, or a "
    "function defined in {module!r} that takes no arguments and returns them"
)
_MAX_DETAIL = 300


def _cause(exc: BaseException) -> str:
    """``Type: message`` on one line, cut to a sensible length."""
    text = " ".join(str(exc).split())
    if len(text) > _MAX_DETAIL:
        text = text[: _MAX_DETAIL - 3] + "..."
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def _import(spec: str, module_name: str) -> ModuleType:
    if module_name.startswith("."):
        raise ConfigurationError(
            f"Agent {spec!r}: relative module names are not supported; give the full dotted "
            "name (package.module:attribute)."
        )
    if not module_name or not all(module_name.split(".")):
        raise ConfigurationError(
            f"Agent {spec!r} is not 'module:attribute': {module_name!r} is not a module name."
        )
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(
            f"Cannot import {module_name!r} for agent {spec!r}: {_cause(exc)}."
        ) from exc
    except SystemExit as exc:
        raise ConfigurationError(
            f"Cannot import {module_name!r} for agent {spec!r}: it called sys.exit({exc.code!r}) "
            "while being imported."
        ) from exc
    except Exception as exc:  # any error in the user's module
        raise ConfigurationError(
            f"Cannot import {module_name!r} for agent {spec!r}: {_cause(exc)} "
            "(raised while importing it)."
        ) from exc


def _kind(value: object) -> str:
    if inspect.isclass(value):
        return f"the class {value.__name__}"
    if inspect.isbuiltin(value):
        return f"the builtin {getattr(value, '__name__', '?')}()"
    if inspect.isfunction(value):
        return f"a function from {value.__module__!r}"
    return f"a {type(value).__name__}"


def _factory_problem(value: Any, module: ModuleType) -> str | None:
    """Why ``value`` may not be called as a factory (``None``: it may)."""
    if inspect.iscoroutinefunction(value) or inspect.isasyncgenfunction(value):
        return "an async function (a handler needs @agent(name, description))"
    if inspect.isgeneratorfunction(value):
        return "a generator function"
    if value.__module__ != module.__name__:
        return f"a function from {value.__module__!r}, not defined in {module.__name__!r}"
    try:
        parameters = inspect.signature(value).parameters.values()
    except (TypeError, ValueError):  # pragma: no cover - plain functions have signatures
        return "a function without a readable signature"
    required = [
        p.name
        for p in parameters
        if p.default is inspect.Parameter.empty
        and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    ]
    if required:
        return f"a function needing arguments ({', '.join(required)})"
    return None


def _agents_in(spec: str, value: object, what: str, module: ModuleType) -> list[Agent]:
    candidates: list[object] = list(value) if isinstance(value, list | tuple) else [value]
    items: list[Agent] = []
    for item in candidates:
        if not isinstance(item, Agent):
            raise ConfigurationError(
                f"{spec!r} {what} {_kind(item)}, not an Agent: expected "
                f"{_EXPECTED.format(module=module.__name__)}."
            )
        items.append(item)
    if not items:
        raise ConfigurationError(f"{spec!r} {what} an empty {type(value).__name__}: no Agent.")
    return items


def _from_module(spec: str) -> list[Agent]:
    module_name, _, attr = spec.partition(":")
    if not attr:
        raise ConfigurationError(f"Agent {spec!r} names no attribute: use 'module:attribute'.")
    module = _import(spec, module_name)
    try:
        value = getattr(module, attr)
    except AttributeError:
        raise ConfigurationError(f"Module {module_name!r} has no attribute {attr!r}.") from None
    except Exception as exc:  # a module __getattr__ may raise anything
        raise ConfigurationError(f"Reading {spec!r} raised {_cause(exc)}.") from exc
    if not inspect.isfunction(value):
        return _agents_in(spec, value, "is", module)
    problem = _factory_problem(value, module)
    if problem is not None:
        raise ConfigurationError(
            f"{spec!r} is {problem}: expected {_EXPECTED.format(module=module_name)}."
        )
    try:
        made = value()
    except SystemExit as exc:
        raise ConfigurationError(
            f"The agent factory {spec!r} called sys.exit({exc.code!r})."
        ) from exc
    except Exception as exc:  # any error in the user's factory
        raise ConfigurationError(f"The agent factory {spec!r} raised {_cause(exc)}.") from exc
    return _agents_in(spec, made, "returned", module)


def load_agents(specs: Iterable[str]) -> list[Agent]:
    """Agents for names like ``calculator``, ``all`` (every built-in) or ``pkg.mod:attr``.

    ``attr`` is an Agent, a list or tuple of Agents, or a zero-argument function
    defined in ``pkg.mod`` returning those (see the module docstring).

    Raises:
        ConfigurationError: unknown name, import error (or an exception while
            importing), not an Agent, or a factory that failed.
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
