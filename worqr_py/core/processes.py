"""Processes: taking tasks and settling them (finish or stop), fenced to the live owner. Pure."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import NotWorking, WorkerFailed
from . import scripts as S
from .calls import Op, command, scored, script, text, time_ms
from .delayed import PROMOTE_CHUNK
from .keys import JOB_MARK, QueueKeys, process_ids
from .model import Lost, Process, Reason, new_process
from .returns import ReturnOps


class ProcessOps(ReturnOps):
    """dequeue (optionally finishing first), finish_process(es), pending work; the returns
    (stop_process, dead_letter_process) are ReturnOps'."""

    def dequeue(
        self,
        queue: str,
        count: int = 1,
        finish: Sequence[str] = (),
        wake_one: bool = False,
        outcomes: Mapping[str, str] | None = None,
    ) -> Op[list[Process]]:
        """Finish ``finish`` (ids of this worker's processes on the same queue), then move up
        to ``count`` tasks from the queue's head into this worker's processes: one dequeue.lua
        call, atomic and fenced on the worker still being one of the queue's. A finish that
        finds the process no longer ours emits ``lost``. ``wake_one`` (the runtime's takes):
        a short take makes this worker one of the queue's waiting workers, woken by name for
        the next task; a full take takes it out (its runner tries the queue again).
        ``outcomes`` (the job runtime's): process id -> how its job ended, "f:<result>" or
        "x:<error>" (include/jobs.lua), for ids among ``finish``."""
        k = self._queue(queue)
        if isinstance(count, bool) or not isinstance(count, int):
            raise TypeError(f"count must be an int, not {type(count).__name__}")
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count}")
        if isinstance(finish, str):
            raise TypeError("finish must be a list of process ids, not a str")
        w = self.worker
        wid = self._alive()
        if queue not in w.queues:
            raise NotWorking(f"worker {wid} does not work on {queue!r}: call start_work(queue)")
        sent, tokens = self._acks(finish, queue, outcomes) if finish else (None, [])
        with self._lock:
            token = w.next_token
            w.next_token += count
        keys, tail = self._dequeue_words(k, wid)
        wake = "1" if wake_one else ""
        reply = yield script(S.DEQUEUE, keys, [wid, token, count, k.done, wake, *tail, *tokens])
        if reply == -1:
            self._finished(finish, [])
            if queue not in w.queues or w is not self.worker:
                raise NotWorking(f"worker {wid} stopped working on {queue!r}")
            raise self._fail(Reason.REMOVED)
        if finish:
            flags = reply[0]
            if sent is None and flags.count(1) == len(finish):
                self._finished(finish, None)  # every one sent, every one still ours
            else:
                it = iter(flags)
                sent = sent or [True] * len(finish)
                self._finished(finish, [ours and int(next(it)) == 1 for ours in sent])
        self._learn_due(queue, int(reply[1]))
        ids = process_ids(queue, wid, token, (len(reply) - 2) // 2)
        procs = [
            _process(pid, queue, t, n)
            for pid, t, n in zip(ids, reply[2::2], reply[3::2], strict=True)
        ]
        with self._lock:  # checked and recorded at once: a failure either sees them or wins
            ours = w is self.worker and self._trusted()
            if ours:
                w.held.update(zip(ids, procs, strict=True))
        if not ours:
            # The reply came after this worker failed (a call retried across an outage, or
            # the clock ran out meanwhile): what it took is not ours to run. It sits in our
            # record, which our cleanup or a peer's reap returns to the front.
            self._check()
            raise WorkerFailed(f"worker {wid} failed while its dequeue was in flight")
        return procs

    def _dequeue_words(self, k: QueueKeys, wid: str) -> tuple[list[str], list[str | int]]:
        """dequeue.lua's KEYS, and its ARGV after the wake flag, for queue ``k``, worker
        ``wid`` and this minute's counters: built once per queue, worker and minute (the hot
        path of every take), never changed once built."""
        minute = int(self.wall() // 60)
        cached = self._dequeue_cache.get(k.queue)
        if cached is not None and cached[0] == wid and cached[1] == minute:
            return cached[2], cached[3]
        keys = [*k.dequeue_keys(wid), *k.tally_keys(minute)]
        tail: list[str | int] = [k.events, self._wakes(k), k.queue, PROMOTE_CHUNK, k.job_ends]
        if len(self._dequeue_cache) >= 1024:
            self._dequeue_cache.clear()
        self._dequeue_cache[k.queue] = (wid, minute, keys, tail)
        return keys, tail

    def finish_process(self, process_id: str, result: Any = None) -> Op[bool]:
        """Drop the process if it is still this live worker's (finish.lua, fenced, atomic),
        releasing a unique task's lock, and PUBLISH ``done`` with ``result`` (any JSON value)
        on the queue's done channel. False (and ``lost``) if it was no longer ours."""
        return (yield from self.finish_processes([process_id], result))[0]

    def finish_processes(
        self,
        process_ids: Sequence[str],
        result: Any = None,
        outcomes: Mapping[str, str] | None = None,
    ) -> Op[list[bool]]:
        """Finish many processes: one finish.lua per queue, all in one round trip. Each
        result says whether that process was still this live worker's (else: ``lost``). A job
        among them ends as finished (``outcomes``: how each ended, as for ``dequeue``)."""
        if isinstance(process_ids, str) or not isinstance(process_ids, Sequence):
            raise TypeError("process_ids must be a list of process ids")
        try:
            result_json = json.dumps(result, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"result must be JSON-serializable: {exc}") from None
        parts = [self._parse(pid) for pid in process_ids]
        wid = self._started()
        if not self._check():
            self._finished(process_ids, [])
            return [False] * len(process_ids)
        by_queue: dict[str, list[int]] = {}
        for i, (queue, owner, _) in enumerate(parts):
            if owner == wid:
                by_queue.setdefault(queue, []).append(i)
        calls = []
        for queue, idx in by_queue.items():
            k = self.keys.queue(queue)
            ids = [process_ids[i] for i in idx]
            tokens = _settles(ids, [parts[i][2] for i in idx], outcomes, self.worker.held)
            keys = [k.processes(wid), k.deliveries, k.locks, k.done_listeners, k.workers]
            args = [wid, k.done, result_json, k.job_ends, *tokens]
            calls.append(script(S.FINISH, [*keys, *k.job_keys, *self._tally(k)], args))
        replies: list[Any] = (yield calls) if calls else []
        ok = [False] * len(process_ids)
        removed = False
        for (queue, idx), reply in zip(by_queue.items(), replies, strict=True):
            if reply == -1:  # no longer a worker of the queue: a peer failed or reclaimed us
                removed = removed or queue in self.worker.queues
                continue
            for i, flag in zip(idx, reply, strict=True):
                ok[i] = int(flag) == 1
        self._finished(process_ids, ok)
        if removed and self.worker.id == wid:
            self._fail(Reason.REMOVED)
        return ok

    def pending_work(self, only: str | Sequence[str] | None = None) -> Op[list[tuple[str, int]]]:
        """``(queue, length)`` for each queue this worker works on (or just ``only``, a queue
        or several) that has tasks, in one round trip: what a worker announces to itself on
        joining, after a reconnect and on the fallback poll. A queue whose earliest delayed
        task is due counts as having tasks (the dequeue promotes it); the due times of the
        others are learned (``due``), so an idle runner wakes when they come."""
        if only is None:
            queues = sorted(self.worker.queues)
        else:
            queues = [only] if isinstance(only, str) else list(only)
        if not queues or self.worker.failed is not None:
            return []
        qkeys = [self.keys.queue(q) for q in queues]
        replies = yield [
            *[command("LLEN", k.tasks) for k in qkeys],
            *[command("ZRANGE", k.delayed, 0, 0, "WITHSCORES") for k in qkeys],
            command("TIME"),
        ]
        now = time_ms(replies[-1])
        found = []
        for i, q in enumerate(queues):
            first = scored(replies[len(queues) + i])
            due_in = max(0, int(first[0][1]) - now) if first else -1
            self._learn_due(q, due_in)
            if int(replies[i]) > 0 or due_in == 0:
                found.append((q, int(replies[i])))
        return found

    def wait_for_work(self, queues: Sequence[str]) -> Op[None]:
        """Make this worker one of the waiting workers of each queue it works on
        (wait_for_work.lua, fenced; one pipeline), as a runner does on joining: the next
        task on such a queue wakes it by name."""
        wid = self._alive()
        calls = []
        for q in queues:
            k = self._queue(q)
            calls.append(script(S.WAIT_FOR_WORK, [k.workers, k.idle], [wid]))
        if calls:
            yield calls

    def pass_wake(self, queues: Sequence[str]) -> Op[int]:
        """This worker was woken for the queues but cannot take now: stop waiting on each
        and, if tasks are queued there, wake the next waiting worker instead (pass_wake.lua,
        atomic per queue; one pipeline). Returns how many were woken."""
        wid = self._started()
        calls = []
        for q in queues:
            k = self._queue(q)
            keys = [k.tasks, k.idle, k.workers]
            calls.append(script(S.PASS_WAKE, keys, [wid, self._wakes(k), q]))
        if not calls:
            return 0
        return sum(int(x) for x in (yield calls))

    def _acks(
        self, finish: Sequence[str], queue: str, outcomes: Mapping[str, str] | None
    ) -> tuple[list[bool] | None, list[str]]:
        """For a dequeue's ``finish``, in one pass: whether each id is this worker's process
        (its token is sent; a process on another queue raises ``ValueError``, one of another
        worker is left out), None when every one is, and the settle arguments sent
        (``_settles``, same rules)."""
        held, me = self.worker.held, self.worker.id
        sent: list[bool] | None = None
        out: list[str] = []
        for i, pid in enumerate(finish):
            p = held.get(pid) if pid.__class__ is str else None
            if p is not None and p.queue == queue:  # its id is ours: queue_worker.token
                token = pid.rpartition(".")[2]
                if not outcomes and not p.task.startswith(JOB_MARK):
                    out.append(token)  # what _settle gives a plain task of ours: the token
                else:
                    out.append(_settle(pid, token, outcomes, p))
            else:
                q, wid, token = self._parse(pid)
                if q != queue:
                    raise ValueError(f"process {pid!r} is not on queue {queue!r}")
                if sent is None:
                    sent = [True] * i
                if wid != me:
                    sent.append(False)
                    continue
                out.append(_settle(pid, token, outcomes, p))
            if sent is not None:
                sent.append(True)
        return sent, out

    def _finished(self, pids: Sequence[str], ok: Sequence[bool] | None) -> None:
        """Forget settled processes; tell of those that turned out not to be ours (``ok``
        false for them; None: every one was ours)."""
        held = self.worker.held
        if ok is None:
            for pid in pids:
                held.pop(pid, None)
            return
        for i, pid in enumerate(pids):
            proc = held.pop(pid, None)
            if proc is not None and not (i < len(ok) and ok[i]):
                self.notify(Lost(proc))


def _settles(
    pids: Sequence[str],
    tokens: Sequence[str | None],
    outcomes: Mapping[str, str] | None,
    held: Mapping[str, Process],
) -> list[str]:
    """The settle arguments of dequeue.lua/finish.lua: each token of ours, with its job's
    outcome appended as ":<outcome>" (include/jobs.lua): the one ``outcomes`` has, else
    "n:" (finished, no result) for a job, or a process this worker does not know (the script
    then reads its task: a plain one is unaffected). A plain task's token goes bare, so the
    script spends no command on jobs for it."""
    return [
        _settle(pid, tok, outcomes, held.get(pid))
        for pid, tok in zip(pids, tokens, strict=True)
        if tok is not None
    ]


def _settle(pid: str, token: str, outcomes: Mapping[str, str] | None, p: Process | None) -> str:
    """One settle argument (``_settles``): the token, with ":<outcome>" for a job or an
    unknown process ``p`` (None)."""
    how = outcomes.get(pid) if outcomes else None
    if how is None and (p is None or p.task.startswith(JOB_MARK)):
        how = "n:"
    return token if how is None else f"{token}:{how}"


def _process(pid: str, queue: str, raw: Any, n: Any) -> Process:
    """A Process from a dequeue reply's item and delivery count: a job's item is its task
    followed by "\x1f<options>\x1f<call>" (kept as ``Process.job``)."""
    item = raw.decode() if raw.__class__ is bytes else text(raw)
    if item.startswith(JOB_MARK):
        key, sep, job = item[1:].partition(JOB_MARK)
        if sep:
            return new_process(pid, queue, JOB_MARK + key, int(n), job)
    return new_process(pid, queue, item, int(n), None)
