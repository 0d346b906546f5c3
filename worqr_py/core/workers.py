"""Worker lifecycle: registration, heartbeats, peer supervision and failing. Pure."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from . import scripts as S
from . import validate as v
from .base import CoreBase
from .calls import Call, Op, command, script, text, texts
from .keys import QueueKeys
from .model import Dead, Reason, Reclaimed, RedisRestarted, Removal, WorkerState

SCAN_CHUNK = 1000  # heartbeat keys per MGET while looking for dead workers
REAP_BATCH = 100  # dead workers per batch: one fence pipeline, leave_queue rounds, one removal
REAP_PER_TURN = 1000  # dead workers one supervision turn reaps; the next turn goes on
REAP_STEPS_PER_TURN = 2000  # leave_queue.lua calls one supervision turn makes; the next goes on
STEP_PIPELINE = 8  # steps of unfinished leaves per round trip, after the first round


@dataclass
class Leave:
    """One worker leaving one queue over several leave_queue.lua steps: what it returned so
    far, the tasks it dead-lettered, and whether it is complete."""

    wid: str
    k: QueueKeys
    back: int = 0
    done: bool = False
    dead: list[str] = field(default_factory=list)


@dataclass
class Budget:
    """How many more leave_queue.lua steps a supervision turn may make."""

    left: int


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
        wid = self.new_id()
        sent = self.clock()
        ttl = 0 if permanent else self.options.ttl_ms
        _, info = yield [
            script(S.REGISTER, [self.keys.workers, self.keys.heartbeat(wid)], [wid, ttl]),
            command("INFO", "server"),
        ]
        self._saw_run_id(_run_id(info))
        deadline = (
            math.inf if permanent else sent + self.options.heartbeat_ttl - self.options.margin
        )
        self.worker = WorkerState(id=wid, deadline=deadline, permanent=permanent)
        return wid

    def start_work(self, queue: str) -> Op[None]:
        """Join a queue, in one pipeline: record the queue under the live worker (join.lua,
        refused once its heartbeat is gone), join the queue's worker set (SADD), and check
        that it is still alive (join.lua again). Whatever a dying worker and a reclaiming peer
        interleave, the worker never stays in the set unseen by the reclaim: if either check
        fails it undoes the join itself (leave_queue) and fails."""
        k = self._queue(queue)
        wid = self._alive()
        join = script(S.JOIN, [self.keys.heartbeat(wid), self.keys.working_queues(wid)], [queue])
        first, _, second = yield [join, command("SADD", k.workers, wid), join]
        if not (first and second):
            yield from self._leave([Leave(wid, k)], 0)
            raise self._fail(Reason.EXPIRED)
        self.worker.queues.add(queue)

    def stop_work(self, queue: str) -> Op[int]:
        """Return this worker's processes on the queue to its front and leave the queue:
        leave_queue.lua steps (each atomic and bounded; the first fences the worker off the
        queue) until the leave is complete, the first pipelined with the registry updates."""
        k = self._queue(queue)
        w = self.worker
        wid = self._started()
        w.queues.discard(queue)
        leave = Leave(wid, k)
        extra = [
            command("SREM", self.keys.working_queues(wid), queue),
            command("SADD", self.keys.queues, queue),
        ]
        yield from self._leave([leave], 0, extra)
        for pid in [p for p, proc in list(w.held.items()) if proc.queue == queue]:
            del w.held[pid]
        return leave.back

    def fail_worker(self, worker_id: str | None = None) -> Op[int]:
        """Fail a worker (this one by default): delete its heartbeat, return all its processes
        to the front of their queues (leave_queue.lua steps per queue, each atomic and
        bounded, until complete), then deregister it.
        Failing this worker is a graceful leave (nothing is dead-lettered); failing another
        treats its tasks as a crash's (max_deliveries applies). Returns how many went back."""
        if worker_id is None or worker_id == self.worker.id:
            wid = self._started()
            self.worker.cleaned = True
            if self.worker.failed is None:
                self._fail(Reason.CALLED)
            return (yield from self._deregister([wid], Removal.FAIL, 0))
        wid = v.name(worker_id, "worker_id")
        return (yield from self._deregister([wid], Removal.FAIL))

    def cleanup(self, w: WorkerState) -> Op[int]:
        """The Redis side of the failure of worker ``w`` (this instance's, as it was when it
        failed), once: what a driver runs in the background after a ``cleanup`` notification
        (fail_worker does it inline). Bound to ``w``, never to whatever worker this instance
        has registered since."""
        if w.id is None or w.cleaned:
            return 0
        w.cleaned = True
        return (yield from self._deregister([w.id], Removal.FAIL))

    def beat(self) -> Op[bool]:
        """One heartbeat: ``SET hb XX PX ttl`` (a permanent worker: ``SET hb 0 XX``, which
        only checks that no one failed it) plus a ``SET NX PX`` try for the supervision turn,
        in one round trip. Returns whether this worker won the turn: the driver then runs
        ``supervise`` apart, so a long scan never delays a heartbeat."""
        w = self.worker
        if not self._check():
            return False
        wid = w.id
        assert wid is not None
        sent = self.clock()
        turn_ms = self._turn_ms()
        ttl = self.options.ttl_ms
        refresh = (
            command("SET", self.keys.heartbeat(wid), 0, "XX")
            if w.permanent
            else command("SET", self.keys.heartbeat(wid), ttl, "XX", "PX", ttl)
        )
        alive, turn = yield [
            refresh,
            command("SET", self.keys.supervisor, wid, "NX", "PX", turn_ms),
        ]
        if w is not self.worker or w.failed is not None:
            return False
        if not alive:
            yield from self._lost_heartbeat()
            return False
        if not w.permanent:
            w.deadline = sent + self.options.heartbeat_ttl - self.options.margin
        return bool(turn)

    def supervise(self) -> Op[int]:
        """Find registered workers whose heartbeat is gone (SMEMBERS, then MGETs of at most
        ``SCAN_CHUNK`` keys) and reap up to ``REAP_PER_TURN`` of them, ``REAP_BATCH`` at a time,
        in at most ``REAP_STEPS_PER_TURN`` bounded leave_queue.lua steps, renewing the turn
        before each batch and each further round of steps (and stopping if it was lost). A
        worker whose leave is not complete stays registered: the next turn resumes it. Runs
        apart from the heartbeat. Returns how many tasks went back."""
        me = self.worker.id
        if me is None:
            return 0
        renew = script(S.RENEW_TURN, [self.keys.supervisor], [me, self._turn_ms()])
        if not (yield renew):  # a scan that starts late must not overlap a peer's turn
            return 0
        members = texts((yield command("SMEMBERS", self.keys.workers)))
        others = [x for x in sorted(members) if x != me]
        dead: list[str] = []
        for i in range(0, len(others), SCAN_CHUNK):
            chunk = others[i : i + SCAN_CHUNK]
            beats = yield command("MGET", *[self.keys.heartbeat(x) for x in chunk])
            dead += [wid for wid, hb in zip(chunk, beats, strict=True) if hb is None]
            if len(dead) >= REAP_PER_TURN:
                break
        total = 0
        budget = Budget(REAP_STEPS_PER_TURN)
        for i in range(0, min(len(dead), REAP_PER_TURN), REAP_BATCH):
            if budget.left <= 0 or not (yield renew):
                break
            batch = dead[i : i + REAP_BATCH]
            total += yield from self._deregister(batch, Removal.REAP, budget=budget, renew=renew)
        return total

    def _turn_ms(self) -> int:
        return max(1, round(self.options.heartbeat_interval * 900))

    def _lost_heartbeat(self) -> Op[None]:
        """The heartbeat key is gone: fail, saying whether Redis restarted without its data
        (its run_id changed), which is also reported as a ``redis_restarted`` event."""
        if self._saw_run_id(_run_id((yield command("INFO", "server")))):
            self._fail(Reason.RESTARTED)
        else:
            self._fail(Reason.EXPIRED)

    def _saw_run_id(self, run_id: str | None) -> bool:
        """Compare Redis' run_id with the one this instance saw last, whatever happened in
        between (a self-fence and a new registration included): a change is a restart,
        reported once as ``redis_restarted``. Returns whether it changed."""
        old, changed = self.run_id, bool(self.run_id and run_id and run_id != self.run_id)
        self.run_id = run_id or self.run_id
        if changed:
            self.notify(RedisRestarted(old, run_id))
        return changed

    def _deregister(
        self,
        wids: list[str],
        mode: Removal,
        dead_after: int | None = None,
        budget: Budget | None = None,
        renew: Call | None = None,
    ) -> Op[int]:
        """Fail (``Removal.FAIL``) or reap (``Removal.REAP``: only those whose heartbeat is gone)
        the workers ``wids``: fence_worker.lua for each (one pipeline), then leave_queue.lua
        steps for each of their queues (see ``_leave``; the queue is listed again, as a return
        may re-create it), then remove_worker.lua for each whose leaves are all complete (one
        pipeline). With a ``budget`` the steps stop when it is spent, and with ``renew`` when
        the supervision turn is lost: a worker left registered is resumed by the next reap
        (its heartbeat is gone). Returns how many tasks went back to their queues."""
        dead_after = self.options.dead_after if dead_after is None else dead_after
        found = yield [
            script(
                S.FENCE_WORKER,
                [self.keys.heartbeat(wid), self.keys.working_queues(wid)],
                [mode.value],
            )
            for wid in wids
        ]
        leaves = [
            Leave(wid, self.keys.queue(q))
            for wid, queues in zip(wids, found, strict=True)
            if queues is not None
            for q in sorted(texts(queues))
        ]
        extra = [command("SADD", self.keys.queues, x.k.queue) for x in leaves]
        yield from self._leave(leaves, dead_after, extra, budget, renew)
        left = {x.wid for x in leaves if not x.done}
        gone = [
            wid
            for wid, queues in zip(wids, found, strict=True)
            if queues is not None and wid not in left
        ]
        if gone:
            yield [
                script(S.REMOVE_WORKER, [self.keys.workers, self.keys.working_queues(wid)], [wid])
                for wid in gone
            ]
        for x in leaves:
            for task in x.dead:
                self.notify(Dead(x.k.queue, task))
            if mode is Removal.REAP:
                self.notify(Reclaimed(x.wid, x.k.queue, x.back))
        return sum(x.back for x in leaves)

    def _leave(
        self,
        leaves: Sequence[Leave],
        dead_after: int,
        extra: Sequence[Call] = (),
        budget: Budget | None = None,
        renew: Call | None = None,
    ) -> Op[None]:
        """Run leave_queue.lua steps until every leave is complete: the first round one step
        per leave, pipelined with ``extra``; then rounds of at most ``STEP_PIPELINE`` steps of
        the unfinished ones, so no round trip holds Redis for more than a few bounded calls.
        Stops early when ``budget`` is spent or ``renew`` (the supervision turn) fails."""
        todo = list(leaves)
        first = True
        while todo:
            if budget is not None and budget.left <= 0:
                return
            if not first and renew is not None and not (yield renew):
                return
            batch = todo if first else todo[:STEP_PIPELINE]
            if budget is not None:
                batch = batch[: budget.left]
                budget.left -= len(batch)
            calls = [self._leave_step(x.k, x.wid, dead_after) for x in batch]
            replies = yield calls + list(extra) if first else calls
            for x, reply in zip(batch, replies, strict=False):
                x.back += int(reply[0])
                x.done = int(reply[1]) == 1
                x.dead += texts(reply[2:])
            todo = [x for x in todo if not x.done]
            first = False


def _run_id(info: Any) -> str | None:
    """The run_id of an INFO reply (parsed to a dict by redis-py, or raw text)."""
    if isinstance(info, dict):
        found = info.get("run_id")
        return None if found is None else text(found)
    for line in text(info).splitlines():
        if line.startswith("run_id:"):
            return line.split(":", 1)[1].strip()
    return None
