"""saq: async Redis queue (``Queue.map`` waits for results, so one by one)."""

from __future__ import annotations

import asyncio
from typing import Any

from saq import Queue

from peerapps import URL, aslow, stamp

DIST = "saq"
queue = Queue.from_url(URL)


async def noop(ctx: Any, *, i: int) -> None:
    await aslow(i)
    stamp(i)


settings = {"queue": queue, "functions": [noop]}  # concurrency 10, the default
VARIANTS = {
    "default": ("saq (default: 1 process, concurrency 10)", ["saq", "peerapps.saq_app.settings"]),
}
RECLAIM = (
    70,
    "the sweep (every 60 s) aborts a job past its 10 s default timeout; "
    "retried only if retries > 1 (default 1)",
)


async def _enqueue(n: int) -> int:
    await queue.connect()
    for i in range(n):
        await queue.enqueue("noop", i=i)
    await queue.disconnect()
    return n


def enqueue(n: int) -> int:
    return asyncio.run(_enqueue(n))
