"""NATS header names and reply kinds used on every Switchboard message."""

from __future__ import annotations

import enum
from typing import Final

__all__ = [
    "BATCH",
    "BEATS",
    "CALL_BUDGET",
    "CALL_PATH",
    "CANCEL_PATH",
    "CORRELATION_ID",
    "ERROR",
    "HEARTBEAT",
    "KIND",
    "NATS_STATUS",
    "NO_RESPONDERS_STATUS",
    "PROGRESS",
    "REPLY_TO_CANCEL",
    "REQUEST_ID",
    "TIMEOUT",
    "Kind",
]

#: The conversation's correlation id (``conv-{userID}-{uuid4}``), on every message.
CORRELATION_ID: Final = "Correlation-Id"
#: On requests: the time left for the work, in whole milliseconds when it was sent (never a
#: wall-clock instant: clocks disagree). The receiver counts it down on its own monotonic
#: clock from when it reads the message, and drops work whose time is spent.
TIMEOUT: Final = "Switchboard-Timeout"
#: On replies: ``accepted`` | ``heartbeat`` | ``progress`` | ``final`` (missing = final).
KIND: Final = "Switchboard-Kind"
#: On error replies: the error code (the body says the rest).
ERROR: Final = "Switchboard-Error"
#: On requests: heartbeat interval (ms) the requester wants while the work runs.
HEARTBEAT: Final = "Switchboard-Heartbeat"
#: On requests: "batch" when the requester reads batched beats. On ``accepted`` and
#: ``heartbeat`` replies: "batch" when the body names (space-separated) the reply tokens of
#: all the requests of that requester the beat is for; it is sent to one of their reply
#: subjects. One message per requester per tick then keeps hundreds of slow requests alive.
BEATS: Final = "Switchboard-Beats"
#: The value of :data:`BEATS`.
BATCH: Final = "batch"
#: On requests: "1" when the requester wants progress messages before the final reply.
PROGRESS: Final = "Switchboard-Progress"
#: On cancel notices: the reply subject of the one request to cancel.
REPLY_TO_CANCEL: Final = "Switchboard-Cancel-Reply"
#: On requests that may be sent again: one id per logical request, the same on every
#: attempt, so a worker that has it in hand (or answered it lately) attaches the retry to
#: that work instead of doing it twice.
REQUEST_ID: Final = "Switchboard-Request-Id"

#: On agent-to-agent calls: the path of the call, ``<step id>>caller>...>callee``
#: (``s1>trip>clock``); the callee refuses a cycle or a path deeper than its setting.
CALL_PATH: Final = "Switchboard-Call-Path"
#: On agent-to-agent calls: how many calls the callee and everything it calls may still
#: make (a lease out of the caller's budget; what is left comes back with the result).
CALL_BUDGET: Final = "Switchboard-Call-Budget"
#: On conversation-wide cancel notices: cancel only the requests on this call path and
#: below it (a caller that died: its callees, and theirs, stop).
CANCEL_PATH: Final = "Switchboard-Cancel-Path"

#: Header nats-server sets on status messages, and the no-responders status.
NATS_STATUS: Final = "Status"
NO_RESPONDERS_STATUS: Final = "503"


class Kind(enum.StrEnum):
    """What a reply message is; a request gets any number of non-final ones first."""

    #: A worker picked the request up (queue wait is over; work time starts).
    ACCEPTED = "accepted"
    #: The worker is still on it.
    HEARTBEAT = "heartbeat"
    #: A progress message with a payload (e.g. a ProgressEvent).
    PROGRESS = "progress"
    #: The answer (or an error reply); ends the request.
    FINAL = "final"
