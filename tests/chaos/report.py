"""Per-request outcomes of a chaos scenario, and the summary it prints.

Every conversation of a scenario goes through :meth:`Report.converse`, which
sends it the way the BFF does (``bff.gateway.Gateway``: the conversation's own
``timeout_s``, plus a margin for the reply to travel back, heartbeats, one
retry of a retryable refusal), times it against its deadline, and classifies
how it ended:

* ``ok`` -- an answer, checked to be this user's own (``check``);
* ``partial:<code>`` -- an answer that says a step failed, with the step's code;
* ``<code>`` -- a :class:`SwitchboardError` with a code from the vocabulary;
* ``unexpected:<Type>`` -- anything else (a bug: the test fails);
* ``hung`` -- still running when the scenario's time bound cut it (a bug);
* ``abandoned`` -- the client gave up on purpose (an HTTP client going away).

``summary()`` is what the scenario prints and puts in its assertion messages.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from switchboard.bff.gateway import REPLY_MARGIN, Gateway
from switchboard.bff.schemas import ChatRequest
from switchboard.orchestrator import ConversationReply, SwitchboardError, new_correlation_id
from switchboard.orchestrator.core.errors import ErrorCode

__all__ = [
    "REPLY_MARGIN",
    "VOCABULARY",
    "Check",
    "Outcome",
    "Report",
    "arithmetic",
    "finish",
    "ok_since",
    "run_users",
    "until",
    "whoami",
]

_GONE = "the client went away"

#: The error codes of DESIGN.md, one vocabulary everywhere.
VOCABULARY = frozenset(code.value for code in ErrorCode)

#: ``check(reply, user, correlation_id)``: None, or why the reply is not this user's answer.
Check = Callable[[ConversationReply, str, str], "str | None"]

#: The scenario's work ledger (set by the ``parts`` fixture): one line per task an agent ran.
LEDGER: Path | None = None


@dataclass
class Outcome:
    user: str
    correlation_id: str
    code: str
    started: float
    ended: float
    #: When the conversation's own deadline (``timeout_s``) passed (monotonic).
    deadline: float
    detail: str = ""
    #: Why the answer belongs to someone else (never acceptable).
    wrong: str | None = None
    #: Agents whose steps succeeded / failed (or were skipped) in the reply.
    ok_agents: tuple[str, ...] = ()
    failed_agents: tuple[str, ...] = ()

    @property
    def overrun(self) -> float:
        """Seconds past the conversation's deadline (0 when it ended in time)."""
        return max(0.0, self.ended - self.deadline)

    @property
    def base_code(self) -> str:
        return self.code.split(":", 1)[-1]

    @property
    def clear(self) -> bool:
        """An answer, or an error with a code from the vocabulary."""
        return self.code == "ok" or self.base_code in VOCABULARY or self.code == "abandoned"


class Report:
    """Outcomes of one scenario; timestamps are relative to its creation."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.t0 = time.monotonic()
        self.outcomes: list[Outcome] = []
        self.notes: list[str] = []

    def now(self) -> float:
        return time.monotonic() - self.t0

    def note(self, text: str) -> None:
        """A fact for the summary (what was killed when, placements, metrics)."""
        self.notes.append(f"t={self.now():6.2f}s  {text}")

    def count(self, code: str = "ok") -> int:
        return sum(1 for o in self.outcomes if o.code == code)

    def since(self, when: float) -> list[Outcome]:
        """Outcomes of requests started after ``when`` (seconds since t0)."""
        return [o for o in self.outcomes if o.started - self.t0 >= when]

    async def converse(
        self,
        gateway: Gateway,
        user: str,
        message: str,
        *,
        timeout_s: float,
        check: Check,
        agents: list[str] | None = None,
        outcome: Outcome | None = None,
    ) -> Outcome:
        """One conversation as the BFF sends it; its outcome is recorded and returned."""
        if outcome is None:
            outcome = self.begin(user, timeout_s)
        correlation_id = outcome.correlation_id
        body = ChatRequest(message=message, timeout_s=timeout_s, agents=agents)
        try:
            reply = await gateway.chat(user, body, correlation_id=correlation_id)
        except SwitchboardError as exc:
            outcome.code, outcome.detail = exc.code.value, str(exc)
        except asyncio.CancelledError:
            outcome.ended = time.monotonic()
            outcome.code = "abandoned" if outcome.detail.startswith(_GONE) else "hung"
            raise
        except Exception as exc:
            outcome.code, outcome.detail = f"unexpected:{type(exc).__name__}", str(exc)
        else:
            outcome.code, outcome.detail = _classify(reply)
            outcome.ok_agents = tuple(s.agent for s in reply.steps if s.status == "ok")
            outcome.failed_agents = tuple(s.agent for s in reply.steps if s.status != "ok")
            if reply.correlation_id != correlation_id:
                outcome.wrong = f"reply for {reply.correlation_id}"
            else:
                outcome.wrong = check(reply, user, correlation_id)
        outcome.ended = time.monotonic()
        return outcome

    async def sleep_whoami(
        self,
        gateway: Gateway,
        user: str,
        token: str,
        seconds: float,
        *,
        timeout_s: float,
        agents: list[str],
    ) -> Outcome:
        """``sleep <seconds>; whoami <token>``: a slow step and a fast one, the answer
        checked to be this user's own."""
        return await self.converse(
            gateway,
            user,
            f"sleep {seconds}; whoami {token}",
            timeout_s=timeout_s,
            check=whoami(token),
            agents=agents,
        )

    def begin(self, user: str, timeout_s: float) -> Outcome:
        """A new request's outcome (``hung`` until it ends), its deadline from now."""
        started = time.monotonic()
        outcome = Outcome(
            user, new_correlation_id(user), "hung", started, started, started + timeout_s
        )
        self.outcomes.append(outcome)
        return outcome

    async def abandon(
        self,
        gateway: Gateway,
        user: str,
        message: str,
        *,
        timeout_s: float,
        after: float,
        agents: list[str] | None = None,
    ) -> Outcome:
        """A conversation whose client goes away after ``after`` seconds (remote cancellation)."""
        outcome = self.begin(user, timeout_s)
        task = asyncio.ensure_future(
            self.converse(
                gateway,
                user,
                message,
                timeout_s=timeout_s,
                check=_no_check,
                agents=agents,
                outcome=outcome,
            )
        )
        try:
            await asyncio.sleep(after)
        finally:
            if not task.done():
                outcome.detail = f"{_GONE} after {after:g} s (remote cancellation)"
                task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return outcome

    def cut_hung(self) -> None:
        """Mark what is still running as hung (called when a time bound fired)."""
        for outcome in self.outcomes:
            if outcome.code == "hung" and outcome.ended == outcome.started:
                outcome.ended = time.monotonic()

    @contextlib.asynccontextmanager
    async def bounded(
        self, seconds: float, *, context: Callable[[], str] | None = None
    ) -> AsyncIterator[None]:
        """Run a scenario within ``seconds``: past it, what is open is hung and the test fails.

        The summary is printed on the way out either way; ``context`` adds to the failure
        message (e.g. the cluster's logs).
        """
        try:
            async with asyncio.timeout(seconds):
                yield
        except TimeoutError:
            self.cut_hung()
            extra = f"\n{context()}" if context is not None else ""
            raise AssertionError(
                f"the scenario did not finish in time\n{self.summary()}{extra}"
            ) from None
        finally:
            self.print()

    # -- the summary --------------------------------------------------------------------------

    def summary(self) -> str:
        counts = collections.Counter(o.code for o in self.outcomes)
        ordered = ["ok", *sorted(c for c in counts if c != "ok")]
        parts = [f"{code} {counts[code]}" for code in ordered if counts[code]]
        wrong = [o for o in self.outcomes if o.wrong]
        ended = [o for o in self.outcomes if o.code not in ("hung", "abandoned")]
        worst = max(ended, key=lambda o: o.overrun, default=None)
        longest = max((o.ended - o.started for o in ended), default=0.0)
        lines = [
            f"== chaos: {self.name} ==",
            f"requests sent {len(self.outcomes)}: " + (", ".join(parts) or "none"),
            f"duplicates {self.duplicates()} (conversation steps run more than once); "
            f"wrong-user answers {len(wrong)}; hung {counts['hung']}; "
            f"max overrun past deadline {worst.overrun if worst else 0.0:.3f} s "
            f"(longest request {longest:.2f} s)",
        ]
        details: dict[str, str] = {}
        for outcome in self.outcomes:
            if outcome.code != "ok" and outcome.code not in details and outcome.detail:
                details[outcome.code] = outcome.detail[:200]
        lines += [f"  e.g. {code}: {text}" for code, text in sorted(details.items())]
        lines.append("  timeline (by start second): " + self.timeline())
        lines += [f"  wrong: {o.correlation_id}: {o.wrong}" for o in wrong[:5]]
        lines += [f"  {note}" for note in self.notes]
        return "\n".join(lines)

    def duplicates(self) -> int:
        """Agent work that ran more than once for one conversation step (from the ledger
        the test agents append to; 0 without one)."""
        if LEDGER is None or not LEDGER.exists():
            return 0
        runs = collections.Counter(
            tuple(line.split()[:2]) for line in LEDGER.read_text().splitlines() if line
        )
        return sum(count - 1 for count in runs.values() if count > 1)

    def timeline(self, step: float = 1.0) -> str:
        """Outcomes per ``step`` seconds of start time: ``0s ok=96 | 1s ok=3 timeout=16 ...``."""
        buckets: dict[int, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        for outcome in self.outcomes:
            buckets[int((outcome.started - self.t0) // step)][outcome.code] += 1
        return " | ".join(
            f"{index * step:g}s " + " ".join(f"{c}={n}" for c, n in sorted(buckets[index].items()))
            for index in sorted(buckets)
        )

    def print(self) -> None:
        print("\n" + self.summary(), flush=True)

    def assert_sound(
        self,
        *,
        allowance: float = REPLY_MARGIN,
        allowed: Iterable[str] | None = None,
    ) -> None:
        """What every scenario guarantees: each request ended, clearly, in time, to its user.

        ``allowed`` limits the outcomes further (e.g. ``{"ok", "partial:timeout"}``).
        """
        summary = self.summary()
        assert self.outcomes, f"no requests were sent\n{summary}"
        hung = [o for o in self.outcomes if o.code == "hung"]
        assert not hung, f"{len(hung)} requests never ended\n{summary}"
        unclear = [o for o in self.outcomes if not o.clear]
        assert not unclear, f"{len(unclear)} requests ended without a clear code\n{summary}"
        wrong = [o for o in self.outcomes if o.wrong]
        assert not wrong, f"{len(wrong)} answers reached the wrong user\n{summary}"
        late = [o for o in self.outcomes if o.code != "abandoned" and o.overrun > allowance]
        assert not late, f"{len(late)} requests ended > {allowance}s past deadline\n{summary}"
        if allowed is not None:
            allowed = set(allowed) | {"abandoned"}
            other = sorted({o.code for o in self.outcomes} - allowed)
            assert not other, f"unexpected outcomes {other} (allowed {sorted(allowed)})\n{summary}"


def _classify(reply: ConversationReply) -> tuple[str, str]:
    if reply.error is not None:
        return reply.error.code, reply.error.message
    failed = [s for s in reply.steps if s.status != "ok"]
    if failed:
        first = next((s for s in failed if s.status == "failed"), failed[0])
        code = first.error.code if first.error is not None else "internal"
        message = first.error.message if first.error is not None else ""
        return f"partial:{code}", f"step {first.id} ({first.agent}): {message}"
    if reply.partial:
        return "partial:internal", "partial reply without a failed step"
    return "ok", ""


def _no_check(reply: ConversationReply, user: str, correlation_id: str) -> str | None:
    return None


# -- user-specific questions and their checks ---------------------------------------------------


def whoami(token: str, *, required: bool = True) -> Check:
    """Check the ``whoami`` step answered THIS user and conversation, with this ``token``."""

    def check(reply: ConversationReply, user: str, correlation_id: str) -> str | None:
        steps = [s for s in reply.steps if s.agent == "whoami"]
        for step in steps:
            if step.status != "ok":
                continue
            out = step.output
            if not isinstance(out, dict):
                return f"whoami output {out!r}"
            if (out.get("user"), out.get("correlation_id")) != (user, correlation_id):
                return f"whoami answered {out.get('user')}/{out.get('correlation_id')}"
            if token not in str(out.get("instruction")):
                return f"whoami got instruction {out.get('instruction')!r}, not {token!r}"
        if required and not any(s.status == "ok" for s in steps) and not reply.partial:
            return f"no whoami answer in a complete reply: {reply.answer!r}"
        return None

    return check


def arithmetic(expected: int) -> Check:
    """Check a calculator answer is ``= expected`` (unique per user and request)."""

    def check(reply: ConversationReply, user: str, correlation_id: str) -> str | None:
        if reply.partial:
            return None
        if f"= {expected}" not in reply.answer:
            return f"answer {reply.answer!r}, expected {expected}"
        return None

    return check


async def run_users(
    users: int,
    one: Callable[[int, int], Awaitable[object]],
    stop: asyncio.Event,
    *,
    pause: float = 0.0,
) -> None:
    """``users`` concurrent users, each sending ``one(user, n)`` back to back until ``stop``."""

    async def user_loop(user: int) -> None:
        for n in itertools.count(1):
            if stop.is_set():
                return
            await one(user, n)
            if pause:
                await asyncio.sleep(pause)

    await asyncio.gather(*(user_loop(u) for u in range(users)))


async def until(
    check: Callable[[], bool], load: asyncio.Task[None] | None = None, timeout: float = 30.0
) -> None:
    """Wait for ``check()`` (TimeoutError after ``timeout``); fail early if ``load`` died."""
    async with asyncio.timeout(timeout):
        while not check():
            if load is not None and load.done():
                load.result()
                raise AssertionError("the load stopped early")
            await asyncio.sleep(0.05)


async def first_whole(
    ask: Callable[[str, str, float], Awaitable[Outcome]], agents: Iterable[str]
) -> tuple[Outcome, int]:
    """Probe (``ask(user, token, seconds)``) until one conversation is answered by all of
    ``agents`` -- e.g. until a restarted agent is back in the catalog; at most 40 tries."""
    wanted = set(agents)
    for attempt in range(40):
        probe = await ask("probe", f"probe-{attempt}", 0.1)
        if probe.code == "ok" and wanted <= set(probe.ok_agents):
            break
        await asyncio.sleep(0.25)
    return probe, attempt


def ok_since(report: Report, when: float) -> int:
    """Requests started ``when`` seconds after t0 or later that ended ok."""
    return sum(1 for o in report.since(when) if o.code == "ok")


async def finish(load: asyncio.Task[None], report: Report, timeout: float) -> None:
    """Wait for the load to wind down; past ``timeout`` cancel it: its open requests hung."""
    done, _ = await asyncio.wait({load}, timeout=timeout)
    if not done:
        load.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await load
        report.cut_hung()
        raise AssertionError(
            f"requests still open {timeout}s after the load stopped\n{report.summary()}"
        )
    load.result()
