"""Absolute deadlines that travel between processes.

One deadline is set where a request enters the system (the BFF, the CLI) and
travels in the ``Switchboard-Deadline`` header as absolute unix time in ms.
Every hop runs under it and asks how much time is left; nothing invents a
fresh timeout of its own (trio's ``fail_at`` is the model).
"""

from __future__ import annotations

import asyncio
import math
import time

from .errors import DecodeError

__all__ = ["MAX_SECONDS", "REPLY_MARGIN", "Deadline", "reply_deadline", "work_deadline"]

#: The longest a deadline may be set from now: a year (the header carries up to 16 digits
#: of milliseconds; an infinite or NaN timeout would not survive the trip).
MAX_SECONDS = 365 * 24 * 3600.0

#: How much longer a caller waits for a reply than the budget it gives the worker, in
#: seconds. A worker that runs out of budget still answers -- a partial answer, or its own
#: timeout error that says what did not finish -- and that answer must reach the caller
#: before the caller gives up with a bare "timed out". The margin pays for the reply's
#: trip back, a backlog in front of the worker, and a little clock skew. It is decided here
#: only: the caller adds it (:func:`reply_deadline`), the worker takes it back
#: (:func:`work_deadline`).
REPLY_MARGIN = 2.0


class Deadline:
    """A point in wall-clock time (unix seconds) after which work is worthless."""

    __slots__ = ("at",)

    def __init__(self, at: float) -> None:
        self.at = at

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        """The deadline ``seconds`` from now (0 or less: already passed).

        Raises:
            ValueError: ``seconds`` is NaN, infinite or more than :data:`MAX_SECONDS`.
        """
        if not seconds <= MAX_SECONDS:  # also NaN
            raise ValueError(
                f"A timeout of {seconds} s cannot be a deadline (at most {MAX_SECONDS:g} s)."
            )
        return cls(time.time() + seconds)

    @classmethod
    def from_ms(cls, ms: int) -> Deadline:
        return cls(ms / 1000.0)

    @classmethod
    def from_header(cls, value: str) -> Deadline:
        """Parse a ``Switchboard-Deadline`` header value.

        Raises:
            DecodeError: the value is not a whole number of milliseconds.
        """
        if not (value.isascii() and value.isdigit()) or len(value) > 16:
            raise DecodeError(
                f"The Switchboard-Deadline header {value[:40]!r} is not unix time in milliseconds."
            )
        ms = int(value)
        if ms <= 0:
            raise DecodeError(f"The Switchboard-Deadline header {ms} is not a positive time.")
        return cls(ms / 1000.0)

    @property
    def ms(self) -> int:
        """Absolute unix time in ms (the header and ``deadline_ms`` field value)."""
        return int(self.at * 1000)

    def header(self) -> str:
        """The ``Switchboard-Deadline`` header value: absolute unix time in whole ms.

        Raises:
            ValueError: the deadline is NaN, infinite, before 1970 or too far to send (a
                ``Deadline`` built by hand; :meth:`after` never makes one).
        """
        ms = self.at * 1000
        if not 0 <= ms < 1e16:  # also NaN; 16 digits is what from_header accepts
            raise ValueError(f"A deadline at {self.at!r} s (unix time) cannot be sent.")
        return str(int(ms))

    def remaining(self) -> float:
        """Seconds left (negative once passed)."""
        return self.at - time.time()

    @property
    def expired(self) -> bool:
        return time.time() >= self.at

    def loop_time(self, loop: asyncio.AbstractEventLoop | None = None) -> float:
        """This deadline on the event loop's monotonic clock (for ``call_at``/``timeout_at``)."""
        loop = loop or asyncio.get_running_loop()
        return loop.time() + (self.at - time.time())

    def earlier(self, seconds: float | None) -> Deadline:
        """This deadline, or ``seconds`` from now if that comes first.

        Raises:
            ValueError: ``seconds`` is NaN.
        """
        if seconds is None:
            return self
        if math.isnan(seconds):
            raise ValueError("A timeout of nan s cannot be a deadline.")
        if seconds >= MAX_SECONDS:
            return self
        other = time.time() + seconds
        return self if self.at <= other else Deadline(other)

    def timeout(self) -> asyncio.Timeout:
        """``async with deadline.timeout():`` raises TimeoutError when it passes."""
        return asyncio.timeout_at(self.loop_time())

    def __lt__(self, other: Deadline) -> bool:
        return self.at < other.at

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Deadline) and other.at == self.at

    def __hash__(self) -> int:
        return hash(self.at)

    def __repr__(self) -> str:
        return f"<Deadline in {self.remaining():.3f}s (at {self.ms} ms)>"


def reply_deadline(budget: float) -> Deadline:
    """The caller's deadline for work given ``budget`` seconds: budget plus :data:`REPLY_MARGIN`.

    Use it where a request with a time budget is sent (the conversation client); the
    budget itself travels in the request (``timeout_s``).

    Raises:
        ValueError: ``budget`` is NaN, infinite or more than :data:`MAX_SECONDS`.
    """
    return Deadline.after(budget + REPLY_MARGIN)


def work_deadline(deadline: Deadline, budget: float | None = None) -> Deadline:
    """The worker's deadline for a request that the caller waits for until ``deadline``.

    :data:`REPLY_MARGIN` before the caller's deadline (half the time left, when less than
    twice the margin is left), so the worker's answer arrives while the caller still
    waits; and no later than ``budget`` seconds from now, the budget the request asked
    for, if any.

    Raises:
        ValueError: ``budget`` is NaN.
    """
    margin = min(REPLY_MARGIN, max(0.0, deadline.remaining()) / 2)
    return Deadline(deadline.at - margin).earlier(budget)
