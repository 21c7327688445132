"""Switchboard's one exception tree.

Every error a caller can see is a :class:`SwitchboardError` and carries a
wire ``code`` from one vocabulary (``ErrorCode``), used alike in NATS error
replies and in HTTP problem bodies::

    SwitchboardError                    internal
    ├── ConfigurationError              internal
    ├── UnauthorizedError               unauthorized  (no valid credential)
    ├── DecodeError                     bad_request   (.path: msgspec's ``$.path``)
    │   └── PayloadTooLargeError        too_large
    ├── RequestError                    (.subject, .correlation_id)
    │   ├── RequestTimeoutError         timeout       (also the builtin TimeoutError)
    │   ├── NoRespondersError           no_responders
    │   ├── OverloadedError             overloaded    (.scope: whose bound; .retry_after)
    │   ├── ShuttingDownError           shutting_down
    │   ├── ConnectionClosedError       internal
    │   └── RemoteError                 the code the remote side sent
    ├── ConversationCancelledError      cancelled     (an operator cancelled it)
    ├── AnswerTooLargeError             too_large     (.size, .limit: the answer's bytes)
    ├── PlanError                       bad_request
    ├── AgentError                      agent_error
    ├── LLMError                        llm_error
    └── CallRefusedError                (an agent-to-agent call refused before it ran)
        ├── CallCycleError              call_cycle     (the callee is already on the path)
        ├── CallDepthError              call_depth     (deeper than max_call_depth)
        ├── CallBudgetError             call_budget    (the conversation's calls are spent)
        └── CallForbiddenError          call_forbidden (the caller did not declare it)

Messages are full sentences with their context, safe to show to a caller:
they never contain a ``repr`` of a foreign exception. Foreign exceptions are
translated at exactly one boundary each (NATS in ``connection``, msgspec in
``codec``) and chained with ``raise ... from exc``.
"""

from __future__ import annotations

import enum

__all__ = [
    "AgentError",
    "AnswerTooLargeError",
    "CallBudgetError",
    "CallCycleError",
    "CallDepthError",
    "CallForbiddenError",
    "CallRefusedError",
    "ConfigurationError",
    "ConnectionClosedError",
    "ConversationCancelledError",
    "DecodeError",
    "ErrorCode",
    "LLMError",
    "NoRespondersError",
    "OverloadScope",
    "OverloadedError",
    "PayloadTooLargeError",
    "PlanError",
    "RemoteError",
    "RequestError",
    "RequestTimeoutError",
    "ShuttingDownError",
    "SwitchboardError",
    "TimeoutPhase",
    "UnauthorizedError",
]


class ErrorCode(enum.StrEnum):
    """The error vocabulary shared by NATS replies and HTTP problem bodies."""

    BAD_REQUEST = "bad_request"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    NO_RESPONDERS = "no_responders"
    TIMEOUT = "timeout"
    OVERLOADED = "overloaded"
    TOO_LARGE = "too_large"
    AGENT_ERROR = "agent_error"
    LLM_ERROR = "llm_error"
    SHUTTING_DOWN = "shutting_down"
    INTERNAL = "internal"
    #: Extension of DESIGN.md's vocabulary: an operator cancelled the conversation
    #: (``ai.cancel.<id>``); without it the requester could only time out.
    CANCELLED = "cancelled"
    #: Agent-to-agent calls refused before anything was sent (``ctx.call``; see
    #: ``core.calls``): the callee is already on the call path, the path is as deep as
    #: ``max_call_depth`` allows, the conversation's budget of calls is spent, or the
    #: caller did not declare the callee (``@agent(..., calls=(...))``).
    CALL_CYCLE = "call_cycle"
    CALL_DEPTH = "call_depth"
    CALL_BUDGET = "call_budget"
    CALL_FORBIDDEN = "call_forbidden"

    @classmethod
    def parse(cls, value: str) -> ErrorCode:
        """Map a wire code to the enum; unknown codes (a newer peer) become ``internal``."""
        try:
            return cls(value)
        except ValueError:
            return cls.INTERNAL


#: Transient failures a caller may retry (elsewhere or a little later).
RETRYABLE_CODES = frozenset(
    {ErrorCode.NO_RESPONDERS, ErrorCode.SHUTTING_DOWN, ErrorCode.OVERLOADED}
)


class SwitchboardError(Exception):
    """Root of every error Switchboard raises on purpose."""

    code: ErrorCode = ErrorCode.INTERNAL

    @property
    def retryable(self) -> bool:
        """Whether the same call may succeed if tried again (elsewhere or later)."""
        return self.code in RETRYABLE_CODES


class ConfigurationError(SwitchboardError):
    """A setting, flag or environment variable has a value that cannot work."""


class UnauthorizedError(SwitchboardError):
    """No valid credential was presented: missing, malformed or unknown (HTTP 401)."""

    code = ErrorCode.UNAUTHORIZED


class DecodeError(SwitchboardError):
    """A payload could not be decoded into the expected message type.

    ``path`` is msgspec's location of the offending field (``$.steps[0].id``),
    or ``None`` when the payload is not valid JSON at all.
    """

    code = ErrorCode.BAD_REQUEST

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class PayloadTooLargeError(DecodeError):
    """A payload is larger than the configured limit; it was not parsed."""

    code = ErrorCode.TOO_LARGE

    def __init__(self, message: str, *, size: int, limit: int) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit


class RequestError(SwitchboardError):
    """A request over NATS failed; names the subject and the correlation id."""

    def __init__(
        self, message: str, *, subject: str | None = None, correlation_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.subject = subject
        self.correlation_id = correlation_id


class TimeoutPhase(enum.StrEnum):
    """Which deadline of a request expired."""

    #: Nobody picked the request up in time (queue wait, schedule-to-start).
    NOT_ACCEPTED = "not_accepted"
    #: A worker took the request, then went silent (no heartbeat).
    SILENT = "silent"
    #: The request's overall deadline passed.
    DEADLINE = "deadline"


class RequestTimeoutError(RequestError, TimeoutError):
    """A request's deadline expired; ``phase`` says which one.

    It is also the builtin ``TimeoutError`` (so ``asyncio.TimeoutError``), as
    nats-py does, so generic timeout handling catches it.
    """

    code = ErrorCode.TIMEOUT

    def __init__(
        self,
        message: str,
        *,
        subject: str | None = None,
        correlation_id: str | None = None,
        phase: TimeoutPhase = TimeoutPhase.DEADLINE,
    ) -> None:
        super().__init__(message, subject=subject, correlation_id=correlation_id)
        self.phase = phase

    @property
    def retryable(self) -> bool:
        """Only when nobody took the request: another worker may (a frozen or wedged one
        still holds its subscription). The requester's cancel notice withdraws the first
        copy, wherever it waits."""
        return self.phase is TimeoutPhase.NOT_ACCEPTED

    @property
    def worker_lost(self) -> bool:
        """The worker may have started work that nobody waits for now (its own calls to
        other workers): it went silent, or it died before its first beat (not accepted)."""
        return self.phase in (TimeoutPhase.SILENT, TimeoutPhase.NOT_ACCEPTED)


class NoRespondersError(RequestError):
    """No process subscribes to the subject (NATS status 503)."""

    code = ErrorCode.NO_RESPONDERS


class OverloadScope(enum.StrEnum):
    """Whose bound an :class:`OverloadedError` hit: it says who may retry, and when."""

    #: This process as a whole, every caller together (pending requests, in-flight
    #: requests, a full outbound buffer): anyone may succeed a little later.
    INSTANCE = "instance"
    #: One user's share: that user must wait for one of their own requests to finish.
    USER = "user"
    #: One client address (too many failed authentications): it waits ``retry_after``.
    CLIENT = "client"


class OverloadedError(RequestError):
    """A bound was reached (pending requests, in-flight work); retry later.

    ``scope`` says whose bound it was, for a reader to act on (a metric's
    label, an HTTP answer) without parsing the message; ``retry_after`` is
    the seconds until a retry may succeed, when the bound knows it.
    """

    code = ErrorCode.OVERLOADED

    def __init__(
        self,
        message: str,
        *,
        subject: str | None = None,
        correlation_id: str | None = None,
        scope: OverloadScope = OverloadScope.INSTANCE,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, subject=subject, correlation_id=correlation_id)
        self.scope = scope
        self.retry_after = retry_after


class ShuttingDownError(RequestError):
    """The process (or the peer) is shutting down and takes no new work."""

    code = ErrorCode.SHUTTING_DOWN


class ConnectionClosedError(RequestError):
    """The NATS connection is closed for good; nothing can be sent."""


class RemoteError(RequestError):
    """The remote side answered with an error reply.

    ``code`` is the wire code it sent (unknown codes read as ``internal``);
    the message is the remote side's safe message.
    """

    def __init__(
        self,
        code: ErrorCode | str,
        message: str,
        *,
        subject: str | None = None,
        correlation_id: str | None = None,
    ) -> None:
        super().__init__(message, subject=subject, correlation_id=correlation_id)
        self.code = ErrorCode.parse(code) if isinstance(code, str) else code


class ConversationCancelledError(SwitchboardError):
    """The conversation was cancelled on purpose (``ai.cancel.<correlation_id>``)."""

    code = ErrorCode.CANCELLED


class AnswerTooLargeError(SwitchboardError):
    """An answer is larger than a reply may carry (``too_large``: the answer, not the
    request; the BFF answers 502, as for any upstream failure)."""

    code = ErrorCode.TOO_LARGE

    def __init__(self, message: str, *, size: int, limit: int) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit


class PlanError(SwitchboardError):
    """A plan is invalid: unknown agent, cycle, duplicate step, too many steps."""

    code = ErrorCode.BAD_REQUEST


class AgentError(SwitchboardError):
    """An agent could not do its task; the message is shown to the user.

    Raise it from an agent handler to fail the step with a clear, safe message
    (any other exception is reported as ``internal`` and logged).
    """

    code = ErrorCode.AGENT_ERROR


class LLMError(SwitchboardError):
    """The language model provider failed (after its retries) or answered nonsense."""

    code = ErrorCode.LLM_ERROR


class CallRefusedError(SwitchboardError):
    """An agent-to-agent call was refused before it ran, by the caller's SDK or by the
    callee's worker (a header can be forged). ``path`` is the call path it would have made
    (``s1>trip>clock``)."""

    code = ErrorCode.AGENT_ERROR

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class CallCycleError(CallRefusedError):
    """The callee is already on the call path (A calls B calls A)."""

    code = ErrorCode.CALL_CYCLE


class CallDepthError(CallRefusedError):
    """The call would nest deeper than ``max_call_depth``."""

    code = ErrorCode.CALL_DEPTH


class CallBudgetError(CallRefusedError):
    """The budget of calls this part of the conversation holds is spent."""

    code = ErrorCode.CALL_BUDGET


class CallForbiddenError(CallRefusedError):
    """The caller did not declare the callee in ``@agent(..., calls=(...))``."""

    code = ErrorCode.CALL_FORBIDDEN
