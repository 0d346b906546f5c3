"""The read-only views of a client: ``overview``, ``snapshot``, ``queue_stats``,
``throughput`` and ``get_processes`` (what ``worqr top``, the dashboard and /metrics show).
None of them writes.

This asyncio file is the source: ``_sync/reading.py`` is generated from it.
"""

from __future__ import annotations

from ...core import Core, Process
from ...core.inspection import Snapshot
from ...core.model import Minute, Overview, QueueStats
from ..base import doc
from .jobs import AsyncJobsApi


class AsyncReadingApi(AsyncJobsApi):
    """Views of what a prefix holds in Redis, for people, dashboards and metrics."""

    @doc(Core.overview)
    async def overview(self) -> Overview:
        return await self._run(self._core.overview())

    @doc(Core.snapshot)
    async def snapshot(self, queues: list[str] | None = None) -> Snapshot:
        return await self._run(self._core.snapshot(queues))

    @doc(Core.queue_stats)
    async def queue_stats(self, queues: list[str] | None = None) -> list[QueueStats]:
        return await self._run(self._core.queue_stats(queues))

    @doc(Core.throughput)
    async def throughput(self, queue: str, minutes: int = 60) -> list[Minute]:
        return await self._run(self._core.throughput(queue, minutes))

    @doc(Core.get_processes)
    async def get_processes(self, queue: str) -> list[Process]:
        return await self._run(self._core.get_processes(queue))
