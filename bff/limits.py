"""Backpressure: a bound on chat requests in flight, per user and per BFF instance.

Past either bound a request is refused at once (429 with ``Retry-After``);
nothing queues without limit. A request holds a :class:`Slot` until it is done.

Counting requests is not enough when answers are large: a few hundred answers of a
megabyte each, waiting for slow HTTP clients, are what one small answer is a thousand
times over. Each answer received is therefore also held by size (:meth:`hold`) until
it is written to its client; while the instance holds ``total_bytes`` or more, new
chats are refused as for count.
"""

from __future__ import annotations

import collections
import weakref
from collections.abc import Iterable

from switchboard.orchestrator import OverloadedError, OverloadScope
from switchboard.orchestrator.metrics import HTTP_IN_FLIGHT

__all__ = ["Hold", "InFlightLimiter", "Slot"]

#: Bytes of answers one BFF instance holds for its clients before refusing new chats.
DEFAULT_TOTAL_BYTES = 64 * 1024 * 1024


class InFlightLimiter:
    def __init__(
        self, *, per_user: int, total: int, total_bytes: int = DEFAULT_TOTAL_BYTES
    ) -> None:
        self.per_user = per_user
        self.total = total
        self.total_bytes = total_bytes
        self._by_user: collections.Counter[str] = collections.Counter()
        self._count = 0
        self._bytes = 0
        HTTP_IN_FLIGHT.track(self)

    @property
    def in_flight(self) -> int:
        return self._count

    @property
    def held_bytes(self) -> int:
        """Bytes of answers received and not yet written to their clients."""
        return self._bytes

    def hold(self, size: int) -> Hold:
        """Count ``size`` bytes of an answer until :meth:`Hold.release` (once it is sent)."""
        self._bytes += size
        return Hold(self, size)

    def acquire(self, user: str) -> Slot:
        """Take a slot for ``user``; give it back with :meth:`Slot.release`.

        Raises:
            OverloadedError: the user (scope ``USER``) or the instance (scope
                ``INSTANCE``: requests, or bytes of answers held) is at its limit.
        """
        if self._by_user[user] >= self.per_user:
            raise OverloadedError(
                f"You already have {self.per_user} requests in flight; wait for one to finish.",
                scope=OverloadScope.USER,
            )
        if self._count >= self.total:
            raise OverloadedError(
                f"This server is at capacity ({self.total} requests in flight); retry shortly.",
                scope=OverloadScope.INSTANCE,
            )
        if self._bytes >= self.total_bytes:
            raise OverloadedError(
                f"This server holds {self._bytes} bytes of answers not yet sent (limit "
                f"{self.total_bytes}); retry shortly.",
                scope=OverloadScope.INSTANCE,
            )
        self._by_user[user] += 1
        self._count += 1
        return Slot(self, user)

    def _give_back(self, size: int) -> None:
        self._bytes -= size

    def _release(self, user: str) -> None:
        self._count -= 1
        self._by_user[user] -= 1
        if self._by_user[user] <= 0:
            del self._by_user[user]

    def gauge_values(self, gauge: str) -> Iterable[tuple[tuple[str, ...], float]]:
        return [((), float(self._count))]


class Slot:
    """One request's place in an :class:`InFlightLimiter`.

    :meth:`release` may be called any number of times, from every path that ends the
    request (a response sent, a stream closed, a stream dropped before it started);
    the place is given back once.
    """

    __slots__ = ("__weakref__", "_limiter", "_user")

    def __init__(self, limiter: InFlightLimiter, user: str) -> None:
        self._limiter: InFlightLimiter | None = limiter
        self._user = user

    def release(self) -> None:
        limiter, self._limiter = self._limiter, None
        if limiter is not None:
            limiter._release(self._user)


class Hold:
    """The bytes of one answer in an :class:`InFlightLimiter`, until it is sent.

    :meth:`release` may be called any number of times; the bytes are given back once,
    and also when the hold is dropped unreleased (a response whose sending failed never
    runs its background task).
    """

    __slots__ = ("__weakref__", "_finalizer")

    def __init__(self, limiter: InFlightLimiter, size: int) -> None:
        self._finalizer = weakref.finalize(self, limiter._give_back, size)

    def release(self) -> None:
        self._finalizer()  # runs the release once, now or never again
