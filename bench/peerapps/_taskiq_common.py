"""The enqueue loop shared by the two taskiq apps."""

from __future__ import annotations

import asyncio
from typing import Any

from peerapps import Clock


async def _enqueue(broker: Any, task: Any, n: int, clock: Clock, warmup: bool) -> int:
    await broker.startup()
    if warmup:
        await task.kiq(-1)
    clock.start()
    done = 0
    while done < n and not clock.expired():
        await task.kiq(done)
        done += 1
    clock.stop()
    await broker.shutdown()
    return done


def enqueue(broker: Any, task: Any, n: int, clock: Clock, warmup: bool) -> int:
    return asyncio.run(_enqueue(broker, task, n, clock, warmup))
