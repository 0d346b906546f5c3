"""What every group of core operations shares: keys, options, this worker's state, and the
checks that fence a worker that is not started or has failed. Pure: no I/O, no clock, no
randomness and no threads of its own: the driver gives it a clock, an id source and a lock
(tests give it a fake clock and scripted replies)."""

from __future__ import annotations

import contextlib
import math
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from ..errors import WorkerFailed, WorkerNotStarted
from . import scripts as S
from . import validate as v
from .calls import Call, Op, command, script
from .keys import Keys, QueueKeys
from .model import Cleanup, Failed, Lost, Notify, Options, Reason, WorkerState

# What one call of a multi-call operation handles at most. Sized so that one call stays well
# under a few milliseconds of Redis time however large the queue or record (bench/chunks.py).
LEAVE_CHUNK = 500  # processes staged or returned per leave_queue.lua call
LIST_CHUNK = 1000  # list entries per cancel / purge_dead / requeue_dead call
LOCK_CHUNK = 1000  # uniqueness locks (HSCAN COUNT) per delete.lua call


METRIC_MINUTES = 63  # a minute's counter hash expires 62 minutes after its first count


class CoreBase:
    """Options, keys and worker state of one Worqr instance. The core tells its driver what
    happened through ``notify(event)``, with one of the typed events of ``core.model``:
    ``Cleanup``, ``Lost``, ``Failed``, ``Reclaimed``, ``Dead`` and ``RedisRestarted``."""

    def __init__(
        self,
        options: Options,
        notify: Notify,
        *,
        clock: Callable[[], float] = time.monotonic,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
        lock: AbstractContextManager[Any] | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        """``clock``: monotonic seconds (fencing); ``new_id``: worker ids; ``lock``: guards
        this worker's state where callers on several threads meet (the sync driver gives a
        ``threading.Lock``; asyncio needs none)."""
        self.options = options
        self.keys = Keys(options.prefix)
        self.worker = WorkerState()
        self.notify = notify
        self.clock = clock
        self.new_id = new_id
        self.wall = wall  # wall-clock seconds: the minute a throughput count goes to
        self.run_id: str | None = None  # of the Redis this worker registered on
        self.due: dict[str, float] = {}  # queue -> when (clock) its next delayed task is due
        self.sharded = False  # on a Redis Cluster: sharded pub/sub (the driver sets it)
        # queue -> (worker id, minute, KEYS, ARGV tail) of its dequeue.lua (processes.py)
        self._dequeue_cache: dict[str, tuple[str, int, list[str], list[str | int]]] = {}
        self._queue_keys: dict[str, QueueKeys] = {}  # checked queue names -> their keys
        self._lock: AbstractContextManager[Any] = lock or contextlib.nullcontext()

    def channel(self, queue: str) -> str:
        return self._queue(queue).events

    def _tally(self, k: QueueKeys) -> list[str]:
        """The throughput KEYS a counting script ends with: totals and this minute's."""
        return k.tally_keys(int(self.wall() // 60))

    def _metric_keys(self, k: QueueKeys) -> list[str]:
        """Every throughput counter key queue ``k`` can have now: its totals and the minutes
        a counting clock may have written and not yet expired (62 minutes, one ahead)."""
        now = int(self.wall() // 60)
        return [k.metrics, *(k.metrics_minute(m) for m in range(now - METRIC_MINUTES, now + 2))]

    def _wakes(self, k: QueueKeys) -> str:
        """The prefix of the wake channels a script on queue ``k`` publishes to (it appends
        the worker id): the prefix's own, or on a Redis Cluster the queue's (a shard channel
        must be in the slot of the script's keys)."""
        return k.wakes if self.sharded else self.keys.wakes

    def wake_channels(self, worker_id: str, queues: list[str]) -> list[str]:
        """The channels on which ``worker_id``'s runner of ``queues`` is woken: one, or on a
        Redis Cluster one per queue."""
        if not self.sharded:
            return [self.keys.wake(worker_id)]
        return [self._queue(q).wakes + worker_id for q in queues]

    def _queue(self, queue: str) -> QueueKeys:
        """The keys of ``queue``, once it is checked (``v.name``): a name checked before (a
        str, no subclass) is looked up, not checked again (every call on the hot path)."""
        k = self._queue_keys.get(queue) if queue.__class__ is str else None
        if k is None:
            k = self.keys.queue(v.name(queue, "queue"))
            if queue.__class__ is str:
                if len(self._queue_keys) >= 4096:
                    self._queue_keys.clear()
                self._queue_keys[queue] = k
        return k

    def _unlist_schedules(self, queue: str) -> Op[None]:
        """Take a queue whose schedules are gone (unschedule, delete_queue) off
        ``{P}:schedules``: SREM, then HLEN of its schedules in the same pipeline, and SADD
        back if a schedule() came meanwhile (its SADD follows its set), so a queue with a
        schedule stays listed in every order. Sent after the call that removed them."""
        _, left = yield [
            command("SREM", self.keys.schedules, queue),
            command("HLEN", self.keys.queue(queue).schedules),
        ]
        if int(left) > 0:
            yield command("SADD", self.keys.schedules, queue)

    def _hint(self, queue: str, due_ms: int | str) -> Call:
        """Note in the registry of delayed queues that ``queue`` has a task due at ``due_ms``
        (or "now": a lower bound) (hint.lua, atomic): sent after the call that delayed it,
        in the same pipeline, never before."""
        keys = [self.keys.delayed, self.keys.delayed_versions]
        return script(S.HINT, keys, [queue, due_ms])

    def _learn_due(self, queue: str, due_in_ms: int) -> None:
        """A dequeue or poll said when the queue's earliest delayed task is due (-1: none)."""
        if due_in_ms < 0:
            self.due.pop(queue, None)
        else:
            self.due[queue] = self.clock() + due_in_ms / 1000

    def due_in(self, queues: frozenset[str]) -> float:
        """Seconds until the earliest delayed task of these queues is due, as this instance
        last learned (``_learn_due``); inf if none is known."""
        soonest = min((t for q, t in list(self.due.items()) if q in queues), default=math.inf)
        return soonest - self.clock()

    def pop_due(self, queues: frozenset[str]) -> list[str]:
        """The queues among these whose earliest delayed task is due now, forgetting those
        times (the next dequeue reply tells the next ones)."""
        if not self.due:  # the common case: nothing delayed is known (every take asks)
            return []
        now = self.clock()
        fired = [q for q, t in list(self.due.items()) if t <= now and q in queues]
        for q in fired:
            self.due.pop(q, None)
        return fired

    def _leave_step(self, k: QueueKeys, wid: str, dead_after: int) -> Call:
        """One bounded step of W leaving the queue (leave_queue.lua, atomic): W is fenced off
        the queue and at most ``LEAVE_CHUNK`` of its processes are staged or go back to the
        front; repeat until its reply says done. ``dead_after`` deliveries send a task to the
        dead-letter list instead (0: a graceful leave, never)."""
        keys = [k.tasks, k.returned, k.workers, k.processes(wid), k.deliveries, k.dead, k.locks]
        keys += [k.staging(wid), k.idle, k.dead_reasons, *k.job_keys]
        args: list[str | int] = [wid, k.events, dead_after, LEAVE_CHUNK, self._wakes(k), k.queue]
        args.append(k.job_ends)
        return script(S.LEAVE_QUEUE, [*keys, *self._tally(k)], args)

    def _started(self) -> str:
        if self.worker.id is None:
            raise WorkerNotStarted("this Worqr has no worker: call start_worker() first")
        return self.worker.id

    def _alive(self) -> str:
        wid = self._started()
        if not self._check():
            raise WorkerFailed(
                f"worker {wid} has failed ({self.worker.failed}): "
                "call start_worker() to register a new worker"
            )
        return wid

    def _check(self) -> bool:
        """Is this worker still alive by its own clock? Fails it if its heartbeat lapsed."""
        w = self.worker
        if w.id is None or w.failed is not None:
            return False
        if self.clock() >= w.deadline:
            self._fail(Reason.LAPSED)
            return False
        return True

    def _trusted(self) -> bool:
        """``_check`` without failing anything: for a thread that must not emit events."""
        w = self.worker
        return w.id is not None and w.failed is None and self.clock() < w.deadline

    def _fail(self, reason: Reason) -> WorkerFailed:
        """Mark this worker failed (once), telling the driver; returns the error to raise.

        The driver hears ``cleanup`` (with this worker's state, so the cleanup can never touch
        a worker registered after it), then ``lost`` for every held process, then ``failed``:
        whoever re-registers on ``failed`` does so after every ``lost`` handler ran."""
        w = self.worker
        with self._lock:  # against a dequeue recording what it took (processes.py)
            first = w.failed is None
            if first:
                w.failed = reason
                lost, w.held = list(w.held.values()), {}
                w.queues.clear()
        if first:
            self.notify(Cleanup(w))
            for p in lost:
                self.notify(Lost(p))
            self.notify(Failed(w.id, reason))
        return WorkerFailed(f"worker {w.id} has failed ({w.failed})")
