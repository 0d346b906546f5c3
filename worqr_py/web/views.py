"""What each page shows, read through the client the dashboard was given. Reads only; the
actions are in ``app.py``. Long lists are cut (``SHOWN``): a page never reads a whole queue.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from ..core.model import QueueStats
from .charts import sparkline

SHOWN = 50  # entries of a list shown on a page (next tasks, delayed, dead letters, jobs)
CHARTED = 50  # queues with a chart on the queues page (the first, by name)


class Source:
    """The dashboard's calls on a ``Worqr`` or an ``AsyncWorqr``: an asyncio client's are
    awaited on the server's loop; a sync client's blocking ones run in the thread pool."""

    def __init__(self, worqr: Any) -> None:
        self.worqr = worqr
        self.seen: dict[str, float] = {}  # process id -> when this dashboard first saw it

    def ages(self, ids: list[str]) -> dict[str, float]:
        """Seconds since this dashboard first saw each of these processes (no start time is
        recorded in Redis: a lower bound, exact once the page has been watched since)."""
        now = time.monotonic()
        for pid in ids:
            self.seen.setdefault(pid, now)
        if len(self.seen) > 4 * SHOWN + len(ids):  # forget the ones gone
            self.seen = {pid: self.seen[pid] for pid in ids}
        return {pid: now - self.seen[pid] for pid in ids}

    async def __call__(self, name: str, *args: Any, **kwargs: Any) -> Any:
        method = getattr(self.worqr, name)
        if inspect.iscoroutinefunction(method):
            return await method(*args, **kwargs)
        return await run_in_threadpool(method, *args, **kwargs)


@dataclass
class QueueRow:
    """One queue on the queues page: its figures, its last full minute in and out, and a
    chart of its last hour (None past ``CHARTED`` queues)."""

    stats: QueueStats
    rate_in: int
    rate_out: int
    chart: Markup | None


async def queue_rows(src: Source) -> list[QueueRow]:
    stats = await src("queue_stats")
    charted = stats[:CHARTED]
    hours = await asyncio.gather(*(src("throughput", s.name, 60) for s in charted))
    rows = []
    for i, s in enumerate(stats):
        if i < len(hours):
            minutes = hours[i]
            ins = [m.counts.enqueued for m in minutes]
            outs = [m.counts.done for m in minutes]
            last = minutes[-2].counts  # the last full minute
            rows.append(QueueRow(s, last.enqueued, last.done, sparkline([ins, outs])))
        else:
            rows.append(QueueRow(s, 0, 0, None))
    return rows


async def queue_page(src: Source, name: str) -> dict[str, Any]:
    (stats,) = await src("queue_stats", [name])
    tasks, delayed, dead, procs, now, minutes = await asyncio.gather(
        src("get_tasks", name, limit=SHOWN),
        src("get_delayed", name, limit=SHOWN),
        src("get_dead", name, limit=SHOWN),
        src("get_processes", name),
        src("server_time"),
        src("throughput", name, 60),
    )
    chart = sparkline(
        [[m.counts.enqueued for m in minutes], [m.counts.done for m in minutes]], 600, 80
    )
    return {
        "stats": stats,
        "tasks": tasks,
        "delayed": delayed,
        "dead": dead,
        "processes": procs[:SHOWN],
        "ages": src.ages([p.id for p in procs[:SHOWN]]),
        "more_processes": max(0, len(procs) - SHOWN),
        "now": now,
        "chart": chart,
        "hour": [m.counts for m in minutes],
    }


async def jobs_page(src: Source, queue: str | None, status: str | None) -> dict[str, Any]:
    queues = await src("get_queues")
    jobs = await src("get_jobs", queue, status=status, limit=SHOWN) if queue else []
    return {"queues": queues, "queue": queue, "status": status, "jobs": jobs}
