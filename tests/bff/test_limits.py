"""The in-flight limiter: per-user and per-instance bounds, and slots given back once."""

from __future__ import annotations

import pytest

from switchboard.bff import InFlightLimiter
from switchboard.orchestrator import OverloadedError


def test_a_slot_is_given_back_once_however_often_it_is_released() -> None:
    limiter = InFlightLimiter(per_user=2, total=3)
    first = limiter.acquire("alice")
    limiter.acquire("alice")
    with pytest.raises(OverloadedError, match="You already have 2"):
        limiter.acquire("alice")
    for _ in range(3):  # the stream's finally, its background task, its finalizer
        first.release()
    assert limiter.in_flight == 1
    limiter.acquire("alice")  # the place came back, and only one
    with pytest.raises(OverloadedError):
        limiter.acquire("alice")


def test_the_instance_bound_counts_every_user() -> None:
    limiter = InFlightLimiter(per_user=5, total=2)
    slots = [limiter.acquire("alice"), limiter.acquire("bob")]
    with pytest.raises(OverloadedError, match="capacity"):
        limiter.acquire("carol")
    slots[1].release()
    limiter.acquire("carol").release()
    slots[0].release()
    assert limiter.in_flight == 0
