"""Subject names (DESIGN.md, "Subjects"), derived from one configurable prefix."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from .errors import ConfigurationError

__all__ = ["Subjects", "is_safe_token", "new_correlation_id", "safe_token"]

_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def is_safe_token(value: str) -> bool:
    """Whether ``value`` can be one NATS subject token (no ``.``, ``*``, ``>``, spaces)."""
    return bool(_TOKEN.match(value))


def safe_token(value: str, *, max_length: int = 64) -> str:
    """``value`` made into a subject-safe token: other characters become ``_``."""
    token = _UNSAFE.sub("_", value)[:max_length]
    return token or "_"


def new_correlation_id(user_id: str) -> str:
    """``conv-{userID}-{uuid4}``, the correlation id of one user request.

    ``user_id`` must already be a safe token (the BFF makes it one).
    """
    return f"conv-{user_id}-{uuid.uuid4()}"


@dataclass(frozen=True, slots=True)
class Subjects:
    """All subjects of one Switchboard installation (prefix ``ai`` by default).

    ==============================  =====================  ======================
    subject                         subscribers            queue group
    ==============================  =====================  ======================
    ``ai.orchestrator.converse``    orchestrator           ``ai-orchestrator``
    ``ai.orchestrator.agents``      orchestrator           ``ai-orchestrator``
    ``ai.orchestrator.history``     orchestrator           ``ai-orchestrator``
    ``ai.agents.<name>``            agent ``<name>``       ``agent-<name>``
    ``ai.events.<correlation_id>``  watchers (BFF, CLI)    none
    ``ai.cancel.<correlation_id>``  every worker           none
    ==============================  =====================  ======================
    """

    prefix: str = "ai"

    def __post_init__(self) -> None:
        parts = self.prefix.split(".")
        if not all(is_safe_token(part) for part in parts):
            raise ConfigurationError(
                f"The subject prefix {self.prefix!r} is not valid: use dot-separated tokens of "
                "letters, digits, '_' and '-'."
            )

    @property
    def converse(self) -> str:
        return f"{self.prefix}.orchestrator.converse"

    @property
    def catalog(self) -> str:
        """The orchestrator's live agent catalog (a list of AgentInfo)."""
        return f"{self.prefix}.orchestrator.agents"

    @property
    def history(self) -> str:
        """One user's turns of one conversation (HistoryRequest -> HistoryReply)."""
        return f"{self.prefix}.orchestrator.history"

    @property
    def orchestrator_queue(self) -> str:
        return f"{self.prefix}-orchestrator"

    def agent(self, name: str) -> str:
        return f"{self.prefix}.agents.{name}"

    @staticmethod
    def agent_queue(name: str) -> str:
        return f"agent-{name}"

    def events(self, correlation_id: str) -> str:
        return f"{self.prefix}.events.{correlation_id}"

    @property
    def all_events(self) -> str:
        return f"{self.prefix}.events.>"

    def cancel(self, correlation_id: str) -> str:
        return f"{self.prefix}.cancel.{correlation_id}"

    @property
    def all_cancels(self) -> str:
        return f"{self.prefix}.cancel.*"
