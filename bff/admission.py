"""Admission: who the caller is, and whether there is room for its request.

Both steps raise errors of Switchboard's one tree, answered by the exception
handlers through :mod:`~switchboard.bff.problems`: ``UnauthorizedError`` (401)
for a bad credential, ``OverloadedError`` (429) when a bound is reached. The
error's ``scope`` says which bound -- a client address's failed logins, a
user's requests in flight, the instance's -- and names the reason every
refusal is counted under; nothing here reads an error's message.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.di import NamedDependency

from switchboard.orchestrator import OverloadedError, OverloadScope, UnauthorizedError
from switchboard.orchestrator.metrics import HTTP_REJECTED

from .limits import InFlightLimiter, Slot
from .state import BffState

__all__ = ["admit", "authenticate"]

#: The ``reason`` label of ``switchboard_http_rejected_total`` for each overload scope.
_REASONS: dict[OverloadScope, str] = {
    OverloadScope.CLIENT: "auth_rate_limit",
    OverloadScope.USER: "user_limit",
    OverloadScope.INSTANCE: "instance_limit",
}


def _client(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


async def authenticate(request: Request[Any, Any, Any], bff: NamedDependency[BffState]) -> str:
    """The caller's user id, from ``Authorization: Bearer <key>`` (dependency ``user``).

    Raises:
        OverloadedError: the client's address failed too often (scope ``CLIENT``),
            whatever it presents now.
        UnauthorizedError: no valid key; counted against the client's address.
    """
    client = _client(request)
    try:
        bff.auth_limiter.check(client)
    except OverloadedError as exc:
        _count_refusal(exc)
        raise
    try:
        return bff.keys.authenticate(request.headers.get("authorization"))
    except UnauthorizedError:
        bff.auth_limiter.failed(client)
        HTTP_REJECTED.labels("unauthorized").inc()
        raise


def admit(limiter: InFlightLimiter, user: str) -> Slot:
    """A place in flight for one of ``user``'s requests; the caller releases it.

    Raises:
        OverloadedError: the user or the instance is at its limit (counted by scope).
    """
    try:
        return limiter.acquire(user)
    except OverloadedError as exc:
        _count_refusal(exc)
        raise


def _count_refusal(exc: OverloadedError) -> None:
    HTTP_REJECTED.labels(_REASONS[exc.scope]).inc()
