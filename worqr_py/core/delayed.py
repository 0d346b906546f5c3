"""Delayed tasks: enqueue with a delay, read and cancel them, and promote the due ones
(lua/include/delayed.lua says how they are kept). Pure: each returns an Op for a driver to run.

Due times are the Redis server's clock: ``delay`` is added to it inside the script, and
``at`` is compared with it, so producers' and workers' clocks never matter (an ``at`` is an
instant; a producer's wall clock only says which instant it means).
"""

from __future__ import annotations

from . import scripts as S
from . import validate as v
from .base import CoreBase
from .calls import Op, command, scored, script, text, time_ms
from .model import Delayed

PROMOTE_CHUNK = 100  # delayed tasks one dequeue or promote call moves into the queue at most
PROMOTE_QUEUES_PER_TURN = 100  # queues a supervision turn promotes (the next turn goes on)
ZSCAN_CHUNK = 1000  # delayed-set entries per cancel_delayed.lua call (ZSCAN COUNT)


def _glob_escape(task: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in task)


class DelayedOps(CoreBase):
    """schedule (``enqueue`` with ``delay``/``at``), get_delayed, count_delayed,
    cancel_delayed, promote_due; and what this instance learned of its queues' due times."""

    def enqueue_delayed(
        self, queue: str, task: str | list[str], when: tuple[str, int], unique: bool = False
    ) -> Op[int | bool]:
        """Delay the task(s) (schedule.lua, atomic, retry-safe), then note the queue in the
        registry of delayed queues (hint.lua, in the same pipeline: one round trip).
        Returns how many tasks are now delayed on the queue; with ``unique=True`` (one task),
        whether it was scheduled (False: a unique copy is queued, delayed or in process). A
        due time already past queues the tasks at once."""
        k = self._queue(queue)
        tasks = [v.unique_task(task)] if unique else v.tasks(task)
        mode, amount = when
        if not tasks:
            return int((yield command("ZCARD", k.delayed)))
        base = self.new_id()
        pairs: list[str | int] = []
        for i, t in enumerate(tasks):
            pairs += [f"{base}.{i}", t]
        keys = [k.delayed, k.tasks, k.locks, k.idle, k.workers]
        args: list[str | int] = [
            k.events,
            self._wakes(k),
            queue,
            mode,
            amount,
            "1" if unique else "",
            *pairs,
        ]
        (count, scheduled, _), _, _ = yield [
            script(S.SCHEDULE, [*keys, *self._tally(k)], args),
            command("SADD", self.keys.queues, queue),
            self._hint(queue, amount if mode == "at" else "now"),  # same pipeline: never lost
        ]
        return bool(int(scheduled)) if unique else int(count)

    def get_delayed(self, queue: str, *, limit: int | None = None) -> Op[list[Delayed]]:
        """The queue's delayed tasks, earliest due first: all, or the first ``limit`` (one
        ZRANGE: a consistent read)."""
        stop = v.limit(limit)
        reply = yield command("ZRANGE", self._queue(queue).delayed, 0, stop, "WITHSCORES")
        out = []
        for member, score in scored(reply):
            _, n, _, task = text(member).split(":", 3)
            out.append(Delayed(task, float(score) / 1000, int(n)))
        return out

    def server_time(self) -> Op[float]:
        """The Redis server's clock, in seconds since the epoch (one TIME): the clock every
        due time is by (``Delayed.due``)."""
        return time_ms((yield command("TIME"))) / 1000

    def count_delayed(self, queue: str) -> Op[int]:
        """How many tasks are delayed on the queue (one ZCARD)."""
        return int((yield command("ZCARD", self._queue(queue).delayed)))

    def cancel_delayed(self, queue: str, task: str) -> Op[int]:
        """Remove the delayed copies of ``task`` (cancel_delayed.lua steps, each atomic and
        bounded: a ZSCAN of ``ZSCAN_CHUNK``). Returns how many were removed."""
        k = self._queue(queue)
        t = v.task(task)
        pattern = "*:" + _glob_escape(t)
        cursor, total = "0", 0
        while True:
            removed, cursor = yield script(
                S.CANCEL_DELAYED,
                [k.delayed, k.locks, *k.job_keys],
                [t, cursor, ZSCAN_CHUNK, pattern, k.job_ends],
            )
            total += int(removed)
            if text(cursor) == "0":
                return total

    def promote_due(self) -> Op[int]:
        """The supervision turn's promotion: the queues the registry says may have due tasks
        (due_queues.lua, at most ``PROMOTE_QUEUES_PER_TURN``), up to ``PROMOTE_CHUNK`` tasks
        each (promote.lua, one pipeline), then each queue's registry entry set to what is
        left (rehint.lua, one pipeline; unless a delay came meanwhile). Returns how many
        tasks were promoted."""
        reg = [self.keys.delayed, self.keys.delayed_versions]
        reply = yield script(S.DUE_QUEUES, reg, [PROMOTE_QUEUES_PER_TURN])
        found = [(text(q), text(ver)) for q, ver in zip(reply[::2], reply[1::2], strict=True)]
        if not found:
            return 0
        calls = []
        for q, _ in found:
            k = self.keys.queue(q)
            args: list[str | int] = [k.events, self._wakes(k), q, PROMOTE_CHUNK]
            calls.append(script(S.PROMOTE, k.promote_keys(), args))
        results = yield calls
        yield [
            script(S.REHINT, reg, [q, ver, int(res[1]) if int(res[0]) < PROMOTE_CHUNK else 0])
            for (q, ver), res in zip(found, results, strict=True)
        ]
        return sum(int(res[0]) for res in results)
