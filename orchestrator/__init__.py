"""Switchboard: correlation-routed request/reply on NATS for AI multi-agent orchestration.

This package is the core library (wire protocol, correlation tracker, inbox
consumer, endpoints, NATS connections, metrics, logging) and the
orchestrator service (planner, DAG executor, aggregator, LLM providers,
CLI). ``agents`` and ``bff`` build on the names exported here.
"""

from . import headers, metrics, wire
from .catalog import ROLE_AGENT, ROLE_KEY, AgentCatalog, AgentInfo, agent_metadata
from .codec import DEFAULT_MAX_PAYLOAD, decode, encode
from .connection import (
    ConnectionEvents,
    connect,
    is_permission_error,
    translate_nats_error,
)
from .consumer import GlobalMessageConsumer
from .correlation import (
    CorrelationTracker,
    PendingInfo,
    PendingRequest,
    ReplyStream,
    remote_error,
)
from .deadline import Deadline
from .discovery import (
    EndpointInfo,
    EndpointStatsInfo,
    ServiceInfo,
    ServicePing,
    ServiceResponder,
    ServiceStatsInfo,
    discover,
)
from .embedded import EmbeddedNatsServer, find_nats_server
from .endpoint import Endpoint, EndpointStats, ErrorBody, Handler, Middleware, Request
from .errors import (
    AgentError,
    ConfigurationError,
    ConnectionClosedError,
    ConversationCancelledError,
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
from .health import HealthServer, ReadinessCheck
from .httpserver import HttpServer, QuietServer, bind_socket
from .kv import KVBucket, Revision
from .llm import LLM, ChatMessage, Completion, LocalLLM, OpenAIProvider, make_llm
from .logs import configure_logging, get_logger
from .messages import (
    MAX_MESSAGE_CHARS,
    AgentName,
    AgentResult,
    AgentTask,
    ConversationReply,
    ConversationRequest,
    ConversationTurn,
    CorrelationId,
    ErrorInfo,
    ErrorReply,
    HistoryReply,
    HistoryRequest,
    Plan,
    PlanStep,
    ProgressEvent,
    StepId,
    StepResult,
    StepStatus,
    Usage,
    UserId,
)
from .requester import Requester
from .runtime import GC_THRESHOLDS, Component, Runtime, nats_options, run_main, tune_gc
from .service import OrchestratorService
from .settings import Settings, load_settings, settings_table
from .subjects import Subjects, is_safe_token, new_correlation_id, safe_token
from .urls import without_credentials

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MAX_PAYLOAD",
    "GC_THRESHOLDS",
    "LLM",
    "MAX_MESSAGE_CHARS",
    "ROLE_AGENT",
    "ROLE_KEY",
    "AgentCatalog",
    "AgentError",
    "AgentInfo",
    "AgentName",
    "AgentResult",
    "AgentTask",
    "ChatMessage",
    "Completion",
    "Component",
    "ConfigurationError",
    "ConnectionClosedError",
    "ConnectionEvents",
    "ConversationCancelledError",
    "ConversationReply",
    "ConversationRequest",
    "ConversationTurn",
    "CorrelationId",
    "CorrelationTracker",
    "Deadline",
    "DecodeError",
    "EmbeddedNatsServer",
    "Endpoint",
    "EndpointInfo",
    "EndpointStats",
    "EndpointStatsInfo",
    "ErrorBody",
    "ErrorCode",
    "ErrorInfo",
    "ErrorReply",
    "GlobalMessageConsumer",
    "Handler",
    "HealthServer",
    "HistoryReply",
    "HistoryRequest",
    "HttpServer",
    "KVBucket",
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
    "QuietServer",
    "ReadinessCheck",
    "RemoteError",
    "ReplyStream",
    "Request",
    "RequestError",
    "RequestTimeoutError",
    "Requester",
    "Revision",
    "Runtime",
    "ServiceInfo",
    "ServicePing",
    "ServiceResponder",
    "ServiceStatsInfo",
    "Settings",
    "ShuttingDownError",
    "StepId",
    "StepResult",
    "StepStatus",
    "Subjects",
    "SwitchboardError",
    "TimeoutPhase",
    "Usage",
    "UserId",
    "agent_metadata",
    "bind_socket",
    "configure_logging",
    "connect",
    "decode",
    "discover",
    "encode",
    "find_nats_server",
    "get_logger",
    "headers",
    "is_permission_error",
    "is_safe_token",
    "load_settings",
    "make_llm",
    "metrics",
    "nats_options",
    "new_correlation_id",
    "remote_error",
    "run_main",
    "safe_token",
    "settings_table",
    "translate_nats_error",
    "tune_gc",
    "wire",
    "without_credentials",
]
