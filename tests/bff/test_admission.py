"""Admission raises errors of the one tree, and every reader goes by their scope and code,
never their message: the refusal metric's reason, the HTTP status, Retry-After."""

from __future__ import annotations

import json

import pytest

from switchboard.bff import ApiKeys, InFlightLimiter, Slot, admit, problem_for
from switchboard.orchestrator import (
    ErrorCode,
    OverloadedError,
    OverloadScope,
    RemoteError,
    Settings,
    SwitchboardError,
    UnauthorizedError,
)
from tests.helpers import metric


class Misleading(InFlightLimiter):
    """A limiter whose messages name the other bound: only the scope tells them apart."""

    def __init__(self, scope: OverloadScope) -> None:
        super().__init__(per_user=1, total=1)
        self.scope = scope

    def acquire(self, user: str) -> Slot:
        other = {
            OverloadScope.USER: "This server is at capacity (1 request in flight).",
            OverloadScope.INSTANCE: "You already have 1 request in flight.",
        }
        raise OverloadedError(other[self.scope], scope=self.scope)


@pytest.mark.parametrize(
    ("scope", "reason"),
    [(OverloadScope.USER, "user_limit"), (OverloadScope.INSTANCE, "instance_limit")],
)
def test_refusals_are_counted_by_scope_not_by_message(scope: OverloadScope, reason: str) -> None:
    before = {
        r: metric("switchboard_http_rejected_total", reason=r)
        for r in ("user_limit", "instance_limit")
    }
    with pytest.raises(OverloadedError):
        admit(Misleading(scope), "alice")
    after = {r: metric("switchboard_http_rejected_total", reason=r) for r in before}
    assert {r: after[r] - before[r] for r in before} == {
        r: (1.0 if r == reason else 0.0) for r in before
    }


@pytest.mark.parametrize("scope", [OverloadScope.USER, OverloadScope.INSTANCE])
def test_a_refused_caller_is_told_429_and_to_retry_in_a_second(scope: OverloadScope) -> None:
    response = problem_for(OverloadedError("Busy.", scope=scope))
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"
    assert json.loads(bytes(response.content))["code"] == "overloaded"


def test_a_blocked_client_is_told_how_long_to_wait() -> None:
    response = problem_for(
        OverloadedError("Too many.", scope=OverloadScope.CLIENT, retry_after=7.4)
    )
    assert (response.status_code, response.headers["Retry-After"]) == (429, "7")


def test_an_overloaded_orchestrator_is_503_not_the_callers_429() -> None:
    response = problem_for(RemoteError(ErrorCode.OVERLOADED, "Busy."), correlation_id="conv-a-1")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.headers["X-Correlation-Id"] == "conv-a-1"


def test_unauthorized_is_part_of_the_one_tree() -> None:
    keys = ApiKeys.from_settings(Settings(api_keys="alice:alice-key-0123456789"))
    for header in (None, "Basic abc", "Bearer wrong-key-0000000000"):
        with pytest.raises(UnauthorizedError) as caught:
            keys.authenticate(header)
        assert isinstance(caught.value, SwitchboardError)
        assert caught.value.code is ErrorCode.UNAUTHORIZED
        response = problem_for(caught.value)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
