"""The BFF: Switchboard's HTTP entry point, live progress (SSE) and a small web page."""

from .app import BffState, create_app, metrics_middleware
from .auth import LOCAL_USER, ApiKeys, AuthRateLimiter, Unauthorized
from .gateway import Gateway
from .limits import InFlightLimiter, Slot
from .openapi import ContractJsonRenderPlugin, ContractSwaggerRenderPlugin, contract_schemas
from .problems import PROBLEM_MEDIA_TYPE, Problem, problem, status_for
from .process import build_bff, is_loopback, run_bff, trusted_proxies
from .schemas import ChatRequest

__all__ = [
    "LOCAL_USER",
    "PROBLEM_MEDIA_TYPE",
    "ApiKeys",
    "AuthRateLimiter",
    "BffState",
    "ChatRequest",
    "ContractJsonRenderPlugin",
    "ContractSwaggerRenderPlugin",
    "Gateway",
    "InFlightLimiter",
    "Problem",
    "Slot",
    "Unauthorized",
    "build_bff",
    "contract_schemas",
    "create_app",
    "is_loopback",
    "metrics_middleware",
    "problem",
    "run_bff",
    "status_for",
    "trusted_proxies",
]
