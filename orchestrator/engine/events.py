"""Progress events of one conversation: published on ``ai.events.<id>`` and streamed back.

Anyone may watch a conversation with ``nats sub 'ai.events.<correlation_id>'``;
the requester that asked for progress (the BFF's SSE stream, ``switchboard ask
--stream``) gets the same events on its reply inbox before the final answer.
Events are best effort: a failure to publish one never fails the conversation.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from ..core.progress import EVENT_TYPES, EventKind, encode_event, event_time

__all__ = ["EventSink"]

log = structlog.get_logger("switchboard.events")

Publish = Callable[[str, bytes], Awaitable[None]]
Progress = Callable[[bytes], Awaitable[bool]]


class EventSink:
    """Numbers, timestamps and sends the events of one conversation."""

    __slots__ = ("_progress", "_publish", "_subject", "correlation_id", "seq")

    def __init__(
        self,
        correlation_id: str,
        *,
        subject: str | None,
        publish: Publish | None,
        progress: Progress | None = None,
    ) -> None:
        self.correlation_id = correlation_id
        self._subject = subject
        self._publish = publish
        self._progress = progress
        self.seq = 0

    @property
    def listening(self) -> bool:
        """Whether anyone gets these events (else the steps need not ask for progress)."""
        return self._publish is not None or self._progress is not None

    async def emit(
        self,
        kind: EventKind,
        *,
        step: str | None = None,
        agent: str | None = None,
        detail: Any = None,
    ) -> None:
        """Send the next event of ``kind``; ``detail`` is that kind's (see ``core.progress``).

        A detail given as builtins of the same shape (a dict for an ErrorInfo) sends the
        same bytes.
        """
        self.seq += 1
        if self._publish is None and self._progress is None:
            return  # nobody to tell: skip the encoding too
        data = encode_event(
            EVENT_TYPES[kind](
                correlation_id=self.correlation_id,
                step=step,
                agent=agent,
                detail=detail,
                ts=event_time(),
                seq=self.seq,
            )
        )
        try:
            if self._publish is not None and self._subject is not None:
                await self._publish(self._subject, data)
            if self._progress is not None:
                await self._progress(data)
        except Exception as exc:  # events are best effort
            log.debug("progress event not sent", kind=kind, error=str(exc))
