"""Messages per answer and added latency of TokenCoalescer, at several model speeds.

    python scripts/measure_coalescing.py

A producer adds 300 chunks of 4 bytes at a steady rate (chunks a second); each chunk's
wait is the time from its ``add`` to the send that carried it. Prints the README's rows.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from switchboard.orchestrator import TokenCoalescer

CHUNKS = 300
PIECE = "tok "


async def measure(rate: float) -> tuple[int, float, float, float]:
    """(messages, mean, p99 and max wait in ms) for CHUNKS chunks at ``rate`` a second."""
    added: list[float] = []
    waits: list[float] = []

    async def send(text: str) -> None:
        now = time.monotonic()
        first = len(waits)
        waits.extend(now - at for at in added[first : first + text.count(" ")])

    async with TokenCoalescer(send) as tokens:
        start = time.monotonic()
        for i in range(CHUNKS):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            added.append(time.monotonic())
            await tokens.add(PIECE)
    ordered = sorted(waits)
    return (
        tokens.messages,
        statistics.mean(waits) * 1000,
        ordered[int(0.99 * len(ordered))] * 1000,
        ordered[-1] * 1000,
    )


async def main() -> None:
    print(
        "| model speed | chunks | messages | chunks per message | added latency mean / p99 / max |"
    )
    print("|---:|---:|---:|---:|---|")
    for rate in (10, 30, 60, 100, 200, 500):
        messages, mean, p99, most = await measure(rate)
        print(
            f"| {rate} chunks/s | {CHUNKS} | {messages} | {CHUNKS / messages:.1f} | "
            f"{mean:.0f} / {p99:.0f} / {most:.0f} ms |"
        )


if __name__ == "__main__":
    asyncio.run(main())
