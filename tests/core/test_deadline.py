"""Deadlines and the one reply margin: the caller adds it, the worker takes it back."""

from __future__ import annotations

import time

import pytest

from switchboard.orchestrator.core import REPLY_MARGIN, Deadline, reply_deadline, work_deadline


def test_the_caller_waits_the_budget_plus_the_margin() -> None:
    before = time.monotonic()
    deadline = reply_deadline(10.0)
    after = time.monotonic()
    assert before + 10.0 + REPLY_MARGIN <= deadline.at <= after + 10.0 + REPLY_MARGIN


def test_the_worker_finishes_the_margin_before_the_callers_deadline() -> None:
    caller = Deadline.after(30.0)
    assert work_deadline(caller).at == pytest.approx(caller.at - REPLY_MARGIN)


def test_a_budget_that_ends_earlier_wins() -> None:
    caller = Deadline.after(30.0)
    before = time.monotonic()
    work = work_deadline(caller, 5.0)
    assert before + 5.0 <= work.at <= time.monotonic() + 5.0


def test_a_request_that_waited_in_a_backlog_loses_the_wait_not_the_margin() -> None:
    # Sent with a 10 s budget, picked up 4 s later: the re-anchored budget would end 2 s
    # after the caller gave up; the caller's deadline less the margin holds instead.
    caller = Deadline.after(10.0 + REPLY_MARGIN - 4.0)
    work = work_deadline(caller, 10.0)
    assert work.at == pytest.approx(caller.at - REPLY_MARGIN)


def test_with_less_than_twice_the_margin_left_the_worker_gets_half() -> None:
    caller = Deadline.after(1.0)
    work = work_deadline(caller)
    assert 0.45 <= work.remaining() <= 0.5
    gone = Deadline.after(-1.0)
    assert work_deadline(gone) == gone


def test_a_nan_budget_is_refused() -> None:
    with pytest.raises(ValueError, match="nan"):
        work_deadline(Deadline.after(10.0), float("nan"))
