"""What the ``worqr`` command prints: tasks one per line, delayed tasks with their due
times, dead letters with why they died, periodic schedules with their fires, what a delayed
enqueue did, and the queues and workers of an overview as rich tables."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime

from rich.console import Group
from rich.table import Table

from ..core.model import DeadLetter, Delayed, Overview
from ..core.periodic import Schedule
from ..drivers._sync.client import Worqr
from .when import exact_duration, instant_ms, iso_utc, server_now, until


def one_line(task: str) -> str:
    """A task as one line: as it is if it is non-empty and printable, else quoted and escaped
    as a Python literal (``'a\\nb'``), so a newline or control character cannot split it."""
    return task if task and task.isprintable() else repr(task)


def delayed_lines(delayed: list[Delayed], now: float) -> list[str]:
    """One line per delayed task, earliest first: its due time (ISO 8601, UTC), how long
    until then from ``now`` (the server's clock), its deliveries so far, and the task last
    (as ``one_line`` prints it)."""
    return [
        f"{iso_utc(d.due)}  {until(d.due, now):<14}  deliveries {d.deliveries:<3}  "
        f"{one_line(d.task)}"
        for d in sorted(delayed, key=lambda d: d.due)
    ]


REASON_CHARS = 300  # of an error message shown on a dead letter's line


def dead_line(d: DeadLetter) -> str:
    """A dead letter as one line: the task (as ``one_line`` prints it), then, where its
    reason was recorded, ``ValueError: boom 7  (3 deliveries, <when it died, ISO 8601 UTC>)``
    (a message given to ``dead_letter_process`` has no type; a long or multi-line message
    is cut and escaped, so it stays one line). With no reason: the task alone."""
    why = ": ".join(x for x in (d.error_type, d.error_message) if x)
    if not why.isprintable():
        why = repr(why)[1:-1]
    if len(why) > REASON_CHARS:
        why = why[: REASON_CHARS - 3] + "..."
    when = []
    if d.deliveries is not None:
        when.append(f"{d.deliveries} deliver{'y' if d.deliveries == 1 else 'ies'}")
    if d.at is not None:
        when.append(iso_utc(d.at))
    return "  ".join(
        x for x in (one_line(d.task), why, f"({', '.join(when)})" if when else "") if x
    )


def schedule_line(s: Schedule, now: float) -> str:
    """A periodic schedule as one line: queue, name, ``task T`` if it is not the name, ``every
    1m30s`` or ``cron '*/5 * * * *' (UTC)``, ``fires N``, ``last <ISO UTC> by <worker>`` (or
    ``last never``), ``next <ISO UTC> in 12.3s`` (from ``now``, the server's clock; ``overdue``
    if no runner has fired it yet). Names and tasks as ``one_line`` prints them."""
    parts = [one_line(s.queue), one_line(s.name)]
    if s.task != s.name:
        parts.append(f"task {one_line(s.task)}")
    if s.every is not None:
        parts.append(f"every {exact_duration(s.every)}")
    else:
        parts.append(f"cron {s.cron!r} (UTC)")
    parts.append(f"fires {s.fires}")
    last = "never" if s.last_fire is None else iso_utc(s.last_fire)
    parts.append(f"last {last}" + (f" by {s.fired_by}" if s.fired_by else ""))
    if s.next_fire is not None:
        parts.append(f"next {iso_utc(s.next_fire)} {until(s.next_fire, now)}")
    return "  ".join(parts)


def enqueue_later(
    w: Worqr, queue: str, tasks: list[str], delay: float | None, at: datetime | None
) -> str:
    """Enqueue ``tasks`` with ``delay`` (seconds) or ``at`` and say what happened: delayed
    until when (ISO 8601, UTC), or queued at once if that time has come (a past ``at``, a
    zero ``delay``). A delay becomes the instant it ends by the server's clock, to the ms,
    so the time printed is the due time stored (the library rounds ``at`` up to the ms)."""
    now_ms = math.floor(server_now(w) * 1000)
    if at is None:
        due_ms = now_ms + math.ceil((delay or 0.0) * 1000)
        at = instant_ms(due_ms)
    else:
        due_ms = math.ceil(at.timestamp() * 1000)
    count = w.enqueue(queue, tasks, at=at)
    if due_ms > now_ms:
        return f"delayed {len(tasks)} until {iso_utc(due_ms / 1000)}; {queue} has {count} delayed"
    return f"enqueued {len(tasks)} at once (due now); {queue} has {w.count_queue(queue)}"


def tables(o: Overview, delayed: Mapping[str, int]) -> Group:
    """The queues (with their counts of ``delayed`` tasks) and workers of an overview as two
    rich tables."""
    qt = Table(title="queues", title_justify="left")
    for col in ("queue", "queued", "delayed", "workers"):
        qt.add_column(col)
    for q in o.queues:
        qt.add_row(q.name, str(q.length), str(delayed.get(q.name, 0)), str(len(q.workers)))
    wt = Table(title="workers", title_justify="left")
    for col in ("worker", "heartbeat", "queues", "processes"):
        wt.add_column(col)
    for w in o.workers:
        if w.permanent:
            beat = "permanent"
        elif w.alive:
            beat = f"{w.heartbeat_age:.1f}s ago / ttl {w.ttl:g}s"
        else:
            beat = "DEAD (not reaped)"
        held = ", ".join(p.task for p in w.processes[:5]) + (" ..." if len(w.processes) > 5 else "")
        wt.add_row(w.id, beat, ", ".join(w.queues), f"{len(w.processes)}: {held}")
    return Group(qt, wt)


def view(w: Worqr) -> Group:
    """``w``'s overview as tables, with each queue's count of delayed tasks (a call per
    queue)."""
    o = w.overview()
    return tables(o, {q.name: w.count_delayed(q.name) for q in o.queues})
