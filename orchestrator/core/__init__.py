"""The request/reply core: correlation-routed request/reply on NATS.

Wire protocol and envelopes, the ``CorrelationTracker`` and the one inbox
subscription per process (``GlobalMessageConsumer``), the ``Requester``, the
``Endpoint`` that workers serve, NATS connection handling (the one module that
knows nats-py), discovery, KV, and the core's metrics. It imports nothing from
the rest of Switchboard: an import-linter contract (``pyproject.toml``) says so.
"""

from . import headers, metrics, wire
from .catalog import ROLE_AGENT, ROLE_KEY, AgentCatalog, AgentInfo, agent_metadata
from .codec import DEFAULT_MAX_PAYLOAD, decode, encode
from .connection import ConnectionEvents, connect, is_permission_error, map_nats_errors
from .consumer import GlobalMessageConsumer
from .conversation import (
    ConversationReply,
    ConversationRequest,
    ConversationTurn,
    HistoryReply,
    HistoryRequest,
    Plan,
    PlanStep,
    StepResult,
    StepStatus,
)
from .correlation import CorrelationTracker, PendingInfo, PendingRequest, ReplyStream, remote_error
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
from .endpoint import Endpoint, EndpointStats, ErrorBody, Handler, Middleware, Request
from .envelopes import (
    MAX_MESSAGE_CHARS,
    AgentName,
    AgentResult,
    AgentTask,
    CorrelationId,
    ErrorInfo,
    ErrorReply,
    EventKind,
    ProgressEvent,
    StepId,
    Usage,
    UserId,
)
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
from .kv import KVBucket, Revision
from .requester import Requester
from .subjects import Subjects, is_safe_token, new_correlation_id, safe_token
from .tasks import stop_in_order, stop_task
from .urls import without_credentials

__all__ = [
    "DEFAULT_MAX_PAYLOAD",
    "MAX_MESSAGE_CHARS",
    "ROLE_AGENT",
    "ROLE_KEY",
    "AgentCatalog",
    "AgentError",
    "AgentInfo",
    "AgentName",
    "AgentResult",
    "AgentTask",
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
    "Endpoint",
    "EndpointInfo",
    "EndpointStats",
    "EndpointStatsInfo",
    "ErrorBody",
    "ErrorCode",
    "ErrorInfo",
    "ErrorReply",
    "EventKind",
    "GlobalMessageConsumer",
    "Handler",
    "HistoryReply",
    "HistoryRequest",
    "KVBucket",
    "Kind",
    "LLMError",
    "Middleware",
    "NoRespondersError",
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
    "Revision",
    "ServiceInfo",
    "ServicePing",
    "ServiceResponder",
    "ServiceStatsInfo",
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
    "connect",
    "decode",
    "discover",
    "encode",
    "headers",
    "is_permission_error",
    "is_safe_token",
    "map_nats_errors",
    "metrics",
    "new_correlation_id",
    "remote_error",
    "safe_token",
    "stop_in_order",
    "stop_task",
    "wire",
    "without_credentials",
]
