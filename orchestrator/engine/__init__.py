"""The multi-agent engine: planner -> validated DAG -> parallel executor -> aggregator."""

from .aggregator import CITED, Aggregator, cite, compose, output_text, outputs_answer
from .conversation import ConversationEngine
from .events import EventSink
from .executor import Executor
from .history import HistoryStore
from .plan import dependents, validate_plan
from .plancheck import PlanCheck, check_llm_plan
from .planner import LLMPlanner, LocalPlanner, split_clauses
from .reply import answered_detail, check_answer, reply_steps

__all__ = [
    "CITED",
    "Aggregator",
    "ConversationEngine",
    "EventSink",
    "Executor",
    "HistoryStore",
    "LLMPlanner",
    "LocalPlanner",
    "PlanCheck",
    "answered_detail",
    "check_answer",
    "check_llm_plan",
    "cite",
    "compose",
    "dependents",
    "output_text",
    "outputs_answer",
    "reply_steps",
    "split_clauses",
    "validate_plan",
]
