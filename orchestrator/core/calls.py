"""Agent-to-agent calls: the call path, its limits, and the conversation's budget of calls.

An agent's handler may call another agent (``ctx.call("calculator", "17*23")``). Such a
call is an ordinary agent request -- same correlation id and user, the caller's time
left minus a margin, a fresh request id -- with two headers more:

``Switchboard-Call-Path``
    Where the call comes from: the plan step at the root, then every agent on the way,
    the callee last (``s1>trip>clock``). A call whose callee is already on the path
    (``s1>a>b>a``) is a cycle; one that makes the path longer than ``max_call_depth``
    calls is too deep. Both are refused with their codes (``call_cycle``,
    ``call_depth``) *before anything is sent*, by the caller's SDK, and again by the
    callee's worker when the request arrives (a raw NATS client can forge a header).
    A request without the header is a plan step: its path is ``<task id>>agent``.

``Switchboard-Call-Budget``
    How many calls the callee, and everything it calls in turn, may still make. The
    conversation starts with ``max_calls``: the orchestrator leases each plan step an even
    share of what is left when it starts (the steps still to start share the rest), and
    gets back what the step's tree did not use. A call costs one and *leases* part
    of what remains to its callee, which spends it on calls of its own and sends back
    what it did not use with its result (``AgentResult.unused_calls``). No shared state
    is needed: at any moment the leases out plus the calls made plus what the caller
    holds add up to the budget, however many calls run in parallel, so fan-out can never
    exceed it. A worker never believes a lease larger than its own ``max_calls``.

Which agents an agent may call at all is declared (``@agent(..., calls=("clock",))``),
checked by the SDK (``call_forbidden``) and enforced by the NATS server's permissions
(``deploy/nats/auth.conf``).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import CallBudgetError, CallCycleError, CallDepthError, DecodeError
from .subjects import is_safe_token

__all__ = [
    "DEFAULT_MAX_CALLS",
    "DEFAULT_MAX_CALL_DEPTH",
    "CallBudget",
    "CallPath",
    "parse_budget",
]

#: Calls one agent-to-agent chain may nest: ``s1>a>b>c>d`` is three calls deep.
DEFAULT_MAX_CALL_DEPTH = 3
#: Calls a conversation may make, at every depth together (a worker's own bound on a lease).
DEFAULT_MAX_CALLS = 16

SEPARATOR = ">"


@dataclass(frozen=True, slots=True)
class CallPath:
    """A call's path: the plan step at the root, then the agents, the current one last."""

    step: str
    agents: tuple[str, ...]

    @classmethod
    def root(cls, step: str, agent: str) -> CallPath:
        """The path of a plan step's own task (no call yet)."""
        return cls(step, (agent,))

    @classmethod
    def parse(cls, value: str) -> CallPath:
        """The path a ``Switchboard-Call-Path`` header names.

        Raises:
            DecodeError: not ``step>agent>...``, with subject-safe tokens.
        """
        parts = value.split(SEPARATOR)
        if len(parts) < 2 or len(value) > 1024 or not all(is_safe_token(p) for p in parts):
            raise DecodeError(
                f"The Switchboard-Call-Path header {value[:80]!r} is not a call path "
                "(step>agent>...>agent, each a letters, digits, '_' or '-' token)."
            )
        return cls(parts[0], tuple(parts[1:]))

    @property
    def agent(self) -> str:
        """The agent this path ends at (the one running)."""
        return self.agents[-1]

    @property
    def depth(self) -> int:
        """How many agent-to-agent calls the path holds (0: a plan step's own task)."""
        return len(self.agents) - 1

    def then(self, callee: str, *, max_depth: int) -> CallPath:
        """The path of a call from this path's agent to ``callee``.

        Raises:
            CallCycleError: ``callee`` is already on the path.
            CallDepthError: the path would hold more than ``max_depth`` calls.
        """
        path = CallPath(self.step, (*self.agents, callee))
        path.check(max_depth=max_depth)
        return path

    def check(self, *, max_depth: int) -> None:
        """Refuse a path that loops or nests too deep (where a call arrives, too).

        Raises:
            CallCycleError, CallDepthError: as :meth:`then`.
        """
        callee = self.agents[-1]
        if callee in self.agents[:-1]:
            raise CallCycleError(
                f"The call {self} would loop: {callee} is already on its path, so it "
                "would call itself again.",
                path=str(self),
            )
        if self.depth > max_depth:
            raise CallDepthError(
                f"The call {self} would nest {self.depth} calls deep; at most {max_depth} "
                "are allowed (SWITCHBOARD_MAX_CALL_DEPTH).",
                path=str(self),
            )

    def under(self, prefix: str) -> bool:
        """Whether this path is ``prefix`` or a call below it (a subtree cancel's test)."""
        text = str(self)
        return text == prefix or text.startswith(prefix + SEPARATOR)

    def __str__(self) -> str:
        return SEPARATOR.join((self.step, *self.agents))


def parse_budget(value: str | None, *, most: int) -> int:
    """The budget a ``Switchboard-Call-Budget`` header leases, never more than ``most``.

    Missing (a plan step) or unreadable, it is ``most``, this worker's own ``max_calls``:
    a forged header can lower a budget, never raise it.
    """
    if value is None or not (value.isascii() and value.isdigit()) or len(value) > 9:
        return most
    return min(int(value), most)


class CallBudget:
    """The calls a task may still make: what it was leased, minus what its calls hold.

    One per task, used from one event loop: :meth:`lease` reserves synchronously, so
    calls started together (``asyncio.gather``) can never reserve more than there is.
    """

    __slots__ = ("left", "total")

    def __init__(self, total: int) -> None:
        self.total = total
        self.left = total

    def lease(self, path: CallPath, share: int | None = None) -> int:
        """Reserve one call and a lease for its callee; returns the lease.

        ``share`` is how many calls the callee may make (at most what remains after this
        one); by default half of what remains, so calls started together each get some.

        Raises:
            CallBudgetError: no call is left.
        """
        if self.left < 1:
            raise CallBudgetError(
                f"The call {path} was refused: the conversation's budget of agent calls "
                f"(SWITCHBOARD_MAX_CALLS; this task was lent {self.total}) is spent.",
                path=str(path),
            )
        spare = self.left - 1
        lease = spare // 2 if share is None else max(0, min(share, spare))
        self.left -= 1 + lease
        return lease

    def share(self, parts: int) -> int:
        """Lease an even share of what is left to one of ``parts`` plan steps still to start
        (no call is spent: a plan step is not a call); returns the lease."""
        lease = self.left // max(1, parts)
        self.left -= lease
        return lease

    def give_back(self, lease: int, unused: int | None) -> None:
        """The callee is done: what it did not use of its ``lease`` is ours again.

        A callee that says it left more than it was lent gets no credit for it.
        """
        if unused is not None:
            self.left += max(0, min(unused, lease))

    def __repr__(self) -> str:
        return f"<CallBudget {self.left}/{self.total}>"
