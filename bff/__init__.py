"""The BFF: Switchboard's HTTP entry point, live progress (SSE) and a small web page."""

from .admission import admit, authenticate
from .app import create_app
from .auth import LOCAL_USER, ApiKeys, AuthRateLimiter
from .context import bind_correlation_id, log_scope
from .disconnect import ClientGone, until_disconnected
from .exceptions import exception_handlers
from .gateway import Gateway, conversation_of, nothing_answered
from .limits import Hold, InFlightLimiter, Slot
from .middleware import metrics_middleware
from .openapi import (
    ContractJsonRenderPlugin,
    ContractSwaggerRenderPlugin,
    contract_schemas,
    openapi_config,
)
from .problems import (
    PROBLEM_MEDIA_TYPE,
    Problem,
    client_gone,
    method_not_allowed,
    problem,
    problem_for,
    problem_for_status,
    problem_responses,
    ready_status,
    status_for,
)
from .process import build_bff, is_loopback, run_bff, trusted_proxies
from .schemas import MAX_BODY, ChatRequest
from .state import BffState
from .tracing import tag_correlation_id, traced

__all__ = [
    "LOCAL_USER",
    "MAX_BODY",
    "PROBLEM_MEDIA_TYPE",
    "ApiKeys",
    "AuthRateLimiter",
    "BffState",
    "ChatRequest",
    "ClientGone",
    "ContractJsonRenderPlugin",
    "ContractSwaggerRenderPlugin",
    "Gateway",
    "Hold",
    "InFlightLimiter",
    "Problem",
    "Slot",
    "admit",
    "authenticate",
    "bind_correlation_id",
    "build_bff",
    "client_gone",
    "contract_schemas",
    "conversation_of",
    "create_app",
    "exception_handlers",
    "is_loopback",
    "log_scope",
    "method_not_allowed",
    "metrics_middleware",
    "nothing_answered",
    "openapi_config",
    "problem",
    "problem_for",
    "problem_for_status",
    "problem_responses",
    "ready_status",
    "run_bff",
    "status_for",
    "tag_correlation_id",
    "traced",
    "trusted_proxies",
    "until_disconnected",
]
