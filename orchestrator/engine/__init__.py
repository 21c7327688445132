"""The multi-agent engine: planner -> validated DAG -> parallel executor -> aggregator."""

from .aggregator import Aggregator, compose, output_text
from .answer_stream import answer_tokens, stream_completion
from .conversation import ConversationEngine
from .events import EventSink
from .executor import Executor
from .history import NEW_CONVERSATION, HistoryStore, Snapshot
from .plan import dependents, validate_plan
from .planner import LLMPlanner, LocalPlanner, split_clauses
from .reply import answered_detail, check_answer, reply_steps

__all__ = [
    "NEW_CONVERSATION",
    "Aggregator",
    "ConversationEngine",
    "EventSink",
    "Executor",
    "HistoryStore",
    "LLMPlanner",
    "LocalPlanner",
    "Snapshot",
    "answer_tokens",
    "answered_detail",
    "check_answer",
    "compose",
    "dependents",
    "output_text",
    "reply_steps",
    "split_clauses",
    "stream_completion",
    "validate_plan",
]
