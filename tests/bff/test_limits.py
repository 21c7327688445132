"""The in-flight and failed-login limiters: their bounds, their scopes, slots given back once."""

from __future__ import annotations

import pytest

from switchboard.bff import AuthRateLimiter, InFlightLimiter
from switchboard.orchestrator import OverloadedError, OverloadScope


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


def test_answers_held_past_the_byte_budget_refuse_new_chats() -> None:
    limiter = InFlightLimiter(per_user=10, total=10, total_bytes=1_000_000)
    slot = limiter.acquire("alice")
    held = [limiter.hold(600_000), limiter.hold(500_000)]  # answers not yet written
    slot.release()
    assert limiter.in_flight == 0 and limiter.held_bytes == 1_100_000
    with pytest.raises(OverloadedError, match="1100000 bytes of answers") as refused:
        limiter.acquire("bob")
    assert refused.value.scope is OverloadScope.INSTANCE
    for _ in range(2):  # the response's background task, then its finalizer
        held[0].release()
    assert limiter.held_bytes == 500_000
    limiter.acquire("bob").release()


def test_each_bound_says_its_scope() -> None:
    limiter = InFlightLimiter(per_user=1, total=2)
    limiter.acquire("alice")
    with pytest.raises(OverloadedError) as mine:
        limiter.acquire("alice")
    assert mine.value.scope is OverloadScope.USER
    limiter.acquire("bob")
    with pytest.raises(OverloadedError) as everyone:
        limiter.acquire("carol")
    assert everyone.value.scope is OverloadScope.INSTANCE
    assert mine.value.retry_after is everyone.value.retry_after is None


def test_a_client_that_failed_too_often_is_refused_for_a_while() -> None:
    limiter = AuthRateLimiter(max_failures=2, window=30)
    limiter.check("10.0.0.1")  # not blocked
    limiter.failed("10.0.0.1")
    limiter.failed("10.0.0.1")
    with pytest.raises(OverloadedError) as caught:
        limiter.check("10.0.0.1")
    assert caught.value.scope is OverloadScope.CLIENT
    assert caught.value.retry_after is not None and 29 < caught.value.retry_after <= 30
    limiter.check("10.0.0.2")  # another address is not


def test_a_hold_dropped_unreleased_gives_its_bytes_back() -> None:
    # A response whose sending failed never runs its background task: it is dropped.
    limiter = InFlightLimiter(per_user=10, total=10, total_bytes=1_000_000)
    hold = limiter.hold(2_000_000)
    with pytest.raises(OverloadedError):
        limiter.acquire("alice")
    del hold
    assert limiter.held_bytes == 0
    limiter.acquire("alice").release()
