"""Deadlines on this process's monotonic clock, sent between processes as the time left.

One deadline is set where a request enters the system (the BFF, the CLI).
Inside a process it is a point on the monotonic clock: every hop runs under
it and asks how much time is left; nothing invents a fresh timeout of its own
(trio's ``fail_at`` is the model). Between processes it travels as the
*remaining* time, in whole milliseconds, in the ``Switchboard-Timeout``
header, and the receiver turns it back into a deadline on its own clock the
moment it reads the message (gRPC's ``grpc-timeout`` does the same). Clocks of
different machines are never compared: a part whose wall clock is minutes off
can neither expire nor stretch anyone's work. Wall-clock time appears only
where a person reads it (event timestamps).
"""

from __future__ import annotations

import asyncio
import math
import time

from .errors import DecodeError

__all__ = ["MAX_SECONDS", "REPLY_MARGIN", "Deadline", "reply_deadline", "work_deadline"]

#: The longest a deadline may be set from now: a year (the header carries at most 11 digits
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
    """A point on this process's monotonic clock (``time.monotonic()``) after which work is
    worthless."""

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
        return cls(time.monotonic() + seconds)

    @classmethod
    def from_header(cls, value: str) -> Deadline:
        """The deadline a ``Switchboard-Timeout`` header gives, read now.

        Call it when the message is read: the time the message spent on the
        wire is not known to this process (as with gRPC), and the time it waits
        here afterwards counts against it. ``0`` is a budget already spent.

        Raises:
            DecodeError: the value is not a whole number of milliseconds, or
                more than :data:`MAX_SECONDS`.
        """
        if not (value.isascii() and value.isdigit()) or len(value) > 11:
            raise DecodeError(
                f"The Switchboard-Timeout header {value[:40]!r} is not a number of milliseconds "
                f"(0 to {int(MAX_SECONDS * 1000)})."
            )
        ms = int(value)
        if ms > MAX_SECONDS * 1000:
            raise DecodeError(
                f"The Switchboard-Timeout header {ms} is over the limit of "
                f"{int(MAX_SECONDS * 1000)} milliseconds."
            )
        return cls(time.monotonic() + ms / 1000.0)

    def header(self) -> str:
        """The ``Switchboard-Timeout`` value: whole milliseconds left now (0 once passed).

        Raises:
            ValueError: the deadline is NaN, infinite or too far to send (a ``Deadline``
                built by hand; :meth:`after` never makes one).
        """
        ms = self.remaining() * 1000
        if not ms <= MAX_SECONDS * 1000:  # also NaN
            raise ValueError(f"A deadline {self.remaining()!r} s away cannot be sent.")
        return str(int(ms)) if ms > 0 else "0"

    def remaining(self) -> float:
        """Seconds left (negative once passed)."""
        return self.at - time.monotonic()

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.at

    def loop_time(self, loop: asyncio.AbstractEventLoop | None = None) -> float:
        """This deadline on the event loop's clock (for ``call_at``/``timeout_at``)."""
        loop = loop or asyncio.get_running_loop()
        return loop.time() + (self.at - time.monotonic())

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
        other = time.monotonic() + seconds
        return self if self.at <= other else Deadline(other)

    def __lt__(self, other: Deadline) -> bool:
        return self.at < other.at

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Deadline) and other.at == self.at

    def __hash__(self) -> int:
        return hash(self.at)

    def __repr__(self) -> str:
        return f"<Deadline in {self.remaining():.3f}s>"


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
