"""The live agent catalog: who can do what, discovered over ``$SRV.INFO`` and cached.

Agents advertise themselves through the NATS service API with
``metadata["switchboard.role"] == "agent"`` and their planning hints
(keywords, patterns, input hints) in the endpoint metadata. The orchestrator
refreshes the catalog in the background, so starting a new agent makes it
plannable within one refresh interval, with no orchestrator restart.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable, Mapping

import msgspec
import structlog
from nats.aio.client import Client as NATS

from .discovery import ServiceInfo, discover
from .subjects import is_safe_token
from .tasks import stop_task

__all__ = ["ROLE_AGENT", "ROLE_KEY", "AgentCatalog", "AgentInfo", "agent_metadata"]

log = structlog.get_logger("switchboard.catalog")

ROLE_KEY = "switchboard.role"
ROLE_AGENT = "agent"

#: Bounds on what an agent may advertise (names become subjects; hints are run on clauses).
MAX_NAME = 64
MAX_HINTS = 64
MAX_HINT = 200


class AgentInfo(msgspec.Struct, kw_only=True, frozen=True):
    """One agent as the planner sees it."""

    name: str
    description: str
    subject: str
    keywords: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    input_hints: str = ""
    version: str = ""
    instances: int = 1


def agent_metadata(
    *, keywords: tuple[str, ...], patterns: tuple[str, ...], input_hints: str
) -> dict[str, str]:
    """Endpoint metadata an agent advertises (``nats micro info`` shows it too)."""
    return {
        "keywords": json.dumps(list(keywords)),
        "patterns": json.dumps(list(patterns)),
        "input_hints": input_hints,
    }


def _parse(raw: bytes) -> AgentInfo | None:
    try:
        info = msgspec.json.decode(raw, type=ServiceInfo)
    except msgspec.MsgspecError:
        return None
    if info.metadata.get(ROLE_KEY) != ROLE_AGENT or not info.endpoints:
        return None
    if not is_safe_token(info.name) or len(info.name) > MAX_NAME:
        log.warning("agent with an unusable name ignored", name=info.name[:80])
        return None
    endpoint = info.endpoints[0]
    meta = endpoint.metadata or {}

    def strings(key: str) -> tuple[str, ...]:
        """A JSON list of short strings from the metadata; bounded (it comes from outside)."""
        try:
            value = json.loads(meta.get(key, "[]"))
        except (ValueError, RecursionError):
            return ()
        if not isinstance(value, list):
            return ()
        return tuple(str(v)[:MAX_HINT] for v in value[:MAX_HINTS])

    return AgentInfo(
        name=info.name,
        description=info.description or "",
        subject=endpoint.subject,
        keywords=strings("keywords"),
        patterns=strings("patterns"),
        input_hints=meta.get("input_hints", ""),
        version=info.version,
    )


class AgentCatalog:
    """A cached view of the running agents, refreshed every ``refresh`` seconds."""

    def __init__(
        self,
        nc: NATS,
        *,
        refresh: float = 5.0,
        window: float = 1.0,
        stale_after: float | None = None,
    ) -> None:
        self._nc = nc
        self.refresh_interval = refresh
        self.window = window
        #: An agent that misses a refresh (busy, slow to answer) stays this long.
        self.stale_after = stale_after if stale_after is not None else 3 * refresh + window
        self._agents: dict[str, AgentInfo] = {}
        self._seen: dict[str, float] = {}
        #: Every agent name discovered since start (a missing one may come back).
        self._known: set[str] = set()
        self._refreshed_at = 0.0
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    @property
    def agents(self) -> Mapping[str, AgentInfo]:
        return self._agents

    @property
    def age(self) -> float:
        return time.monotonic() - self._refreshed_at

    async def start(self) -> None:
        await self.refresh()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._loop(), name="switchboard-catalog-refresh"
            )

    async def stop(self, grace: float = 0.0) -> None:
        task, self._task = self._task, None
        await stop_task(task)

    async def refresh(self) -> Mapping[str, AgentInfo]:
        """Ask the agents now (concurrent callers share one round)."""
        if self._lock.locked():  # a round is under way: its answer is fresh enough
            async with self._lock:
                return self._agents
        async with self._lock:
            try:
                raw = await discover(self._nc, "INFO", timeout=self.window)
            except Exception as exc:  # NATS trouble: keep the last known catalog
                log.warning("agent discovery failed", error=str(exc))
                return self._agents
            now = time.monotonic()
            found: dict[str, AgentInfo] = {}
            for item in raw:
                agent = _parse(item)
                if agent is None:
                    continue
                seen = found.get(agent.name)
                instances = seen.instances + 1 if seen else 1
                found[agent.name] = msgspec.structs.replace(agent, instances=instances)
                self._seen[agent.name] = now
                self._known.add(agent.name)
            # A busy agent may miss one round of answers: keep it until it is stale.
            for name, agent in self._agents.items():
                if name not in found and now - self._seen.get(name, 0.0) < self.stale_after:
                    found[name] = agent
            for name in [n for n in self._seen if n not in found]:
                del self._seen[name]
            if set(found) != set(self._agents):
                log.info("agent catalog changed", agents=sorted(found))
            self._agents = found
            self._refreshed_at = now
            return found

    def may_return(self, names: Iterable[str]) -> bool:
        """Whether any of ``names`` (missing now) is worth waiting for: an agent seen since
        start, or any agent while none is known yet (this process has just started)."""
        return not self._known or not self._known.isdisjoint(names)

    async def get(self, names: list[str] | None = None) -> Mapping[str, AgentInfo]:
        """The catalog (restricted to ``names``), refreshed first if empty or missing a name
        that was here before (a name never seen buys no discovery round: a typo or a
        fuzzer would send one to every agent, request after request).

        The mapping is never changed in place (a refresh replaces it): no copy is needed.
        """
        wanted = set(names) if names else None
        stale = not self._agents or (
            wanted is not None and self.may_return(wanted - self._agents.keys())
        )
        # Not on every request (do not hammer the service API), but soon when empty.
        if stale and self.age > (0.1 if not self._agents else 0.5):
            await self.refresh()
        if wanted is None:
            return self._agents
        return {name: info for name, info in self._agents.items() if name in wanted}

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_interval)
            await self.refresh()
