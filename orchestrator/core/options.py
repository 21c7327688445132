"""How a request is sent, besides where to and by when: one struct for :class:`Requester`.

The deadline is the primary argument of every request (``deadline=``); the
rest, rarely changed from one request to the next, is a
:class:`RequestOptions` made once and passed along (``options=``). A caller
that sends many requests the same way (the executor to its agents, the
BFF to the orchestrator) builds its options once.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["RequestOptions", "new_request_id"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestOptions:
    """Options of one request, besides its deadline.

    ``target`` labels metrics and errors (default: the subject; keep it
    bounded, e.g. an agent name). ``headers`` are added to the request's.
    ``heartbeat`` (seconds) asks the worker to acknowledge the request and
    heartbeat at that interval; with it, ``accept_timeout`` bounds the wait
    for a worker to take the request and ``silence_timeout`` (default three
    heartbeats) notices a worker that went quiet, both long before the
    deadline. ``request_id`` names the logical request: a caller that may send it
    again passes the same id on every attempt (``Switchboard-Request-Id``), and the
    worker attaches a retry to the first attempt's work instead of running it twice
    (see :func:`new_request_id`).
    """

    target: str | None = None
    headers: Mapping[str, str] | None = None
    accept_timeout: float | None = None
    heartbeat: float | None = None
    silence_timeout: float | None = None
    request_id: str | None = None

    def attempt_of(self, request_id: str) -> RequestOptions:
        """These options for the attempts of one logical request (same id on each)."""
        return dataclasses.replace(self, request_id=request_id)


def new_request_id() -> str:
    """A fresh request id: 128 random bits, a subject- and KV-key-safe token."""
    return uuid.uuid4().hex


#: The options of a request that sets none.
DEFAULT_OPTIONS = RequestOptions()
