"""saq: async Redis queue (``Queue.map`` waits for results, so one by one). saq keeps a
finished job with its status and result (``ttl`` 600 s by default): the ``results*``
variants run ``add``."""

from __future__ import annotations

import asyncio
from typing import Any

from saq import Queue

from peerapps import RESULTS, URL, aslow, stamp

DIST = "saq"
queue = Queue.from_url(URL)


async def noop(ctx: Any, *, i: int) -> None:
    await aslow(i)
    stamp(i)


async def add(ctx: Any, *, a: int, b: int) -> int:
    """The job of the ``results*`` variants: its return value is the stored result."""
    await aslow(a)
    stamp(a)
    return a + b


settings = {"queue": queue, "functions": [noop]}  # concurrency 10, the default
settings_results = {"queue": queue, "functions": [add]}  # concurrency 10, the default
settings_results_c1 = {"queue": queue, "functions": [add], "concurrency": 1}
VARIANTS = {
    "default": ("saq (default: 1 process, concurrency 10)", ["saq", "peerapps.saq_app.settings"]),
    "results": (
        "saq (default: 1 process, concurrency 10)",
        ["saq", "peerapps.saq_app.settings_results"],
    ),
    "results-c1": (
        "saq concurrency 1 (one job at a time)",
        ["saq", "peerapps.saq_app.settings_results_c1"],
    ),
}
RECLAIM = (
    70,
    "the sweep (every 60 s) aborts a job past its 10 s default timeout; "
    "retried only if retries > 1 (default 1)",
)
JOB_KEYS: list[str] = []  # results*: the key of the job of task number i (this process only)


async def _enqueue(n: int) -> int:
    await queue.connect()
    for i in range(n):
        if RESULTS:
            job = await queue.enqueue("add", a=i, b=1)
            assert job is not None
            JOB_KEYS.append(job.key)
        else:
            await queue.enqueue("noop", i=i)
    await queue.disconnect()
    return n


def enqueue(n: int) -> int:
    return asyncio.run(_enqueue(n))


async def _check(numbers: list[int]) -> dict[str, int]:
    q = Queue.from_url(URL)
    await q.connect()
    ok = 0
    for i in numbers:
        job = await q.job(JOB_KEYS[i])
        ok += bool(job and job.status == "complete" and job.result == i + 1)
    await q.disconnect()
    return {"checked": len(numbers), "stored": ok}


def check_results(numbers: list[int]) -> dict[str, int] | None:
    """results*: how many of these task numbers' jobs are complete with result i + 1."""
    return asyncio.run(_check(numbers)) if RESULTS else None
