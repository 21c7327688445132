"""Fixtures of the bad-input suite: a whole Switchboard running in a thread of its own.

The property tests drive hypothesis synchronously (one example after the
other), so the parts under test run in their own event loop in a background
thread: a real nats-server, the built-in agents, the
orchestrator and, when asked for, the BFF over real HTTP. A test hands
coroutines to that loop with :meth:`LiveSystem.run` and inspects the parts
(their trackers, endpoints and counters) between examples and afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Coroutine, Iterator, Sequence
from typing import Any, TypeVar

import nats
import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from switchboard.agents import Agent, AgentWorker, builtin_agents
from switchboard.bff import build_bff
from switchboard.orchestrator import (
    AgentResult,
    AgentTask,
    ConversationReply,
    ConversationRequest,
    ErrorCode,
    HttpServer,
    OrchestratorService,
    Requester,
    Runtime,
    Settings,
    decode,
    encode,
    new_correlation_id,
)
from switchboard.orchestrator.core import headers as h
from switchboard.orchestrator.core.deadline import Deadline
from switchboard.orchestrator.testing import running_nats
from tests.support.system import make_settings, orchestrator_running

T = TypeVar("T")

#: The orchestrator's own payload limit in these tests: well under the server's 1 MiB, so
#: that "over the endpoint's limit" and "over the server's limit" are different cases.
ENDPOINT_MAX_PAYLOAD = 64 * 1024

#: Every code a reply may carry (DESIGN.md, "Messages").
VOCABULARY = frozenset(code.value for code in ErrorCode)

#: A task each built-in agent does successfully.
GOOD_TASKS = {
    "calculator": "what is 1+1",
    "clock": "what time is it in Tokyo?",
    "text": 'count the words in "hello world"',
    "llm": "what is a message broker?",
    "summarizer": "summarize: hello world. this is a test.",
}


class LiveSystem:
    """A nats-server, the built-in agents, the orchestrator (and the BFF) in a thread's loop."""

    def __init__(
        self, *, bff: bool = False, extra_agents: Sequence[Agent] = (), **overrides: Any
    ) -> None:
        self.with_bff = bff
        self.extra_agents = list(extra_agents)
        self.overrides = {"max_payload": ENDPOINT_MAX_PAYLOAD, **overrides}
        self.settings: Settings
        self.nats_url = ""
        self.http_url = ""
        self.service: OrchestratorService
        self.workers: list[AgentWorker] = []
        self.bff_requester: Requester | None = None
        #: A plain nats-py client of the test's own (the "attacker").
        self.nc: NATS
        #: Whatever reached the loop's exception handler (a crashed task, a lost exception).
        self.loop_errors: list[dict[str, Any]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="fuzz-system", daemon=True)

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> LiveSystem:
        self._thread.start()
        if not self._ready.wait(60):
            raise AssertionError("the system did not start within 60 s")
        if self._error is not None:
            raise AssertionError(f"the system did not start: {self._error!r}") from self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)
        assert not self._thread.is_alive(), "the system did not stop within 60 s"
        if self._error is not None:
            raise AssertionError(f"the system failed: {self._error!r}") from self._error

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.set_exception_handler(lambda _loop, context: self.loop_errors.append(context))
        self._stop = asyncio.Event()
        async with contextlib.AsyncExitStack() as stack:
            server = await stack.enter_async_context(running_nats())
            self.nats_url = str(server.url)
            self.settings = make_settings(self.nats_url, http_port=0, **self.overrides)
            await stack.enter_async_context(self._agents())
            self.service = await stack.enter_async_context(orchestrator_running(self.settings))
            if self.with_bff:
                await stack.enter_async_context(self._bff())
            self.nc = await nats.connect(self.nats_url, max_reconnect_attempts=-1)
            stack.push_async_callback(self.nc.close)
            self._ready.set()
            await self._stop.wait()

    @contextlib.asynccontextmanager
    async def _agents(self) -> Any:
        """The built-in agents (and any extra ones), configured as ``switchboard agent`` does."""
        settings = self.settings
        runtime = Runtime(settings, part="agent", name="fuzz", health=False, configure_logs=False)
        await runtime.connect()
        try:
            for agent in [*builtin_agents().values(), *self.extra_agents]:
                worker = AgentWorker(
                    runtime.nc,
                    agent,
                    subjects=runtime.subjects,
                    max_concurrency=settings.max_concurrency,
                    max_backlog=settings.max_backlog,
                    max_payload=settings.max_payload,
                    default_timeout=settings.step_timeout,
                )
                runtime.add(worker)
                self.workers.append(worker)
            await runtime.start()
            yield
        finally:
            await runtime.shutdown()

    @contextlib.asynccontextmanager
    async def _bff(self) -> Any:
        runtime = Runtime(
            self.settings, part="bff", name="fuzz", health=False, configure_logs=False
        )
        await runtime.connect()
        try:
            server: HttpServer = await build_bff(runtime)
            await runtime.start()
            self.http_url = server.url
            self.bff_requester = runtime.requester
            yield
        finally:
            await runtime.shutdown()

    # -- driving it from the test's thread ------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run ``coro`` in the system's loop and wait for its result."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def request(
        self,
        subject: str,
        payload: bytes,
        *,
        headers: dict[str, str] | None = None,
        timeout: float = 15.0,
    ) -> Msg:
        """A raw nats-py request from the test's own client."""
        return self.run(self.nc.request(subject, payload, timeout=timeout, headers=headers))

    def ask(
        self,
        subject: str,
        payload: bytes,
        *,
        headers: dict[str, str] | None = None,
        timeout: float = 15.0,
    ) -> tuple[Msg, list[Msg]]:
        """Publish with a reply subject of our own; the final reply and what came before it.

        Fails (never silence) when no final reply comes within ``timeout``.
        """
        return self.run(self._ask(subject, payload, headers, timeout), timeout + 5)

    async def _ask(
        self, subject: str, payload: bytes, headers: dict[str, str] | None, timeout: float
    ) -> tuple[Msg, list[Msg]]:
        inbox = self.nc.new_inbox()
        replies: asyncio.Queue[Msg] = asyncio.Queue()
        sub = await self.nc.subscribe(inbox, cb=replies.put)
        before: list[Msg] = []
        try:
            await self.nc.publish(subject, payload, reply=inbox, headers=headers)
            async with asyncio.timeout(timeout):
                while True:
                    msg = await replies.get()
                    if (msg.headers or {}).get(h.KIND, "final") == "final":
                        return msg, before
                    before.append(msg)
        except TimeoutError:
            raise AssertionError(
                f"no final reply on {subject} within {timeout}s to {payload[:200]!r} "
                f"(headers {headers}); got {len(before)} non-final messages"
            ) from None
        finally:
            await sub.unsubscribe()

    def converse(self, message: str = "what is 2+3", *, user: str = "fuzzer") -> ConversationReply:
        """A well-formed conversation, as ``nats req`` would send it."""
        correlation_id = new_correlation_id(user)
        body = ConversationRequest(correlation_id=correlation_id, user_id=user, message=message)
        msg = self.request(
            self.service.subjects.converse,
            encode(body),
            headers={h.CORRELATION_ID: correlation_id, h.TIMEOUT: Deadline.after(20).header()},
            timeout=25,
        )
        assert h.ERROR not in (msg.headers or {}), msg.data
        return decode(msg.data, ConversationReply)

    def assert_serving(self) -> None:
        """Every part still answers a well-formed request, and nothing is left in flight."""
        assert self.converse().answer == "2 + 3 = 5"
        for worker in self.workers:
            if worker.agent.name not in GOOD_TASKS:
                continue
            msg = self.request(
                worker.endpoint.subject,
                encode(
                    AgentTask(
                        correlation_id="conv-fuzzer-check",
                        task_id="check",
                        agent=worker.agent.name,
                        instruction=GOOD_TASKS[worker.agent.name],
                    )
                ),
                headers={h.TIMEOUT: Deadline.after(10).header()},
            )
            result = decode(msg.data, AgentResult)
            assert result.task_id == "check", result
            assert h.ERROR not in (msg.headers or {}), result
        self.wait_idle()
        assert all(r.nc.is_connected for r in self.requesters)
        assert all(w.endpoint._nc.is_connected for w in self.workers)

    # -- looking inside ---------------------------------------------------------------------------

    @property
    def endpoints(self) -> list[Any]:
        return [*self.service.endpoints, *(w.endpoint for w in self.workers)]

    @property
    def requesters(self) -> list[Requester]:
        found = [self.service.requester]
        if self.bff_requester is not None:
            found.append(self.bff_requester)
        return found

    def idle(self) -> bool:
        """Nothing in flight anywhere: no handler running, nothing queued, nothing pending."""
        return all(e.in_flight == 0 and not e._backlog for e in self.endpoints) and all(
            len(r.tracker) == 0 for r in self.requesters
        )

    def wait_idle(self, timeout: float = 20.0) -> None:
        give_up = time.monotonic() + timeout
        while not self.idle():
            if time.monotonic() > give_up:
                busy = {e.name: e.in_flight for e in self.endpoints if e.in_flight}
                pending = [r.pending() for r in self.requesters]
                raise AssertionError(f"still busy after {timeout}s: {busy} {pending}")
            time.sleep(0.02)


@pytest.fixture
def live() -> Iterator[LiveSystem]:
    """A fresh system for one test: nothing from another test leaks into its counters."""
    system = LiveSystem().start()
    try:
        yield system
    finally:
        system.stop()
    assert system.loop_errors == [], system.loop_errors
