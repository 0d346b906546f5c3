"""Queue operations: they need no worker. Pure: each returns an Op for a driver to run."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from . import scripts as S
from . import validate as v
from .base import LIST_CHUNK, LOCK_CHUNK
from .calls import Call, Commuting, Op, command, hash_reply, script, text, texts
from .delayed import DelayedOps
from .keys import process_id
from .model import DeadLetter, Process


class QueueOps(DelayedOps):
    """enqueue, reads, cancel, delete, and the registry listings."""

    def enqueue(
        self,
        queue: str,
        task: str | list[str],
        unique: bool = False,
        delay: Any = None,
        at: Any = None,
    ) -> Op[int | bool]:
        """RPUSH the task(s) at the tail and PUBLISH work, atomically (enqueue.lua); returns
        the queue's new length. With ``unique=True`` (one task): queue it only if no unique
        copy of it is queued, delayed or in process on the queue, and return whether it was
        queued (a bool; see enqueue_unique). With ``delay`` (seconds or a timedelta) or ``at``
        (a datetime): delay it instead (see ``schedule``); returns how many tasks are delayed
        on the queue then (with ``unique=True``: whether it was scheduled)."""
        if not isinstance(unique, bool):
            raise TypeError(f"unique must be a bool, not {type(unique).__name__}")
        when = v.when(delay, at)
        if when is not None:
            return (yield from self.enqueue_delayed(queue, task, when, unique))
        if unique:
            return (yield from self.enqueue_unique(queue, task))  # type: ignore[arg-type]
        return (yield from self.enqueue_many(queue, task))

    def enqueue_many(self, queue: str, task: str | list[str]) -> Op[int]:
        """enqueue without ``unique``: a task or a list of tasks, appended in order."""
        k = self._queue(queue)
        tasks = v.tasks(task)
        if not tasks:
            return int((yield command("LLEN", k.tasks)))
        replies = yield Commuting(
            [
                script(
                    S.ENQUEUE,
                    [k.tasks, k.idle, k.workers, *self._tally(k)],
                    [k.events, self._wakes(k), queue, *tasks],
                ),
                command("SADD", self.keys.queues, queue),
            ]
        )
        return int(replies[0])

    def enqueue_unique(self, queue: str, task: str) -> Op[bool]:
        """Queue ``task`` unless a unique copy of it (one enqueued with ``unique=True``) is
        queued or in process on the queue, and hold the queue's uniqueness lock for it until
        that copy leaves the system (finished, cancelled, deleted with the queue, or
        dead-lettered). One enqueue_unique.lua call, atomic and O(1): of racing producers
        exactly one queues it. Returns whether it was queued."""
        k = self._queue(queue)
        v.unique_task(task)
        length, _ = yield Commuting(
            [
                script(
                    S.ENQUEUE_UNIQUE,
                    [k.tasks, k.locks, k.idle, k.workers, *self._tally(k)],
                    [k.events, task, self._wakes(k), queue],
                ),
                command("SADD", self.keys.queues, queue),
            ]
        )
        return int(length) > 0

    def listen_done(self, queues: list[str]) -> Op[None]:
        """Say that a done listener exists on these queues (SET P:{E}:dl PX, one pipeline):
        finishers publish ``done`` only while it does. A listener refreshes it every
        ``poll_interval`` and after reconnecting; it lapses after 3 polls (at least 15 s)."""
        ttl = max(15_000, round(self.options.poll_interval * 3000))
        if queues:
            yield [command("SET", self._queue(q).done_listeners, "1", "PX", ttl) for q in queues]

    def get_tasks(self, queue: str, *, limit: int | None = None) -> Op[list[str]]:
        """The queued tasks in delivery order, next first: all, or the first ``limit`` (one
        LRANGE: a consistent read)."""
        stop = v.limit(limit)
        return texts((yield command("LRANGE", self._queue(queue).tasks, 0, stop)))

    def peek_queue(self, queue: str) -> Op[str | None]:
        """The next task to be delivered, or None (one LINDEX)."""
        reply = yield command("LINDEX", self._queue(queue).tasks, 0)
        return None if reply is None else text(reply)

    def count_queue(self, queue: str) -> Op[int]:
        """How many tasks are queued, in-process ones not counted (one LLEN)."""
        return int((yield command("LLEN", self._queue(queue).tasks)))

    def cancel_tasks(self, queue: str, task: str) -> Op[int]:
        """Remove every queued or delayed copy of ``task`` and PUBLISH ``cancel`` to the
        queue's workers: first the delayed copies (``cancel_delayed``), then cancel.lua
        steps, each atomic and bounded (a window of ``LIST_CHUNK`` entries, walked from the
        tail), one round trip each, the last one publishing. Not atomic as a whole:
        every copy queued when it began and still queued when it returns is gone; a copy
        enqueued meanwhile may stay. In-process copies are the workers' to stop. Returns how
        many queued or delayed copies were removed."""
        k = self._queue(queue)
        t = v.task(task)
        delayed = yield from self.cancel_delayed(queue, t)

        def step(offset: int, removed: int) -> Call:
            args: list[str | int] = [t, k.events, offset, LIST_CHUNK, delayed + removed]
            keys = [k.tasks, k.returned, k.locks, *k.job_keys]
            return script(S.CANCEL, keys, [*args, k.job_ends])

        return delayed + (yield from _windows(step))

    def delete_queue(self, queue: str) -> Op[None]:
        """Drop the queued tasks and PUBLISH ``delete`` (delete.lua's first call, atomic, in
        one pipeline with unlisting the queue from ``get_queues``), then release the dropped
        unique tasks' locks in further delete.lua calls of ``LOCK_CHUNK`` locks each. Its
        delayed tasks, periodic schedules and throughput counters go too (an UNLINK in the
        same pipeline); processes in flight are left to their workers, dead letters stay."""
        k = self._queue(queue)
        keys = [k.tasks, k.returned, k.locks, k.delayed, k.schedules, k.fired, k.jobs]
        keys.append(k.job_expiry)
        _, (_, cursor), _ = yield [
            command("SREM", self.keys.queues, queue),
            script(S.DELETE, keys, [k.events, "", LOCK_CHUNK]),
            command("UNLINK", *self._metric_keys(k)),
        ]
        # After the delete (its own round trip: a script reloaded on NOSCRIPT runs after the
        # rest of its pipeline).
        yield from self._unlist_schedules(queue)
        while text(cursor) != "0":
            _, cursor = yield script(S.DELETE, keys, [k.events, text(cursor), LOCK_CHUNK])

    def get_dead_tasks(self, queue: str) -> Op[list[str]]:
        """The queue's dead letters, oldest first (one LRANGE): tasks that were returned by a
        crash or ``stop_process`` after ``max_deliveries`` deliveries."""
        return texts((yield command("LRANGE", self._queue(queue).dead, 0, -1)))

    def get_dead(self, queue: str, *, limit: int | None = None) -> Op[list[DeadLetter]]:
        """The queue's dead letters, oldest first (all, or the first ``limit``), each with why
        it died where recorded (the handler's exception: type, message, traceback; its
        deliveries; when): LRANGE of the list and HGETALL of the reasons beside it in one
        round trip, or with a ``limit`` the LRANGE, then HMGET of those tasks' reasons."""
        k = self._queue(queue)
        stop = v.limit(limit)
        if limit is None:
            tasks, reasons = yield [
                command("LRANGE", k.dead, 0, -1),
                command("HGETALL", k.dead_reasons),
            ]
            why = {task: json.loads(raw) for task, raw in hash_reply(reasons).items()}
            return [dead_letter(t, why.get(t)) for t in texts(tasks)]
        names = texts((yield command("LRANGE", k.dead, 0, stop)))
        raws = (yield command("HMGET", k.dead_reasons, *names)) if names else []
        return [
            dead_letter(t, None if raw is None else json.loads(text(raw)))
            for t, raw in zip(names, raws, strict=True)
        ]

    def requeue_dead(self, queue: str, task: str | None = None) -> Op[int]:
        """Move dead letters (all, or the copies of ``task``) to the queue's TAIL as fresh
        tasks and PUBLISH work: requeue_dead.lua steps, each atomic and moving at most
        ``LIST_CHUNK`` (the first pipelined with listing the queue). Every dead letter present
        when it began is moved once; producers may enqueue between two steps' tasks. Returns
        how many moved."""
        k = self._queue(queue)
        which = ["all", ""] if task is None else ["one", v.task(task)]

        def step(offset: int) -> Call:
            keys = [k.dead, k.tasks, k.idle, k.workers, k.dead_reasons, *k.job_keys]
            args: list[str | int] = [k.events, *which, offset, LIST_CHUNK, self._wakes(k), queue]
            return script(S.REQUEUE_DEAD, keys, args)

        first, _ = yield [step(-1 if task is None else 0), command("SADD", self.keys.queues, queue)]
        return (yield from _windows(lambda offset, _: step(offset), first))

    def purge_dead(self, queue: str, task: str | None = None) -> Op[int]:
        """Drop dead letters for good: all of them in one purge_dead.lua call (UNLINK, freed
        in the background), or the copies of ``task`` in purge_dead.lua steps, each atomic
        and bounded (a window of ``LIST_CHUNK`` entries). Returns how many were dropped."""
        k = self._queue(queue)
        which = ["all", ""] if task is None else ["one", v.task(task)]
        return (
            yield from _windows(
                lambda offset, _: script(
                    S.PURGE_DEAD, [k.dead, k.dead_reasons], [*which, offset, LIST_CHUNK]
                )
            )
        )

    def get_queues(self) -> Op[list[str]]:
        """Names of the queues enqueued to and not deleted, sorted (SMEMBERS of a set,
        never KEYS or SCAN). A listed queue may be empty."""
        return sorted(texts((yield command("SMEMBERS", self.keys.queues))))

    def get_workers(self) -> Op[list[str]]:
        """Ids of the registered workers, sorted (one SMEMBERS). A dead worker stays listed
        until a peer reaps it (within about one heartbeat interval of its expiry)."""
        return sorted(texts((yield command("SMEMBERS", self.keys.workers))))

    def get_working_queues(self, worker_id: str | None = None) -> Op[list[str]]:
        """The queues a worker (this one by default) works on, sorted (one SMEMBERS)."""
        wid = self._started() if worker_id is None else v.name(worker_id, "worker_id")
        return sorted(texts((yield command("SMEMBERS", self.keys.working_queues(wid)))))

    def get_matching_processes(self, task: str, queue: str | None = None) -> Op[list[Process]]:
        """Every in-flight process, of any worker, whose task equals ``task``. Reads only."""
        v.task(task)
        names = [v.name(queue, "queue")] if queue is not None else (yield from self.get_queues())
        return [p for p in (yield from self.in_flight(names)) if p.task == task]

    def get_processes(self, queue: str) -> Op[list[Process]]:
        """Every process of every worker on the queue, in dequeue order per worker (its
        worker set, then their records and the delivery counts: two pipelined reads, not
        atomic). Reads only."""
        return (yield from self.in_flight([v.name(queue, "queue")]))

    def in_flight(self, queues: list[str]) -> Op[list[Process]]:
        """Every process of every worker on these queues, in dequeue order per worker: two
        pipelined reads (the queues' worker sets, then their process hashes), not atomic."""
        qkeys = [self.keys.queue(q) for q in queues]
        members = (yield [command("SMEMBERS", k.workers) for k in qkeys]) if qkeys else []
        owners = [(k, w) for k, ws in zip(qkeys, members, strict=True) for w in sorted(texts(ws))]
        if not owners:
            return []
        replies = yield [command("HGETALL", k.processes(w)) for k, w in owners] + [
            command("HGETALL", k.deliveries) for k in qkeys
        ]
        counts = {
            k.queue: hash_reply(r) for k, r in zip(qkeys, replies[len(owners) :], strict=True)
        }
        found = []
        for (k, wid), procs in zip(owners, replies, strict=False):
            for tok, t in sorted(hash_reply(procs).items(), key=lambda kv: int(kv[0])):
                n = int(counts[k.queue].get(f"{wid}.{tok}", 1))
                found.append(Process(process_id(k.queue, wid, tok), k.queue, t, n))
        return found


def dead_letter(task: str, why: dict[str, Any] | None) -> DeadLetter:
    """A DeadLetter from its task and its record in P:{E}:dr (None: no reason recorded)."""
    if not why:
        return DeadLetter(task)
    error = why.get("error") or {}
    return DeadLetter(
        task,
        error_type=error.get("type"),
        error_message=error.get("message"),
        traceback=error.get("traceback") or None,
        deliveries=int(why["deliveries"]),
        at=int(why["at"]) / 1000,
    )


def _windows(step: Callable[[int, int], Call], first: Any = None) -> Op[int]:
    """Run the bounded steps of a list walk (cancel, requeue_dead, purge_dead) until one
    answers done. Each step answers {count, next offset, done}; ``step(offset, so_far)``
    builds the next one from the offset the last answered and the count so far (``first``:
    the first step's reply, when it rode on a pipeline). Returns the total count."""
    total, reply = 0, first
    if reply is None:
        reply = yield step(0, 0)
    while True:
        count, offset, done = reply
        total += int(count)
        if int(done):
            return total
        reply = yield step(int(offset), total)
