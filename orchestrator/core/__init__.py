"""The request/reply core: correlation-routed request/reply on NATS.

Wire protocol, envelopes and typed progress events, the ``CorrelationTracker``
and the one inbox subscription per process (``GlobalMessageConsumer``), the
``Requester`` and its typed ``EventStream``, the ``ConversationClient``, the
``Endpoint`` that workers serve, NATS connection handling (the one module that
knows nats-py), discovery, KV, and the core's metrics. It imports nothing from
the rest of Switchboard: an import-linter contract (``pyproject.toml``) says so.
"""

from . import headers, metrics, wire
from .catalog import ROLE_AGENT, ROLE_KEY, AgentCatalog, AgentInfo, agent_metadata
from .client import ConversationClient
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
from .deadline import REPLY_MARGIN, Deadline, reply_deadline, work_deadline
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
    OverloadScope,
    PayloadTooLargeError,
    PlanError,
    RemoteError,
    RequestError,
    RequestTimeoutError,
    ShuttingDownError,
    SwitchboardError,
    TimeoutPhase,
    UnauthorizedError,
)
from .headers import Kind
from .kv import KVBucket, Revision
from .options import RequestOptions, new_request_id
from .progress import (
    AnsweredDetail,
    AnsweredEvent,
    EventKind,
    PlannedEvent,
    ProgressEvent,
    StepFailedEvent,
    StepFinishedDetail,
    StepFinishedEvent,
    StepProgressEvent,
    StepStartedDetail,
    StepStartedEvent,
    decode_event,
    encode_event,
)
from .replay import ReplayWindow, StoredReply, replay_key
from .requester import Requester
from .stream import EventStream
from .subjects import Subjects, is_safe_token, new_correlation_id, safe_token
from .tasks import stop_in_order, stop_task
from .urls import without_credentials

__all__ = [
    "DEFAULT_MAX_PAYLOAD",
    "MAX_MESSAGE_CHARS",
    "REPLY_MARGIN",
    "ROLE_AGENT",
    "ROLE_KEY",
    "AgentCatalog",
    "AgentError",
    "AgentInfo",
    "AgentName",
    "AgentResult",
    "AgentTask",
    "AnsweredDetail",
    "AnsweredEvent",
    "ConfigurationError",
    "ConnectionClosedError",
    "ConnectionEvents",
    "ConversationCancelledError",
    "ConversationClient",
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
    "EventStream",
    "GlobalMessageConsumer",
    "Handler",
    "HistoryReply",
    "HistoryRequest",
    "KVBucket",
    "Kind",
    "LLMError",
    "Middleware",
    "NoRespondersError",
    "OverloadScope",
    "OverloadedError",
    "PayloadTooLargeError",
    "PendingInfo",
    "PendingRequest",
    "Plan",
    "PlanError",
    "PlanStep",
    "PlannedEvent",
    "ProgressEvent",
    "RemoteError",
    "ReplayWindow",
    "ReplyStream",
    "Request",
    "RequestError",
    "RequestOptions",
    "RequestTimeoutError",
    "Requester",
    "Revision",
    "ServiceInfo",
    "ServicePing",
    "ServiceResponder",
    "ServiceStatsInfo",
    "ShuttingDownError",
    "StepFailedEvent",
    "StepFinishedDetail",
    "StepFinishedEvent",
    "StepId",
    "StepProgressEvent",
    "StepResult",
    "StepStartedDetail",
    "StepStartedEvent",
    "StepStatus",
    "StoredReply",
    "Subjects",
    "SwitchboardError",
    "TimeoutPhase",
    "UnauthorizedError",
    "Usage",
    "UserId",
    "agent_metadata",
    "connect",
    "decode",
    "decode_event",
    "discover",
    "encode",
    "encode_event",
    "headers",
    "is_permission_error",
    "is_safe_token",
    "map_nats_errors",
    "metrics",
    "new_correlation_id",
    "new_request_id",
    "remote_error",
    "replay_key",
    "reply_deadline",
    "safe_token",
    "stop_in_order",
    "stop_task",
    "wire",
    "without_credentials",
    "work_deadline",
]
