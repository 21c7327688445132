"""Switchboard: correlation-routed request/reply on NATS for AI multi-agent orchestration.

The repository's top-level folders are installed under this one namespace, so
they collide with no other package (the OpenAI Agents SDK imports as
``agents``):

- ``switchboard.orchestrator``: the request/reply core (``.core``) and the
  orchestrator service, runtime and benchmarks;
- ``switchboard.agents``: the agent SDK and the built-in agents;
- ``switchboard.bff``: the HTTP API and web page;
- ``switchboard.cli``: the ``switchboard`` command, which composes them.
"""

from importlib.metadata import version

__version__ = version("switchboard-nats")

__all__ = ["__version__"]
