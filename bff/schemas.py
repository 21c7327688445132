"""HTTP request bodies (the replies are the wire messages themselves)."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta, Struct

from switchboard.orchestrator import MAX_MESSAGE_CHARS, AgentName, CorrelationId
from switchboard.orchestrator.core.codec import NOT_BLANK

__all__ = ["MAX_BODY", "ChatRequest"]

#: A chat body may carry a message of MAX_MESSAGE_CHARS however its client escapes it: a
#: JSON encoder that writes ASCII only (Python's json, so ``requests``) takes 6 bytes per
#: character (\uXXXX), 12 for one outside the BMP. Plus room for the other fields.
MAX_BODY = 12 * MAX_MESSAGE_CHARS + 64 * 1024


class ChatRequest(Struct, kw_only=True):
    """``POST /v1/chat`` and ``POST /v1/chat/stream``.

    Unknown fields are ignored (as in every Switchboard message: newer clients keep working).
    """

    message: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=MAX_MESSAGE_CHARS,
            pattern=NOT_BLANK,  # not only blanks: as empty as an empty one
            description="The question or task (not blank; at most 32000 characters).",
        ),
    ]
    conversation_id: (
        Annotated[
            CorrelationId,
            Meta(
                description="Continue this conversation (its earlier turns are remembered). "
                "Without it, the request starts a new conversation named by its own "
                "correlation id; the reply's conversation_id says which, for the next "
                "request and GET /v1/conversations/{conversation_id}."
            ),
        ]
        | None
    ) = None
    agents: Annotated[
        list[AgentName],
        Meta(max_length=64, description="Only plan with these agents (empty: any agent)."),
    ] = []
    timeout_s: Annotated[
        float,
        Meta(ge=0, le=600, description="Seconds the answer may take (0: the server's default)."),
    ] = 0.0
