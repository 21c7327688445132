"""The peer: FastStream's NATS RPC two-hop chain, for ``switchboard bench engine``.

The same shape as the raw chain (:mod:`switchboard.orchestrator.bench.relay`),
written the way FastStream's documentation writes RPC over NATS: a relay
subscriber that calls the echo subscriber with ``broker.request`` and returns
its answer::

    requester --nc.request--> relay (@broker.subscriber, broker.request) --> echo
              <---- reply ----                                            <-- reply

    python -m switchboard.orchestrator.bench.peer echo  NATS_URL SUBJECT [DELAY_S]
    python -m switchboard.orchestrator.bench.peer relay NATS_URL SUBJECT NEXT_SUBJECT

The bench drives it with the same ``nc.request`` and the same payload as the
raw chain; the handlers take and return the JSON payload as FastStream's
examples do (decoded and validated by FastStream, encoded again on the way
back). Each subscriber gets ``max_workers`` (FastStream's own way to handle
messages of one subscription concurrently; without it a subscriber handles
one message at a time), so it is not held back by a limit the raw chain does
not have. Needs the ``bench`` extra (``pip install 'switchboard-nats[bench]'``).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

from .serving import run_fast, until_stopped

__all__ = ["WORKERS", "main"]

#: Messages each subscriber handles at once (above the bench's highest default concurrency).
WORKERS = 1_000


async def main(role: str, url: str, subject: str, extra: str | None) -> None:
    from faststream.nats import NatsBroker

    # Per-message "Received"/"Processed" lines at DEBUG (hidden), errors still logged: the
    # raw relay, too, prints only its errors.
    broker = NatsBroker(url, log_level=logging.DEBUG)

    if role == "echo":
        delay = float(extra) if extra else 0.0

        @broker.subscriber(subject, max_workers=WORKERS)
        async def echo(body: dict[str, Any]) -> dict[str, Any]:
            if delay > 0:
                await asyncio.sleep(delay)
            return body

    elif role == "relay":
        if not extra:
            raise SystemExit("relay needs NEXT_SUBJECT")
        next_subject = extra

        @broker.subscriber(subject, max_workers=WORKERS)
        async def relay(body: dict[str, Any]) -> Any:
            answer = await broker.request(body, next_subject, timeout=60)
            return await answer.decode()

    else:
        raise SystemExit(f"unknown role {role!r}: echo or relay")

    async with broker:
        await broker.start()
        await until_stopped()


def _run(argv: list[str]) -> None:
    if len(argv) < 3:
        raise SystemExit(__doc__)
    role, url, subject = argv[:3]
    run_fast(main(role, url, subject, argv[3] if len(argv) > 3 else None))


if __name__ == "__main__":
    _run(sys.argv[1:])
