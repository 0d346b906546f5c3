"""Worker lifecycle: registration, heartbeats, peer supervision and failing. Pure."""

from __future__ import annotations

import math
import time
import uuid
from typing import Any

from . import scripts as S
from . import validate as v
from .base import CoreBase
from .calls import Op, command, script, text, texts
from .model import FAIL_CALLED, WorkerState


class WorkerOps(CoreBase):
    """start_worker, start_work, stop_work, fail_worker, and the heartbeat/supervision steps."""

    def start_worker(self, permanent: bool = False) -> Op[str]:
        """Register a new worker id (register.lua, atomic) unless this one is alive; returns
        the id. A ``permanent`` worker's heartbeat never expires, so peers never reclaim it:
        only an explicit ``fail_worker`` returns its processes."""
        if not isinstance(permanent, bool):
            raise TypeError(f"permanent must be a bool, not {type(permanent).__name__}")
        w = self.worker
        if w.id is not None and w.failed is None:
            return w.id
        wid = uuid.uuid4().hex
        sent = time.monotonic()
        ttl = 0 if permanent else self.options.ttl_ms
        _, info = yield [
            script(S.REGISTER, [self.keys.workers, self.keys.heartbeat(wid)], [wid, ttl]),
            command("INFO", "server"),
        ]
        self.run_id = _run_id(info)
        deadline = (
            math.inf if permanent else sent + self.options.heartbeat_ttl - self.options.margin
        )
        self.worker = WorkerState(id=wid, deadline=deadline, permanent=permanent)
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
            yield self._unwork(k, wid, 0)
            raise self._fail("heartbeat key expired")
        self.worker.queues.add(queue)

    def stop_work(self, queue: str) -> Op[int]:
        """Return this worker's processes on the queue to its front (unwork.lua) and leave it."""
        k = self._queue(queue)
        w = self.worker
        wid = self._started()
        w.queues.discard(queue)
        replies = yield [
            self._unwork(k, wid, 0),
            command("SREM", self.keys.working_queues(wid), queue),
        ]
        for pid in [p for p, proc in w.held.items() if proc.queue == queue]:
            del w.held[pid]
        return int(replies[0][0])

    def fail_worker(self, worker_id: str | None = None) -> Op[int]:
        """Fail a worker (this one by default): delete its heartbeat, return all its processes
        to the front of their queues (one unwork.lua per queue), then deregister it.
        Failing this worker is a graceful leave (nothing is dead-lettered); failing another
        treats its tasks as a crash's (max_deliveries applies). Returns how many went back."""
        if worker_id is None or worker_id == self.worker.id:
            wid = self._started()
            self.worker.cleaned = True
            if self.worker.failed is None:
                self._fail(FAIL_CALLED)
            return (yield from self._deregister(wid, "fail", 0))
        wid = v.name(worker_id, "worker_id")
        return (yield from self._deregister(wid, "fail", self.options.dead_after))

    def cleanup(self) -> Op[int]:
        """The Redis side of this worker's own failure, once: what a driver runs in the
        background after a ``failed`` notification (fail_worker does it inline)."""
        w = self.worker
        if w.id is None or w.cleaned:
            return 0
        w.cleaned = True
        return (yield from self._deregister(w.id, "fail", self.options.dead_after))

    def reap(self, worker_id: str) -> Op[int]:
        """A peer's reclaim of a worker whose heartbeat is gone (nothing if it is alive)."""
        return (yield from self._deregister(worker_id, "reap", self.options.dead_after))

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
        ttl = self.options.ttl_ms
        take_turn = command("SET", self.keys.supervisor, wid, "NX", "PX", turn_ms)
        if w.permanent:  # nothing to refresh; it still takes its turns supervising peers
            if (yield take_turn):
                yield from self.supervise()
            return
        alive, turn = yield [
            command("SET", self.keys.heartbeat(wid), ttl, "XX", "PX", ttl),
            take_turn,
        ]
        if w is not self.worker or w.failed is not None:
            return
        if not alive:
            yield from self._lost_heartbeat()
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

    def _lost_heartbeat(self) -> Op[None]:
        """The heartbeat key is gone: fail, saying whether Redis restarted without its data
        (its run_id changed), which is also reported as a ``redis_restarted`` event."""
        run_id = _run_id((yield command("INFO", "server")))
        if self.run_id and run_id and run_id != self.run_id:
            self.notify("redis_restarted", self.run_id, run_id)
            self.run_id = run_id
            self._fail("Redis restarted without its data (run_id changed)")
        else:
            self._fail("heartbeat key expired")

    def _deregister(self, wid: str, mode: str, dead_after: int) -> Op[int]:
        hb, wq = self.keys.heartbeat(wid), self.keys.working_queues(wid)
        queues = yield script(S.DEREGISTER, [hb, wq], [mode])
        if queues is None:
            return 0
        qkeys = [self.keys.queue(q) for q in sorted(texts(queues))]
        replies = (yield [self._unwork(k, wid, dead_after) for k in qkeys]) if qkeys else []
        yield script(S.FORGET, [self.keys.workers, wq], [wid])
        for k, reply in zip(qkeys, replies, strict=True):
            for task in texts(reply[1:]):
                self.notify("dead", k.queue, task)
            if mode == "reap":
                self.notify("reclaimed", wid, k.queue, int(reply[0]))
        return sum(int(r[0]) for r in replies)


def _run_id(info: Any) -> str | None:
    """The run_id of an INFO reply (parsed to a dict by redis-py, or raw text)."""
    if isinstance(info, dict):
        found = info.get("run_id")
        return None if found is None else text(found)
    for line in text(info).splitlines():
        if line.startswith("run_id:"):
            return line.split(":", 1)[1].strip()
    return None
