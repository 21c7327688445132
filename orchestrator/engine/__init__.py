"""The multi-agent engine: planner -> validated DAG -> parallel executor -> aggregator."""

from .aggregator import Aggregator, compose
from .conversation import ConversationEngine
from .events import EventSink
from .executor import Executor
from .history import HistoryStore
from .plan import dependents, validate_plan
from .planner import LLMPlanner, LocalPlanner, split_clauses

__all__ = [
    "Aggregator",
    "ConversationEngine",
    "EventSink",
    "Executor",
    "HistoryStore",
    "LLMPlanner",
    "LocalPlanner",
    "compose",
    "dependents",
    "split_clauses",
    "validate_plan",
]
