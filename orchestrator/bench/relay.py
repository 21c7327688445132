"""The raw two-hop baseline: plain nats-py processes, no Switchboard code on the request path.

``switchboard bench engine | e2e | llm-latency | soak`` compare the system
with the simplest thing that does the same number of NATS hops: a requester
calls a *relay* process, which calls an *echo* process with ``nc.request``
and answers with the echo's reply::

    requester --nc.request--> relay --nc.request--> echo
              <---- reply ---       <--- reply ----

    python -m switchboard.orchestrator.bench.relay echo  NATS_URL SUBJECT [DELAY_S]
    python -m switchboard.orchestrator.bench.relay relay NATS_URL SUBJECT NEXT_SUBJECT

Each request is handled in its own task (a nats-py subscription callback
otherwise runs one message at a time), as any concurrent nats-py service
would. Both print ``ready`` once subscribed, stop on SIGTERM/SIGINT, and exit
when their parent (the bench) is gone.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable

import nats
from nats.aio.msg import Msg

from .serving import run_fast, until_stopped

__all__ = ["PENDING_SIZE", "main"]

PENDING_SIZE = 256 * 1024 * 1024


def _spawner() -> tuple[set[asyncio.Task[None]], Callable[[Awaitable[None]], None]]:
    tasks: set[asyncio.Task[None]] = set()

    def spawn(work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    return tasks, spawn


async def main(role: str, url: str, subject: str, extra: str | None) -> None:
    nc = await nats.connect(url, pending_size=PENDING_SIZE, name=f"bench-raw-{role}")
    publish = nc.publish
    request = nc.request
    _tasks, spawn = _spawner()

    if role == "echo":
        delay = float(extra) if extra else 0.0

        async def reply_later(msg: Msg) -> None:
            await asyncio.sleep(delay)
            await publish(msg.reply, msg.data)

        async def echo(msg: Msg) -> None:
            if delay > 0:
                spawn(reply_later(msg))
            else:
                await publish(msg.reply, msg.data)

        await nc.subscribe(subject, cb=echo)
    elif role == "relay":
        if not extra:
            raise SystemExit("relay needs NEXT_SUBJECT")
        next_subject = extra

        async def forward(msg: Msg) -> None:
            try:
                answer = await request(next_subject, msg.data, timeout=60)
            except Exception as exc:  # the requester times out; say why here
                print(f"relay: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
                return
            await publish(msg.reply, answer.data)

        async def relay(msg: Msg) -> None:
            spawn(forward(msg))

        await nc.subscribe(subject, cb=relay)
    else:
        raise SystemExit(f"unknown role {role!r}: echo or relay")
    await nc.flush()
    await until_stopped()
    await nc.drain()


def _run(argv: list[str]) -> None:
    if len(argv) < 3:
        raise SystemExit(__doc__)
    role, url, subject = argv[:3]
    extra = argv[3] if len(argv) > 3 else None
    run_fast(main(role, url, subject, extra))


if __name__ == "__main__":
    _run(sys.argv[1:])
