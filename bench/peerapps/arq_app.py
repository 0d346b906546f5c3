"""arq: async, jobs in a sorted set polled by the worker. arq keeps every job's result
(``keep_result`` 3600 s by default): the ``results*`` variants run ``add``."""

from __future__ import annotations

import asyncio
from typing import Any

from arq import create_pool
from arq.connections import RedisSettings
from arq.jobs import Job

from peerapps import RESULTS, URL, aslow, stamp

DIST = "arq"
REDIS = RedisSettings.from_dsn(URL)


async def noop(ctx: Any, i: int) -> None:
    await aslow(i)
    stamp(i)


async def add(ctx: Any, a: int, b: int) -> int:
    """The job of the ``results*`` variants: its return value is the stored result."""
    await aslow(a)
    stamp(a)
    return a + b


class WorkerSettings:
    functions = [noop]  # noqa: RUF012
    redis_settings = REDIS  # everything else default: max_jobs 10, poll_delay 0.5 s


class ResultsSettings:
    functions = [add]  # noqa: RUF012
    redis_settings = REDIS  # everything else default: max_jobs 10, poll_delay 0.5 s


class ResultsJ1Settings:
    functions = [add]  # noqa: RUF012
    redis_settings = REDIS
    max_jobs = 1  # arq reads the class' own __dict__: no inheritance


_APP = "peerapps.arq_app."
VARIANTS = {
    "default": ("arq (default: max_jobs 10)", ["arq", _APP + "WorkerSettings"]),
    "results": ("arq (default: max_jobs 10)", ["arq", _APP + "ResultsSettings"]),
    "results-j1": ("arq max_jobs 1 (one job at a time)", ["arq", _APP + "ResultsJ1Settings"]),
}
RECLAIM = (310, "the in-progress key expires after job_timeout 300 s + 10 s; max_tries 5")
JOB_IDS: list[str] = []  # results*: the id of the job of task number i (this process only)


async def _enqueue(n: int) -> int:
    pool = await create_pool(REDIS)
    for i in range(n):
        if RESULTS:
            job = await pool.enqueue_job("add", i, 1)
            assert job is not None
            JOB_IDS.append(job.job_id)
        else:
            await pool.enqueue_job("noop", i)
    await pool.aclose()
    return n


def enqueue(n: int) -> int:
    return asyncio.run(_enqueue(n))


async def _check(numbers: list[int]) -> dict[str, int]:
    pool = await create_pool(REDIS)
    ok = 0
    for i in numbers:
        info = await Job(JOB_IDS[i], pool).result_info()
        ok += bool(info and info.success and info.result == i + 1)
    await pool.aclose()
    return {"checked": len(numbers), "stored": ok}


def check_results(numbers: list[int]) -> dict[str, int] | None:
    """results*: how many of these task numbers' jobs have the stored result i + 1."""
    return asyncio.run(_check(numbers)) if RESULTS else None
