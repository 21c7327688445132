"""Switchboard's orchestrator: the request/reply core and the orchestrator service.

- ``orchestrator.core``: the request/reply core (wire protocol, correlation
  tracker, inbox consumer, requester, endpoints, NATS connections, core
  metrics). It imports nothing from the rest of Switchboard.
- ``orchestrator.engine``, ``orchestrator.llm``, ``orchestrator.service``: the
  conversation engine (planner, DAG executor, aggregator, history) and LLM
  providers.
- ``orchestrator.runtime``: settings, logging, health and metrics server, child
  processes, the embedded nats-server and the ``switchboard up`` supervisor.
- ``orchestrator.bench``: ``switchboard bench``.

Every public name is re-exported here and listed in ``__init__.pyi``. They are
loaded on first use (``lazy_loader``), so ``from switchboard.orchestrator.core
import Requester`` -- what an agent author's import does -- loads the core
alone, not the OpenAI SDK, uvicorn or the engine.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
