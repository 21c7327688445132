"""Outcomes are counted by what was sent, not by what the handler returned."""

from __future__ import annotations

import pytest
from nats.aio.client import Client as NATS

from switchboard.agents import agent, call_agent, serving
from switchboard.orchestrator.core import Deadline, ErrorCode, RemoteError, Request, Requester
from tests.helpers import metric

from .conftest import Serve


async def test_an_answer_too_large_for_nats_is_counted_as_too_large(
    nats_client: NATS, requester: Requester, serve: Serve
) -> None:
    huge = b"x" * (nats_client.max_payload + 1)

    async def handler(request: Request) -> bytes:
        return huge

    await serve(handler, name="huge")
    ok = metric("switchboard_endpoint_requests_total", endpoint="huge", outcome="ok")
    with pytest.raises(RemoteError) as caught:
        await requester.request(
            "svc.test", b"", correlation_id="conv-huge-1", deadline=Deadline.after(10)
        )
    assert caught.value.code is ErrorCode.TOO_LARGE
    assert metric("switchboard_endpoint_requests_total", endpoint="huge", outcome="ok") == ok
    assert metric("switchboard_endpoint_requests_total", endpoint="huge", outcome="too_large") == 1


async def test_an_agents_answer_too_large_is_an_error_and_counted_so(
    nats_client: NATS, requester: Requester
) -> None:
    size = nats_client.max_payload

    @agent("bigmouth", "Answers at length. Example: 'talk'")
    async def bigmouth(task, ctx):  # type: ignore[no-untyped-def]
        return "y" * size

    async with serving(nats_client, bigmouth):
        with pytest.raises(RemoteError) as caught:
            await call_agent(requester, "bigmouth", "talk")
    assert caught.value.code is ErrorCode.TOO_LARGE
    assert metric("switchboard_endpoint_requests_total", endpoint="bigmouth", outcome="ok") == 0
    assert (
        metric("switchboard_endpoint_requests_total", endpoint="bigmouth", outcome="too_large") == 1
    )
