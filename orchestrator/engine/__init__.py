"""The multi-agent engine: planner -> validated DAG -> parallel executor -> aggregator."""

from .adapt import UNCLEAR_INPUT, Adaptation, adapt
from .aggregator import CITED, Aggregator, cite, compose, output_text, outputs_answer
from .answer_stream import answer_tokens, stream_completion
from .conversation import ConversationEngine
from .events import EventSink
from .executor import Executor
from .followup import resolve_followup
from .history import NEW_CONVERSATION, HistoryStore, Snapshot, turn_steps
from .plan import dependents, validate_plan
from .plancheck import PlanCheck, check_llm_plan
from .planner import LLMPlanner, LocalPlanner, refers_back, split_clauses
from .reply import answered_detail, check_answer, reply_steps
from .rounds import RoundLimits, Rounds, RoundsOutcome
from .tools import ToolLoop, ToolTurnOutcome

__all__ = [
    "CITED",
    "NEW_CONVERSATION",
    "UNCLEAR_INPUT",
    "Adaptation",
    "Aggregator",
    "ConversationEngine",
    "EventSink",
    "Executor",
    "HistoryStore",
    "LLMPlanner",
    "LocalPlanner",
    "PlanCheck",
    "RoundLimits",
    "Rounds",
    "RoundsOutcome",
    "Snapshot",
    "ToolLoop",
    "ToolTurnOutcome",
    "adapt",
    "answer_tokens",
    "answered_detail",
    "check_answer",
    "check_llm_plan",
    "cite",
    "compose",
    "dependents",
    "output_text",
    "outputs_answer",
    "refers_back",
    "reply_steps",
    "resolve_followup",
    "split_clauses",
    "stream_completion",
    "turn_steps",
    "validate_plan",
]
