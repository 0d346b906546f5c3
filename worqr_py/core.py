"""The pure core of worqr_py: every public operation as an :data:`~worqr_py.calls.Op`.

No I/O happens here. Each method validates its arguments (raising before anything is sent),
then yields the calls to run and turns their replies into results. ``Worqr`` (threads) and
``AsyncWorqr`` (asyncio) execute the same operations, so the two cannot drift apart.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import scripts as S
from . import validate as v
from .calls import Call, Op, command, script, text, texts
from .errors import NotWorking, WorkerFailed, WorkerNotStarted
from .keys import Keys, QueueKeys, process_id, split_process_id

Notify = Callable[..., None]


@dataclass(frozen=True, slots=True)
class Process:
    """A task being worked on: ``id`` (finish or stop it by this), ``queue``, ``task``, and
    ``deliveries``, how many times this task has been handed to a worker, this time included."""

    id: str
    queue: str
    task: str
    deliveries: int = 1


@dataclass(frozen=True, slots=True)
class Options:
    """Validated settings shared by both drivers (see ``Worqr`` for their meaning)."""

    prefix: str = "worqr"
    heartbeat_interval: float = 1.0
    heartbeat_ttl: float = 3.0
    poll_interval: float = 5.0

    def __post_init__(self) -> None:
        v.prefix(self.prefix)
        v.seconds(self.heartbeat_interval, "heartbeat_interval")
        v.seconds(self.heartbeat_ttl, "heartbeat_ttl")
        v.seconds(self.poll_interval, "poll_interval")
        if self.heartbeat_ttl <= self.heartbeat_interval:
            raise ValueError("heartbeat_ttl must be longer than heartbeat_interval")

    @property
    def ttl_ms(self) -> int:
        return max(1, round(self.heartbeat_ttl * 1000))

    @property
    def margin(self) -> float:
        """How long before Redis would expire it a worker stops trusting its heartbeat."""
        return (self.heartbeat_ttl - self.heartbeat_interval) / 2


@dataclass(slots=True)
class WorkerState:
    """This instance's worker: id, liveness deadline (monotonic), queues, held processes."""

    id: str | None = None
    failed: str | None = None
    deadline: float = 0.0
    queues: set[str] = field(default_factory=set)
    held: dict[str, Process] = field(default_factory=dict)
    next_token: int = 1
    cleaned: bool = False


class Core:
    """Operations and worker state of one Worqr instance. Drivers call ``notify(event, *args)``
    hooks through ``self.notify``: ``("failed", worker_id, reason)``, ``("lost", process)`` and
    ``("reclaimed", worker_id, queue, count)``."""

    def __init__(self, options: Options, notify: Notify) -> None:
        self.options = options
        self.keys = Keys(options.prefix)
        self.worker = WorkerState()
        self.notify = notify
        self._lock = threading.Lock()

    # ---- queues (no worker needed) -------------------------------------------------------
    def enqueue(self, queue: str, task: str | list[str]) -> Op[int]:
        """RPUSH the task(s) at the tail and PUBLISH work, atomically (enqueue.lua)."""
        k = self._queue(queue)
        tasks = v.tasks(task)
        if not tasks:
            return int((yield command("LLEN", k.q)))
        replies = yield [
            script(S.ENQUEUE, [k.q], [k.ev, *tasks]),
            command("SADD", self.keys.queues, queue),
        ]
        return int(replies[0])

    def get_tasks(self, queue: str) -> Op[list[str]]:
        """The queued tasks in delivery order, next first (one LRANGE: a consistent read)."""
        return texts((yield command("LRANGE", self._queue(queue).q, 0, -1)))

    def peek_queue(self, queue: str) -> Op[str | None]:
        """The next task to be delivered, or None (one LINDEX)."""
        reply = yield command("LINDEX", self._queue(queue).q, 0)
        return None if reply is None else text(reply)

    def count_queue(self, queue: str) -> Op[int]:
        """How many tasks are queued, in-process ones not counted (one LLEN)."""
        return int((yield command("LLEN", self._queue(queue).q)))

    def cancel_tasks(self, queue: str, task: str) -> Op[int]:
        """Remove every queued copy of ``task`` and PUBLISH ``cancel`` to the queue's
        workers, atomically (cancel.lua). In-process copies are the workers' to stop.
        Returns how many queued copies were removed."""
        k = self._queue(queue)
        return int((yield script(S.CANCEL, [k.q, k.qn], [v.task(task), k.ev])))

    def delete_queue(self, queue: str) -> Op[None]:
        """Drop the queued tasks and PUBLISH ``delete``, atomically (delete.lua), and unlist
        the queue from ``get_queues``. Processes in flight are left to their workers."""
        k = self._queue(queue)
        yield [command("SREM", self.keys.queues, queue), script(S.DELETE, [k.q, k.qn], [k.ev])]

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
        qkeys = [self.keys.queue(q) for q in names]
        members = yield [command("SMEMBERS", k.w) for k in qkeys]
        pairs = [
            (k, wid) for k, ws in zip(qkeys, members, strict=True) for wid in sorted(texts(ws))
        ]
        if not pairs:
            return []
        replies = yield [command("HGETALL", k.procs(w)) for k, w in pairs] + [
            command("HGETALL", k.d) for k in qkeys
        ]
        counts = {k.queue: _pairs(r) for k, r in zip(qkeys, replies[len(pairs) :], strict=True)}
        found = []
        for (k, wid), procs in zip(pairs, replies, strict=False):
            for tok, t in sorted(_pairs(procs).items(), key=lambda kv: int(kv[0])):
                if t == task:
                    n = int(counts[k.queue].get(f"{wid}.{tok}", 1))
                    found.append(Process(process_id(k.queue, wid, tok), k.queue, t, n))
        return found

    # ---- worker lifecycle ------------------------------------------------------------------
    def start_worker(self) -> Op[str]:
        """Register a new worker id (register.lua) unless this one is alive. Returns the id."""
        w = self.worker
        if w.id is not None and w.failed is None:
            return w.id
        wid = uuid.uuid4().hex
        sent = time.monotonic()
        yield script(
            S.REGISTER, [self.keys.workers, self.keys.heartbeat(wid)], [wid, self.options.ttl_ms]
        )
        self.worker = WorkerState(
            id=wid, deadline=sent + self.options.heartbeat_ttl - self.options.margin
        )
        return wid

    def start_work(self, queue: str) -> Op[None]:
        """Join the queue's worker set (SADD), then record the queue under the live worker
        (join.lua); if the heartbeat is already gone, undo with unwork and fail."""
        k = self._queue(queue)
        wid = self._alive()
        yield command("SADD", k.w, wid)
        if not (
            yield script(S.JOIN, [self.keys.heartbeat(wid), self.keys.working_queues(wid)], [queue])
        ):
            yield self._unwork(k, wid)
            raise self._fail("heartbeat key expired")
        self.worker.queues.add(queue)

    def stop_work(self, queue: str) -> Op[int]:
        """Return this worker's processes on the queue to its front (unwork.lua) and leave it."""
        k = self._queue(queue)
        w = self.worker
        wid = self._started()
        w.queues.discard(queue)
        replies = yield [
            self._unwork(k, wid),
            command("SREM", self.keys.working_queues(wid), queue),
        ]
        for pid in [p for p, proc in w.held.items() if proc.queue == queue]:
            del w.held[pid]
        return int(replies[0])

    def fail_worker(self, worker_id: str | None = None) -> Op[int]:
        """Fail a worker (this one by default): delete its heartbeat, return all its processes
        to the front of their queues (one unwork.lua per queue), then deregister it.
        Returns how many tasks went back."""
        if worker_id is None or worker_id == self.worker.id:
            wid = self._started()
            self.worker.cleaned = True
            if self.worker.failed is None:
                self._fail("fail_worker() called")
        else:
            wid = v.name(worker_id, "worker_id")
        return (yield from self._deregister(wid, "fail"))

    def cleanup(self) -> Op[int]:
        """The Redis side of this worker's own failure, once: what a driver runs in the
        background after a ``failed`` notification (fail_worker does it inline)."""
        w = self.worker
        if w.id is None or w.cleaned:
            return 0
        w.cleaned = True
        return (yield from self._deregister(w.id, "fail"))

    def reap(self, worker_id: str) -> Op[int]:
        """A peer's reclaim of a worker whose heartbeat is gone (nothing if it is alive)."""
        return (yield from self._deregister(worker_id, "reap"))

    def beat(self) -> Op[None]:
        """One heartbeat: ``SET hb XX PX ttl`` plus a ``SET NX PX`` try for the supervision
        turn, in one round trip; the turn's holder then scans the workers (supervise)."""
        w = self.worker
        if not self._check():
            return
        wid = w.id
        assert wid is not None
        sent = time.monotonic()
        turn_ms = max(1, round(self.options.heartbeat_interval * 900))
        alive, turn = yield [
            command("SET", self.keys.heartbeat(wid), "1", "XX", "PX", self.options.ttl_ms),
            command("SET", self.keys.supervisor, wid, "NX", "PX", turn_ms),
        ]
        if w is not self.worker or w.failed is not None:
            return
        if not alive:
            self._fail("heartbeat key expired")
            return
        w.deadline = sent + self.options.heartbeat_ttl - self.options.margin
        if turn:
            yield from self.supervise()

    def supervise(self) -> Op[int]:
        """Find registered workers whose heartbeat is gone (SMEMBERS + one MGET) and reap them.
        Returns how many tasks went back."""
        me = self.worker.id
        others = [
            x for x in sorted(texts((yield command("SMEMBERS", self.keys.workers)))) if x != me
        ]
        if not others:
            return 0
        beats = yield command("MGET", *[self.keys.heartbeat(x) for x in others])
        total = 0
        for wid, hb in zip(others, beats, strict=True):
            if hb is None:
                total += yield from self.reap(wid)
        return total

    # ---- processes ---------------------------------------------------------------------
    def dequeue(self, queue: str, count: int = 1) -> Op[list[Process]]:
        """Move up to ``count`` tasks from the queue's head into this worker's processes
        (dequeue.lua: fenced on the worker still being one of the queue's)."""
        k = self._queue(queue)
        if isinstance(count, bool) or not isinstance(count, int):
            raise TypeError(f"count must be an int, not {type(count).__name__}")
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count}")
        w = self.worker
        wid = self._alive()
        if queue not in w.queues:
            raise NotWorking(f"worker {wid} does not work on {queue!r}: call start_work(queue)")
        with self._lock:
            token = w.next_token
            w.next_token += count
        reply = yield script(S.DEQUEUE, [k.q, k.qn, k.w, k.procs(wid), k.d], [wid, token, count])
        if reply == -1:
            if queue not in w.queues or w is not self.worker:
                raise NotWorking(f"worker {wid} stopped working on {queue!r}")
            raise self._fail("removed from the queue by a peer")
        items = texts(reply[0::2])
        procs = [
            Process(process_id(queue, wid, token + i), queue, t, int(n))
            for i, (t, n) in enumerate(zip(items, reply[1::2], strict=True))
        ]
        for p in procs:
            w.held[p.id] = p
        return procs

    def finish_process(self, process_id: str) -> Op[bool]:
        """Drop the process if it is still this live worker's (finish.lua, fenced)."""
        return (yield from self._settle(process_id, S.FINISH))

    def stop_process(self, process_id: str) -> Op[bool]:
        """Return the process to the FRONT of its queue if still ours (stop.lua, fenced)."""
        return (yield from self._settle(process_id, S.STOP))

    def pending_work(self) -> Op[list[tuple[str, int]]]:
        """``(queue, length)`` for each queue this worker works on that has tasks: what a
        worker re-announces to itself after a reconnect and on the fallback poll."""
        queues = sorted(self.worker.queues)
        if not queues or self.worker.failed is not None:
            return []
        lengths = yield [command("LLEN", self.keys.queue(q).q) for q in queues]
        return [(q, int(n)) for q, n in zip(queues, lengths, strict=True) if int(n) > 0]

    # ---- internals ---------------------------------------------------------------------
    def channel(self, queue: str) -> str:
        return self._queue(queue).ev

    def _queue(self, queue: str) -> QueueKeys:
        return self.keys.queue(v.name(queue, "queue"))

    def _unwork(self, k: QueueKeys, wid: str) -> Call:
        return script(S.UNWORK, [k.q, k.qn, k.w, k.procs(wid), k.d], [wid, k.ev])

    def _deregister(self, wid: str, mode: str) -> Op[int]:
        hb, wq = self.keys.heartbeat(wid), self.keys.working_queues(wid)
        queues = yield script(S.DEREGISTER, [hb, wq], [mode])
        if queues is None:
            return 0
        qkeys = [self.keys.queue(q) for q in sorted(texts(queues))]
        counts = (yield [self._unwork(k, wid) for k in qkeys]) if qkeys else []
        yield script(S.FORGET, [self.keys.workers, wq], [wid])
        if mode == "reap":
            for k, n in zip(qkeys, counts, strict=True):
                self.notify("reclaimed", wid, k.queue, int(n))
        return sum(int(n) for n in counts)

    def _settle(self, pid: str, s: S.Script) -> Op[bool]:
        parts = split_process_id(v.name(pid, "process_id"))
        if parts is None:
            raise ValueError(f"process_id {pid!r} is not a worqr process id")
        queue, wid, token = parts
        w = self.worker
        if self._started() != wid:
            return False
        if not self._check():
            w.held.pop(pid, None)
            return False
        k = self.keys.queue(queue)
        if s is S.FINISH:
            reply = yield script(s, [k.procs(wid), k.d], [wid, token])
        else:
            reply = yield script(s, [k.q, k.qn, k.procs(wid), k.d], [wid, k.ev, token])
        proc = w.held.pop(pid, None)
        ok = bool(reply and int(reply[0]) == 1)
        if not ok and proc is not None:
            self.notify("lost", proc)
        return ok

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
        if time.monotonic() >= w.deadline:
            self._fail("heartbeat lapsed: no refresh within heartbeat_ttl minus margin")
            return False
        return True

    def _fail(self, reason: str) -> WorkerFailed:
        """Mark this worker failed (once), telling the driver; returns the error to raise."""
        w = self.worker
        with self._lock:
            first = w.failed is None
            if first:
                w.failed = reason
        if first:
            lost, w.held = list(w.held.values()), {}
            w.queues.clear()
            self.notify("failed", w.id, reason)
            for p in lost:
                self.notify("lost", p)
        return WorkerFailed(f"worker {w.id} has failed ({w.failed})")


def _pairs(reply: Any) -> dict[str, str]:
    """An HGETALL reply (dict under RESP3/decoders, flat list otherwise) as a dict of str."""
    if isinstance(reply, dict):
        return {text(a): text(b) for a, b in reply.items()}
    items = texts(reply)
    return dict(zip(items[0::2], items[1::2], strict=True))
