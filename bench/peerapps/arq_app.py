"""arq: async, jobs in a sorted set polled by the worker."""

from __future__ import annotations

import asyncio
from typing import Any

from arq import create_pool
from arq.connections import RedisSettings

from peerapps import URL, aslow, stamp

DIST = "arq"
REDIS = RedisSettings.from_dsn(URL)


async def noop(ctx: Any, i: int) -> None:
    await aslow(i)
    stamp(i)


class WorkerSettings:
    functions = [noop]  # noqa: RUF012
    redis_settings = REDIS  # everything else default: max_jobs 10, poll_delay 0.5 s


VARIANTS = {"default": ("arq (default: max_jobs 10)", ["arq", "peerapps.arq_app.WorkerSettings"])}
RECLAIM = (310, "the in-progress key expires after job_timeout 300 s + 10 s; max_tries 5")


async def _enqueue(n: int) -> int:
    pool = await create_pool(REDIS)
    for i in range(n):
        await pool.enqueue_job("noop", i)
    await pool.aclose()
    return n


def enqueue(n: int) -> int:
    return asyncio.run(_enqueue(n))
