"""Switchboard: correlation-routed request/reply on NATS for AI multi-agent orchestration.

This package is the core library (wire protocol, correlation tracker, inbox
consumer, endpoints, NATS connections, metrics, logging) and the
orchestrator service (planner, DAG executor, aggregator, LLM providers,
CLI). ``agents`` and ``bff`` build on the names exported here.
"""

from . import headers
from .catalog import ROLE_AGENT, AgentCatalog, AgentInfo, agent_metadata
from .codec import DEFAULT_MAX_PAYLOAD, decode, encode
from .connection import ConnectionEvents, connect
from .consumer import GlobalMessageConsumer
from .correlation import CorrelationTracker, PendingInfo, PendingRequest, ReplyStream
from .deadline import Deadline
from .discovery import ServiceResponder, discover
from .embedded import EmbeddedNatsServer, find_nats_server
from .endpoint import Endpoint, Handler, Middleware, Request
from .errors import (
    AgentError,
    ConfigurationError,
    ConnectionClosedError,
    DecodeError,
    ErrorCode,
    LLMError,
    NoRespondersError,
    OverloadedError,
    PayloadTooLargeError,
    PlanError,
    RemoteError,
    RequestError,
    RequestTimeoutError,
    ShuttingDownError,
    SwitchboardError,
    TimeoutPhase,
)
from .headers import Kind
from .health import HealthServer
from .llm import LLM, ChatMessage, Completion, LocalLLM, OpenAIProvider, make_llm
from .logs import configure_logging, get_logger
from .messages import (
    AgentResult,
    AgentTask,
    ConversationReply,
    ConversationRequest,
    ConversationTurn,
    ErrorInfo,
    ErrorReply,
    HistoryReply,
    HistoryRequest,
    Plan,
    PlanStep,
    ProgressEvent,
    StepResult,
    Usage,
)
from .requester import Requester
from .runtime import Runtime, run_main
from .service import OrchestratorService
from .settings import Settings, load_settings
from .subjects import Subjects, is_safe_token, new_correlation_id, safe_token

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MAX_PAYLOAD",
    "LLM",
    "ROLE_AGENT",
    "AgentCatalog",
    "AgentError",
    "AgentInfo",
    "AgentResult",
    "AgentTask",
    "ChatMessage",
    "Completion",
    "ConfigurationError",
    "ConnectionClosedError",
    "ConnectionEvents",
    "ConversationReply",
    "ConversationRequest",
    "ConversationTurn",
    "CorrelationTracker",
    "Deadline",
    "DecodeError",
    "EmbeddedNatsServer",
    "Endpoint",
    "ErrorCode",
    "ErrorInfo",
    "ErrorReply",
    "GlobalMessageConsumer",
    "Handler",
    "HealthServer",
    "HistoryReply",
    "HistoryRequest",
    "Kind",
    "LLMError",
    "LocalLLM",
    "Middleware",
    "NoRespondersError",
    "OpenAIProvider",
    "OrchestratorService",
    "OverloadedError",
    "PayloadTooLargeError",
    "PendingInfo",
    "PendingRequest",
    "Plan",
    "PlanError",
    "PlanStep",
    "ProgressEvent",
    "RemoteError",
    "ReplyStream",
    "Request",
    "RequestError",
    "RequestTimeoutError",
    "Requester",
    "Runtime",
    "ServiceResponder",
    "Settings",
    "ShuttingDownError",
    "StepResult",
    "Subjects",
    "SwitchboardError",
    "TimeoutPhase",
    "Usage",
    "agent_metadata",
    "configure_logging",
    "connect",
    "decode",
    "discover",
    "encode",
    "find_nats_server",
    "get_logger",
    "headers",
    "is_safe_token",
    "load_settings",
    "make_llm",
    "new_correlation_id",
    "run_main",
    "safe_token",
]
