"""What the two taskiq apps share: their worker variants and their enqueue loop."""

from __future__ import annotations

import asyncio
from typing import Any


async def _enqueue(broker: Any, task: Any, n: int) -> int:
    await broker.startup()
    for i in range(n):
        await task.kiq(i)
    await broker.shutdown()
    return n


def variants(app: str, broker: str) -> dict[str, tuple[str, list[str]]]:
    """The worker command lines for the taskiq app module ``app`` (its broker is ``broker``)."""
    target = f"peerapps.{app}:broker"
    return {
        "default": (
            f"taskiq {broker} (default: --workers 2, max-async-tasks 100)",
            ["taskiq", "worker", target],
        ),
        "w1": (f"taskiq {broker} --workers 1", ["taskiq", "worker", target, "--workers", "1"]),
    }


def enqueue(broker: Any, task: Any, n: int) -> int:
    return asyncio.run(_enqueue(broker, task, n))
