"""What the two taskiq apps share: their worker variants and their enqueue loop."""

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


def variants(app: str) -> dict[str, tuple[str, list[str]]]:
    """The worker command lines for the taskiq app module ``app`` (its broker is ``broker``)."""
    target = f"peerapps.{app}:broker"
    return {
        "c1": (
            "taskiq worker --workers 1 --max-async-tasks 1",
            ["taskiq", "worker", target, "--workers", "1", "--max-async-tasks", "1"],
        ),
        "default": (
            "taskiq worker (default: --workers 2, max-async-tasks 100)",
            ["taskiq", "worker", target],
        ),
    }


def enqueue(broker: Any, task: Any, n: int, clock: Clock, warmup: bool) -> int:
    return asyncio.run(_enqueue(broker, task, n, clock, warmup))
