"""A hand-written HTTP front: ``bench e2e``'s second baseline.

A bare ASGI app on uvicorn (httptools, uvloop) that answers every POST with
what the raw two-hop chain (:mod:`switchboard.orchestrator.bench.relay`)
answers for its body -- one ``nc.request`` per HTTP request, no framework,
no validation, no authentication::

    load generator --HTTP--> front --nc.request--> relay --nc.request--> echo

    python -m switchboard.orchestrator.bench.front NATS_URL PORT RELAY_SUBJECT

It has the same processes and NATS hops as ``switchboard up`` (BFF,
orchestrator, agent) and is loaded by the same load generator: the least an
HTTP front to the same chain can cost in Python. Prints ``ready`` once it
listens; stops on SIGTERM/SIGINT or when its parent is gone.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import nats
import uvicorn

from .relay import PENDING_SIZE
from .serving import run_fast, until_stopped

__all__ = ["app", "main"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_JSON = (b"content-type", b"application/json")
_BAD_GATEWAY = b'{"error": "the chain did not answer"}'


def _head(status: int, body: bytes) -> dict[str, Any]:
    # With its length, uvicorn sends the body as is, not chunked (as the BFF's answers are).
    length = (b"content-length", str(len(body)).encode())
    return {"type": "http.response.start", "status": status, "headers": [_JSON, length]}


def app(
    request: Callable[..., Awaitable[Any]], subject: str
) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The ASGI app: the body of each request to ``subject``, its reply as the response."""

    async def front(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # no lifespan events to answer: uvicorn runs it with lifespan="off"
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        try:
            reply = await request(subject, body, timeout=30)
        except Exception as exc:  # the chain did not answer: a 502, as any front would
            print(f"front: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            await send(_head(502, _BAD_GATEWAY))
            await send({"type": "http.response.body", "body": _BAD_GATEWAY})
            return
        await send(_head(200, reply.data))
        await send({"type": "http.response.body", "body": reply.data})

    return front


async def main(url: str, port: int, subject: str) -> None:
    nc = await nats.connect(url, pending_size=PENDING_SIZE, name="bench-front")
    config = uvicorn.Config(
        app(nc.request, subject),
        host="127.0.0.1",
        port=port,
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    serving = asyncio.ensure_future(server.serve())
    try:
        while not server.started:
            if serving.done():
                serving.result()  # it could not listen: say why
                raise SystemExit("front: uvicorn stopped while starting")
            await asyncio.sleep(0.01)
        await until_stopped()  # its signal handlers replace uvicorn's
    finally:
        server.should_exit = True
        await serving
        await nc.drain()


def _run(argv: list[str]) -> None:
    if len(argv) != 3:
        raise SystemExit(__doc__)
    url, port, subject = argv
    run_fast(main(url, int(port), subject))


if __name__ == "__main__":
    _run(sys.argv[1:])
