"""saq: async Redis queue; no batch enqueue API (``Queue.map`` also waits for results)."""

from __future__ import annotations

import asyncio
from typing import Any

from saq import Queue

from peerapps import URL, Clock, stamp

DIST = "saq"
HAS_BATCH = False
queue = Queue.from_url(URL)


async def noop(ctx: Any, *, i: int) -> None:
    stamp()


settings = {"queue": queue, "functions": [noop], "concurrency": 1}
settings_default = {"queue": queue, "functions": [noop]}  # concurrency 10
VARIANTS = {
    "c1": (
        "saq --workers 1, concurrency=1",
        ["saq", "peerapps.saq_app.settings", "--workers", "1"],
    ),
    "default": (
        "saq --workers 1, concurrency=10 (default)",
        ["saq", "peerapps.saq_app.settings_default", "--workers", "1"],
    ),
}
CRASH = "swept as aborted after its timeout; retried only if retries>1 (default 1)"
NOTES = ""


async def _enqueue(n: int, clock: Clock, warmup: bool) -> int:
    await queue.connect()
    if warmup:
        await queue.enqueue("noop", i=-1)
    clock.start()
    done = 0
    while done < n and not clock.expired():
        await queue.enqueue("noop", i=done)
        done += 1
    clock.stop()
    await queue.disconnect()
    return done


def enqueue(n: int, batch: int, clock: Clock, warmup: bool) -> int:
    return asyncio.run(_enqueue(n, clock, warmup))
