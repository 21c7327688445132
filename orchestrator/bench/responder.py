"""A plain nats-py echo responder, run as its own process by ``switchboard bench``.

It is deliberately not Switchboard code: both the raw baseline and the
tracker talk to the same responder, so the comparison measures the
requesting side only.

    python -m switchboard.orchestrator.bench.responder NATS_URL SUBJECT
"""

from __future__ import annotations

import asyncio
import signal
import sys

import nats
from nats.aio.msg import Msg


async def main(url: str, subject: str) -> None:
    nc = await nats.connect(url)
    publish = nc.publish

    async def echo(msg: Msg) -> None:
        await publish(msg.reply, msg.data)

    await nc.subscribe(subject, cb=echo)
    await nc.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("ready", flush=True)
    await stop.wait()
    await nc.drain()


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.run(main(sys.argv[1], sys.argv[2]))
    except ImportError:  # pragma: no cover
        asyncio.run(main(sys.argv[1], sys.argv[2]))
