"""Switchboard agents: the SDK (write an agent in a few lines) and the built-in agents."""

from .builtin import BUILTIN_NAMES, BUILTIN_PATTERNS, builtin_agents
from .calls import Caller
from .client import call_agent, serving
from .loader import load_agents
from .sdk import Agent, AgentHandler, TaskContext, agent
from .worker import AgentWorker

__all__ = [
    "BUILTIN_NAMES",
    "BUILTIN_PATTERNS",
    "Agent",
    "AgentHandler",
    "AgentWorker",
    "Caller",
    "TaskContext",
    "agent",
    "builtin_agents",
    "call_agent",
    "load_agents",
    "serving",
]
