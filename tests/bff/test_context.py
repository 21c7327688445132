"""The correlation id is made once, after authentication, and every log line of the request
carries it: the handler's, an SSE stream's after the handler returned, never the next request's."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from litestar import Litestar, get
from litestar.di import NamedDependency
from litestar.response import ServerSentEvent, ServerSentEventMessage
from litestar.testing import AsyncTestClient

from switchboard.bff import (
    ApiKeys,
    AuthRateLimiter,
    BffState,
    Gateway,
    InFlightLimiter,
    create_app,
)
from switchboard.orchestrator import Requester, Settings

ROOT = Path(__file__).resolve().parents[2]
ALICE = "alice-key-0123456789"

log = structlog.get_logger("tests.bff")


@get("/probe")
async def probe(correlation_id: NamedDependency[str]) -> dict[str, str]:
    """A handler that never makes a correlation id: it is handed one, and logs."""
    log.info("probe handled")
    return {"correlation_id": correlation_id}


@get("/probe/stream")
async def probe_stream(correlation_id: NamedDependency[str]) -> ServerSentEvent:
    async def events() -> AsyncIterator[ServerSentEventMessage]:
        log.info("probe streaming")  # runs after the handler returned
        yield ServerSentEventMessage(event="id", data=correlation_id)

    return ServerSentEvent(events())


def bff_state(requester: Requester, keys: ApiKeys) -> BffState:
    return BffState(
        gateway=Gateway(requester, conversation_timeout=2, accept_timeout=1),
        keys=keys,
        limiter=InFlightLimiter(per_user=4, total=8),
        auth_limiter=AuthRateLimiter(),
        ready=lambda: {"nats": True},
    )


@pytest.fixture
def app(requester: Requester) -> Litestar:
    app = create_app(
        bff_state(requester, ApiKeys.from_settings(Settings(api_keys=f"alice:{ALICE}")))
    )
    app.register(probe)
    app.register(probe_stream)
    return app


@pytest.fixture
def logs() -> Iterator[list[dict[str, Any]]]:
    """Every log line from info up, with the log context merged in (the tests' logging
    configuration keeps warnings only)."""
    wrapper = structlog.get_config()["wrapper_class"]
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
    try:
        with structlog.testing.capture_logs(
            processors=[structlog.contextvars.merge_contextvars]
        ) as captured:
            yield captured
    finally:
        structlog.configure(wrapper_class=wrapper)


def events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["event"] == name]


async def test_a_handler_that_does_not_make_the_id_logs_with_it_bound(
    app: Litestar, logs: list[dict[str, Any]]
) -> None:
    headers = {"Authorization": f"Bearer {ALICE}"}
    async with AsyncTestClient(app) as http:
        first = (await http.get("/probe", headers=headers)).json()["correlation_id"]
        second = (await http.get("/probe", headers=headers)).json()["correlation_id"]
    assert re.fullmatch(r"conv-alice-[0-9a-f-]{36}", first), first
    assert first != second
    handled = events(logs, "probe handled")
    assert [(e["correlation_id"], e["user_id"]) for e in handled] == [
        (first, "alice"),
        (second, "alice"),
    ]


async def test_a_stream_still_logs_with_the_id_after_its_handler_returned(
    app: Litestar, logs: list[dict[str, Any]]
) -> None:
    async with AsyncTestClient(app) as http:
        r = await http.get("/probe/stream", headers={"Authorization": f"Bearer {ALICE}"})
    sent = re.search(r"data: (\S+)", r.text)
    assert sent is not None and sent.group(1).startswith("conv-alice-")
    assert [e["correlation_id"] for e in events(logs, "probe streaming")] == [sent.group(1)]


async def test_the_app_leaves_its_callers_log_context_as_it_found_it(app: Litestar) -> None:
    # An ASGI server runs each request in a task of its own; an app run in its caller's
    # task (mounted in another app, driven by hand) must not leave its binding behind.
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/probe",
        "raw_path": b"/probe",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"test"), (b"authorization", f"Bearer {ALICE}".encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    with structlog.contextvars.bound_contextvars(part="bff"):
        await app(scope, receive, send)  # type: ignore[arg-type]
        assert sent[0]["status"] == 200
        assert structlog.contextvars.get_contextvars() == {"part": "bff"}


async def test_no_id_is_made_for_a_caller_that_is_not_authenticated(
    app: Litestar, logs: list[dict[str, Any]]
) -> None:
    async with AsyncTestClient(app) as http:
        r = await http.get("/probe", headers={"Authorization": "Bearer wrong-key-000000000"})
    assert r.status_code == 401
    assert "x-correlation-id" not in r.headers
    assert not events(logs, "probe handled")


async def test_a_failed_chat_logs_and_answers_with_the_same_id(
    app: Litestar, logs: list[dict[str, Any]]
) -> None:
    # No orchestrator runs on this server: the request fails (nobody takes it).
    async with AsyncTestClient(app) as http:
        r = await http.post(
            "/v1/chat", json={"message": "hi"}, headers={"Authorization": f"Bearer {ALICE}"}
        )
    assert r.json()["code"] in ("no_responders", "timeout"), r.text
    answered = r.headers["x-correlation-id"]
    assert r.json()["correlation_id"] == answered
    failed = events(logs, "chat failed")
    assert [(e["correlation_id"], e["user_id"]) for e in failed] == [(answered, "alice")]


def test_only_the_request_context_makes_correlation_ids() -> None:
    makers = sorted(
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "bff").rglob("*.py")
        if "new_correlation_id(" in path.read_text()
    )
    assert makers == ["bff/context.py"]
