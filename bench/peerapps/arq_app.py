"""arq: async, jobs in a sorted set polled by the worker; no batch enqueue API."""

from __future__ import annotations

import asyncio
from typing import Any

from arq import create_pool
from arq.connections import RedisSettings

from peerapps import URL, Clock, stamp

DIST = "arq"
HAS_BATCH = False
REDIS = RedisSettings.from_dsn(URL)


async def noop(ctx: Any, i: int) -> None:
    stamp()


class WorkerSettings:
    functions = [noop]  # noqa: RUF012
    redis_settings = REDIS
    max_jobs = 1


class WorkerSettingsDefault:
    functions = [noop]  # noqa: RUF012
    redis_settings = REDIS  # max_jobs 10


VARIANTS = {
    "c1": ("arq max_jobs=1", ["arq", "peerapps.arq_app.WorkerSettings"]),
    "default": ("arq max_jobs=10 (default)", ["arq", "peerapps.arq_app.WorkerSettingsDefault"]),
}
CRASH = "re-run after job_timeout+10 s (default 310 s), max_tries 5"
NOTES = "max_jobs=1 is bound by poll_delay 0.5 s"


async def _enqueue(n: int, clock: Clock, warmup: bool) -> int:
    pool = await create_pool(REDIS)
    if warmup:
        await pool.enqueue_job("noop", -1)
    clock.start()
    done = 0
    while done < n and not clock.expired():
        await pool.enqueue_job("noop", done)
        done += 1
    clock.stop()
    await pool.aclose()
    return done


def enqueue(n: int, batch: int, clock: Clock, warmup: bool) -> int:
    return asyncio.run(_enqueue(n, clock, warmup))
