# GENERATED from worqr_py/drivers/_async/reading.py by scripts/unasync.py: do not edit.
# Edit that file, then run: python scripts/unasync.py
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
from .jobs import JobsApi


class ReadingApi(JobsApi):
    """Views of what a prefix holds in Redis, for people, dashboards and metrics."""

    @doc(Core.overview)
    def overview(self) -> Overview:
        return self._run(self._core.overview())

    @doc(Core.snapshot)
    def snapshot(self, queues: list[str] | None = None) -> Snapshot:
        return self._run(self._core.snapshot(queues))

    @doc(Core.queue_stats)
    def queue_stats(self, queues: list[str] | None = None) -> list[QueueStats]:
        return self._run(self._core.queue_stats(queues))

    @doc(Core.throughput)
    def throughput(self, queue: str, minutes: int = 60) -> list[Minute]:
        return self._run(self._core.throughput(queue, minutes))

    @doc(Core.get_processes)
    def get_processes(self, queue: str) -> list[Process]:
        return self._run(self._core.get_processes(queue))
