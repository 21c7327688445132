"""Switchboard agents: the SDK (write an agent in a few lines) and the built-in agents."""

from .builtin import BUILTIN_NAMES, BUILTIN_PATTERNS, builtin_agents
from .calls import Caller
from .client import call_agent, serving
from .loader import load_agents
from .permissions import agent_user, agent_users, inbox_prefix, render_auth
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
    "agent_user",
    "agent_users",
    "builtin_agents",
    "call_agent",
    "inbox_prefix",
    "load_agents",
    "render_auth",
    "serving",
]
