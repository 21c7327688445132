"""Backpressure: a bound on chat requests in flight, per user and per BFF instance.

Past either bound a request is refused at once (429 with ``Retry-After``);
nothing queues without limit.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable

from orchestrator import OverloadedError
from orchestrator.metrics import HTTP_IN_FLIGHT

__all__ = ["InFlightLimiter"]


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

    def acquire(self, user: str) -> None:
        """Take a slot for ``user``.

        Raises:
            OverloadedError: the user or the instance is at its limit.
        """
        if self._by_user[user] >= self.per_user:
            raise OverloadedError(
                f"You already have {self.per_user} requests in flight; wait for one to finish."
            )
        if self._count >= self.total:
            raise OverloadedError(
                f"This server is at capacity ({self.total} requests in flight); retry shortly."
            )
        self._by_user[user] += 1
        self._count += 1

    def release(self, user: str) -> None:
        self._count -= 1
        self._by_user[user] -= 1
        if self._by_user[user] <= 0:
            del self._by_user[user]

    def gauge_values(self, gauge: str) -> Iterable[tuple[tuple[str, ...], float]]:
        return [((), float(self._count))]
