"""Backpressure: a bound on chat requests in flight, per user and per BFF instance.

Past either bound a request is refused at once (429 with ``Retry-After``);
nothing queues without limit. A request holds a :class:`Slot` until it is done.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable

from switchboard.orchestrator import OverloadedError, OverloadScope
from switchboard.orchestrator.metrics import HTTP_IN_FLIGHT

__all__ = ["InFlightLimiter", "Slot"]


class InFlightLimiter:
    def __init__(self, *, per_user: int, total: int) -> None:
        self.per_user = per_user
        self.total = total
        self._by_user: collections.Counter[str] = collections.Counter()
        self._count = 0
        HTTP_IN_FLIGHT.track(self)

    @property
    def in_flight(self) -> int:
        return self._count

    def acquire(self, user: str) -> Slot:
        """Take a slot for ``user``; give it back with :meth:`Slot.release`.

        Raises:
            OverloadedError: the user (scope ``USER``) or the instance (scope
                ``INSTANCE``) is at its limit.
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
        self._by_user[user] += 1
        self._count += 1
        return Slot(self, user)

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
