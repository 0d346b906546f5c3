"""Processes: taking tasks and settling them (finish or stop), fenced to the live owner. Pure."""

from __future__ import annotations

from . import scripts as S
from . import validate as v
from .base import CoreBase
from .calls import Op, command, script, texts
from .errors import NotWorking
from .keys import process_id, split_process_id
from .model import Process


class ProcessOps(CoreBase):
    """dequeue, finish_process, stop_process, and the pending-work check."""

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
        """Return the process to the FRONT of its queue if still ours (stop.lua, fenced); a
        task already delivered ``max_deliveries`` times goes to the dead-letter list instead
        (a ``dead`` event). True if it was ours."""
        return (yield from self._settle(process_id, S.STOP))

    def pending_work(self) -> Op[list[tuple[str, int]]]:
        """``(queue, length)`` for each queue this worker works on that has tasks: what a
        worker re-announces to itself after a reconnect and on the fallback poll."""
        queues = sorted(self.worker.queues)
        if not queues or self.worker.failed is not None:
            return []
        lengths = yield [command("LLEN", self.keys.queue(q).q) for q in queues]
        return [(q, int(n)) for q, n in zip(queues, lengths, strict=True) if int(n) > 0]

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
            keys = [k.q, k.qn, k.procs(wid), k.d, k.dead]
            reply = yield script(s, keys, [wid, k.ev, self.options.dead_after, token])
        proc = w.held.pop(pid, None)
        outcome = int(reply[0]) if reply else 0
        if outcome == 0 and proc is not None:
            self.notify("lost", proc)
        if outcome == 2 and proc is not None:
            self.notify("dead", queue, proc.task)
        return outcome > 0
