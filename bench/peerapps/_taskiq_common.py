"""What the two taskiq apps share: their worker variants, their enqueue loop and, for the
``results*`` variants, the Redis result backend and the read-back of results."""

from __future__ import annotations

import asyncio
from typing import Any

from peerapps import URL

IDS: list[str] = []  # results*: the task id of task number i (this process only)


async def _enqueue(broker: Any, task: Any, n: int, *args: Any) -> int:
    await broker.startup()
    for i in range(n):
        kicked = await task.kiq(i, *args)
        if args:
            IDS.append(kicked.task_id)
    await broker.shutdown()
    return n


def variants(app: str, broker: str) -> dict[str, tuple[str, list[str]]]:
    """The worker command lines for the taskiq app module ``app`` (its broker is ``broker``)."""
    target = f"peerapps.{app}:broker"
    w1 = ["taskiq", "worker", target, "--workers", "1"]
    return {
        "default": (
            f"taskiq {broker} (default: --workers 2, max-async-tasks 100)",
            ["taskiq", "worker", target],
        ),
        "w1": (f"taskiq {broker} --workers 1", w1),
        "results": (
            f"taskiq {broker} + RedisAsyncResultBackend --workers 1 --max-async-tasks 1",
            [*w1, "--max-async-tasks", "1"],
        ),
        "results-a100": (
            f"taskiq {broker} + RedisAsyncResultBackend --workers 1 (max-async-tasks 100)",
            w1,
        ),
    }


def enqueue(broker: Any, task: Any, n: int) -> int:
    return asyncio.run(_enqueue(broker, task, n))


def result_backend() -> Any:
    """taskiq-redis's Redis result backend (results kept, no expiry: its defaults)."""
    from taskiq_redis import RedisAsyncResultBackend

    return RedisAsyncResultBackend(URL)


def enqueue_add(broker: Any, task: Any, n: int) -> int:
    """results*: kick ``add(i, 1)`` for i in 0..n-1, keeping the task ids."""
    return asyncio.run(_enqueue(broker, task, n, 1))


async def _check(broker: Any, numbers: list[int]) -> dict[str, int]:
    await broker.startup()
    ok = 0
    for i in numbers:
        res = await broker.result_backend.get_result(IDS[i])
        ok += bool(res and not res.is_err and res.return_value == i + 1)
    await broker.shutdown()
    return {"checked": len(numbers), "stored": ok}


def check_results(broker: Any, numbers: list[int]) -> dict[str, int]:
    """results*: how many of these task numbers have the stored result i + 1."""
    return asyncio.run(_check(broker, numbers))
