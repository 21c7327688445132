"""What the handlers share: one :class:`BffState` per BFF process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from switchboard.orchestrator import VERSION

from .auth import ApiKeys, AuthRateLimiter
from .gateway import Gateway
from .limits import InFlightLimiter

__all__ = ["BffState"]


@dataclass
class BffState:
    """Everything the handlers need (one per process; dependency ``bff``)."""

    gateway: Gateway
    keys: ApiKeys
    limiter: InFlightLimiter
    auth_limiter: AuthRateLimiter
    ready: Callable[[], dict[str, bool]]
    version: str = VERSION
