"""The reads a user asks the orchestrator for: the agent catalog, a conversation's history."""

from __future__ import annotations

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath

from switchboard.orchestrator import (
    AgentInfo,
    ErrorCode,
    HistoryReply,
    SwitchboardError,
    is_safe_token,
)

from ..problems import (
    AGENTS_PROBLEMS,
    HISTORY_PROBLEMS,
    problem,
    problem_for,
    problem_responses,
)
from ..state import BffState

__all__ = ["conversation", "list_agents"]


@get(
    "/v1/agents",
    summary="The live agent catalog",
    tags=["agents"],
    responses=problem_responses(AGENTS_PROBLEMS),
)
async def list_agents(
    bff: NamedDependency[BffState], correlation_id: NamedDependency[str]
) -> Response[list[AgentInfo]]:
    try:
        agents = await bff.gateway.agents(correlation_id)
    except SwitchboardError as exc:
        return problem_for(exc, correlation_id=correlation_id)
    return Response(agents)


@get(
    "/v1/conversations/{conversation_id:str}",
    summary="Your own conversation history",
    tags=["conversations"],
    responses=problem_responses(HISTORY_PROBLEMS),
)
async def conversation(
    conversation_id: FromPath[str],
    bff: NamedDependency[BffState],
    user: NamedDependency[str],
    correlation_id: NamedDependency[str],
) -> Response[HistoryReply]:
    if not is_safe_token(conversation_id) or len(conversation_id) > 200:
        return problem(ErrorCode.NOT_FOUND, "No such conversation.", correlation_id=correlation_id)
    try:
        history = await bff.gateway.history(user, conversation_id, correlation_id=correlation_id)
    except SwitchboardError as exc:
        return problem_for(exc, correlation_id=correlation_id)
    if not history.turns:  # another user's conversation looks exactly like a missing one
        return problem(ErrorCode.NOT_FOUND, "No such conversation.", correlation_id=correlation_id)
    return Response(history)
