"""Issue 13: reclaim, cancel, delete, purge_dead and requeue_dead in bounded calls, on a real
redis-server. What is asserted is the outcome (exactly once, oldest first, counts, locks) and
the arithmetic of the calls (how many, how much each moved); never a duration."""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis

from worqr_py import Worqr
from worqr_py.core import base, scripts
from worqr_py.core import workers as workers_mod
from worqr_py.core.calls import Call, texts
from worqr_py.core.keys import Keys
from worqr_py.core.model import Removal, WorkerState

from .conftest import worker
from .support import wait_for

Step = Call | list[Call]
SLOW = {"heartbeat_interval": 0.5, "heartbeat_ttl": 5.0}  # liveness is not what these test


def execute(r: redis.Redis, step: Step) -> Any:
    """Run one step of a core operation as the drivers do (EVALSHA; a list is a pipeline)."""

    def words(c: Call) -> tuple[Any, ...]:
        return ("EVALSHA", c.script.sha, c.nkeys, *c.args) if c.script else c.args

    if isinstance(step, Call):
        return r.execute_command(*words(step))
    pipe = r.pipeline(transaction=False)
    for c in step:
        pipe.execute_command(*words(c))
    return pipe.execute()


@dataclass
class Driver:
    """Runs a core operation step by step on a plain client, recording every script call and
    its reply, and can stop it after a number of calls of one script (an interrupted caller)."""

    r: redis.Redis
    calls: list[tuple[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for s in scripts.ALL:
            self.r.script_load(s.source)

    def run(
        self,
        op: Generator[Any, Any, Any],
        stop: Callable[[list[Any]], bool] | None = None,
        between: Callable[[], None] | None = None,
    ) -> Any:
        """Run ``op``; with ``stop``, abandon it (as a caller that died) once ``stop`` is
        true of the leave_queue replies it got so far."""
        start = len(self.calls)
        try:
            step = next(op)
            while True:
                reply = execute(self.r, step)
                for c, rep in zip(
                    [step] if isinstance(step, Call) else step,
                    [reply] if isinstance(step, Call) else reply,
                    strict=True,
                ):
                    if c.script is not None:
                        self.calls.append((c.script.name, rep))
                mine = [rep for n, rep in self.calls[start:] if n == "leave_queue"]
                if stop is not None and stop(mine):
                    op.close()
                    return None
                if between is not None:
                    between()
                step = op.send(reply)
        except StopIteration as done:
            return done.value

    def replies(self, name: str) -> list[Any]:
        return [rep for n, rep in self.calls if n == name]


def core_of(url: str, prefix: str, **options: Any) -> Any:
    """A sync client's core, for driving its operations by hand (never started)."""
    w = Worqr(url, prefix=prefix, **options)
    w.close()
    return w._core


@dataclass
class DeadWorker:
    """A dead worker (registered, no heartbeat) holding ``n`` tasks on ``queue``: every 11th
    task is the plain "dup", every 3rd other one unique (its lock held by the process), every
    5th delivered twice, every 997th five times (dead-lettered past max_deliveries=5)."""

    wid: str
    n: int
    queue: str = "jobs"

    def build(self, r: redis.Redis, keys: Keys, queued: list[str] | None = None) -> None:
        k = keys.queue(self.queue)
        pipe = r.pipeline(transaction=False)
        pipe.sadd(keys.workers, self.wid)
        pipe.sadd(keys.working_queues(self.wid), self.queue)
        pipe.sadd(keys.queues, self.queue)
        pipe.sadd(k.workers, self.wid)
        if queued:
            pipe.rpush(k.tasks, *queued)
        for tok in range(1, self.n + 1):
            task = self.task(tok)
            pipe.hset(k.processes(self.wid), str(tok), task)
            if self.count(tok) > 1:
                pipe.hset(k.deliveries, f"{self.wid}.{tok}", self.count(tok))
            if self.unique(tok):
                pipe.hset(k.locks, task, f"{self.wid}.{tok}")
        pipe.execute()

    def task(self, tok: int) -> str:
        return "dup" if tok % 11 == 0 else f"t{tok}"

    def unique(self, tok: int) -> bool:
        return tok % 11 != 0 and tok % 3 == 0

    def count(self, tok: int) -> int:
        return 5 if tok % 997 == 0 else 2 if tok % 5 == 0 else 1

    def returned(self, max_deliveries: int) -> list[int]:
        toks = range(1, self.n + 1)
        return [t for t in toks if not (max_deliveries and self.count(t) >= max_deliveries)]

    def check(self, r: redis.Redis, keys: Keys, max_deliveries: int, queued: list[str]) -> int:
        """The state after the whole leave: every task back once, oldest first, in front of
        what was queued, with its count (and lock); the rest dead-lettered. Returns how many
        went back."""
        k = keys.queue(self.queue)
        back = self.returned(max_deliveries)
        died = sorted(set(range(1, self.n + 1)) - set(back))
        tasks = texts(r.lrange(k.tasks, 0, -1))
        assert tasks == [self.task(t) for t in back] + queued
        counts = texts(r.lrange(k.returned, 0, -1))
        assert counts == [f"{self.count(t)}{':u' if self.unique(t) else ''}" for t in back]
        assert sorted(texts(r.lrange(k.dead, 0, -1))) == sorted(self.task(t) for t in died)
        locks = r.hgetall(k.locks)
        assert locks == {self.task(t): "r" for t in back if self.unique(t)}
        assert not [f for f in texts(r.hkeys(k.deliveries)) if f.startswith(self.wid)]
        assert not r.exists(k.processes(self.wid), k.staging(self.wid))
        assert not r.sismember(k.workers, self.wid)
        return len(back)


def test_a_supervisor_reaps_20000_tasks_in_bounded_calls_each_once_oldest_first(
    make: Any, r: redis.Redis, prefix: str
) -> None:
    """A dead worker holds 20,000 tasks (plain, unique, redelivered, past max_deliveries):
    a live worker's supervisor puts each back once, oldest first, in front of what was queued,
    with counts and locks as one atomic return did; the events add up; the supervisor, its
    heartbeat apart from the reap, never fails and still finishes its own task."""
    keys = Keys(prefix)
    dead = DeadWorker("deadbeef", 20_000)
    queued = ["q1", "q2"]
    dead.build(r, keys, queued)
    w = make(heartbeat_interval=0.2, heartbeat_ttl=2.0, max_deliveries=5)
    failed: list[str] = []
    reclaimed: list[int] = []
    died: list[str] = []
    w.events.on("failed", lambda wid, reason: failed.append(reason))
    w.events.on("reclaimed", lambda wid, q, n: reclaimed.append(n))
    w.events.on("dead", lambda q, t: died.append(t))
    w.start_worker()
    w.start_work("mine")
    w.enqueue("mine", "own-task")
    p = w.dequeue("mine")
    wait_for(lambda: not r.sismember(keys.workers, dead.wid), timeout=60, what="the reap")
    back = dead.check(r, keys, 5, queued)
    wait_for(lambda: sum(reclaimed) == back, what="the reclaimed events")
    assert sorted(died) == sorted(texts(r.lrange(keys.queue("jobs").dead, 0, -1)))
    assert failed == []
    assert w.finish_process(p.id) is True


def test_each_leave_call_moves_at_most_one_chunk(server: Any, r: redis.Redis, prefix: str) -> None:
    """The arithmetic of a reap: staging calls return nothing; then exactly
    ceil(n / LEAVE_CHUNK) calls return at most LEAVE_CHUNK each; the total is right."""
    keys = Keys(prefix)
    dead = DeadWorker("feed0001", 20_000)
    dead.build(r, keys)
    d = Driver(r)
    total = d.run(core_of(server.url, prefix)._deregister([dead.wid], Removal.REAP, 5))
    steps = d.replies("leave_queue")
    chunk = base.LEAVE_CHUNK
    moved = [int(x[0]) + len(x) - 2 for x in steps]  # back to the queue + dead-lettered
    assert all(m <= chunk for m in moved)
    returning = [m for m in moved if m]
    assert len(returning) == math.ceil(dead.n / chunk)
    assert [int(x[1]) for x in steps] == [0] * (len(steps) - 1) + [1]
    # staging: about n / chunk HSCANs (COUNT is a hint), never one call for the whole hash
    assert 2 <= len(steps) - len(returning) <= 3 * dead.n // chunk
    assert total == dead.check(r, keys, 5, [])


STOPS: dict[str, Callable[[list[Any]], bool]] = {
    "first call": lambda replies: len(replies) == 1,
    "mid-staging": lambda replies: len(replies) == 5,
    "first return": lambda replies: any(int(x[0]) for x in replies),
    "mid-return": lambda replies: sum(int(x[0]) > 0 for x in replies) == 7,
    "last return": lambda replies: sum(int(x[0]) for x in replies) >= 19_900 - 20,
}


@pytest.mark.parametrize("where", sorted(STOPS))
def test_an_interrupted_reclaim_is_finished_by_another_reaper(
    server: Any, r: redis.Redis, prefix: str, where: str
) -> None:
    """The reaper dies after some leave_queue calls (staging, or returning); another
    instance's reap resumes from the state in Redis: each task back once, in order."""
    keys = Keys(prefix)
    dead = DeadWorker("feed0002", 20_000)
    dead.build(r, keys, ["q1"])
    first = Driver(r)
    op = core_of(server.url, prefix)._deregister([dead.wid], Removal.REAP, 5)
    assert first.run(op, stop=STOPS[where]) is None
    assert r.sismember(keys.workers, dead.wid)  # not deregistered: the next reap sees it
    assert not r.sismember(keys.queue("jobs").workers, dead.wid)  # fenced from the first call
    before = sum(int(x[0]) for x in first.replies("leave_queue"))
    second = Driver(r)
    after = second.run(core_of(server.url, prefix)._deregister([dead.wid], Removal.REAP, 5))
    assert before + after == dead.check(r, keys, 5, ["q1"])
    assert not r.sismember(keys.workers, dead.wid)


def test_racing_reapers_return_each_task_once(server: Any, r: redis.Redis, prefix: str) -> None:
    """Two reapers interleaved call by call on one dead worker: their counts add up to the
    tasks returned, and each task is back once, oldest first."""
    keys = Keys(prefix)
    dead = DeadWorker("feed0003", 5_000)
    dead.build(r, keys)
    ops = [core_of(server.url, prefix)._deregister([dead.wid], Removal.REAP, 5) for _ in "ab"]
    steps: list[Any] = [next(op) for op in ops]
    results: list[int | None] = [None, None]
    while any(x is None for x in results):
        for i, op in enumerate(ops):
            if results[i] is not None:
                continue
            try:
                steps[i] = op.send(execute(r, steps[i]))
            except StopIteration as done:
                results[i] = done.value
    assert sum(x or 0 for x in results) == dead.check(r, keys, 5, [])


def test_a_zombies_late_stop_during_a_reclaim_returns_its_task_once(
    server: Any, r: redis.Redis, prefix: str
) -> None:
    """Halfway through a reclaim, the dead worker (a zombie) stops processes of its own, some
    already staged: each still goes back exactly once."""
    keys = Keys(prefix)
    k = keys.queue("jobs")
    dead = DeadWorker("feed0004", 3_000)
    dead.build(r, keys)
    d = Driver(r)
    op = core_of(server.url, prefix)._deregister([dead.wid], Removal.REAP, 0)
    d.run(op, stop=lambda replies: any(int(x[0]) for x in replies))  # staged, some returned
    left = sorted(int(t) for t in r.hkeys(k.processes(dead.wid)))
    assert 0 < len(left) < dead.n
    zombie = left[:3] + left[-3:]
    keys_stop = k.stop_keys(dead.wid)
    for tok in zombie:
        args = (dead.wid, k.events, 0, keys.wakes, "jobs", "", k.job_ends, tok)
        assert r.evalsha(scripts.STOP.sha, len(keys_stop), *keys_stop, *args) == [1]
    d.run(core_of(server.url, prefix)._deregister([dead.wid], Removal.REAP, 0))
    tasks = texts(r.lrange(k.tasks, 0, -1))
    assert sorted(tasks) == sorted(dead.task(t) for t in range(1, dead.n + 1))
    assert not r.exists(k.processes(dead.wid), k.staging(dead.wid))


def test_a_supervision_turn_is_bounded_and_the_next_turn_goes_on(
    server: Any, r: redis.Redis, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With REAP_STEPS_PER_TURN leave_queue calls per turn, a large reap takes several turns:
    after each but the last the dead worker is still registered (its leave half done), and
    the last leaves the same state as one call would."""
    monkeypatch.setattr(workers_mod, "REAP_STEPS_PER_TURN", 10)
    keys = Keys(prefix)
    dead = DeadWorker("feed0005", 6_000)
    dead.build(r, keys)
    core = core_of(server.url, prefix, max_deliveries=5)
    core.worker = WorkerState(id="supervisor", deadline=math.inf)
    r.set(keys.supervisor, "supervisor")
    d = Driver(r)
    turns, total = 0, 0
    while r.sismember(keys.workers, dead.wid):
        r.set(keys.supervisor, "supervisor")
        before = len(d.replies("leave_queue"))
        total += d.run(core.supervise())
        assert len(d.replies("leave_queue")) - before <= 10
        turns += 1
        assert turns < 100
    assert turns >= math.ceil(2 * dead.n / base.LEAVE_CHUNK / 10)
    assert total == dead.check(r, keys, 5, [])


def test_stop_work_and_fail_worker_of_a_large_record_use_the_same_bounded_path(
    make: Any, r: redis.Redis, prefix: str
) -> None:
    """A worker holding more than one chunk: stop_work returns them all (graceful: none
    dead-lettered), oldest first, and fail_worker of the next batch too."""
    k = Keys(prefix).queue("jobs")
    w = worker(make, "jobs", max_deliveries=1, **SLOW)
    n = 2 * base.LEAVE_CHUNK + 7
    w.enqueue("jobs", [f"a{i}" for i in range(n)])
    w.dequeue_many("jobs", n)
    assert w.count_queue("jobs") == 0
    assert w.stop_work("jobs") == n
    assert w.get_tasks("jobs") == [f"a{i}" for i in range(n)]
    assert texts(r.lrange(k.returned, 0, -1)) == ["1"] * n
    assert w.get_dead_tasks("jobs") == []
    w.start_work("jobs")
    w.dequeue_many("jobs", n)
    assert w.fail_worker() == n
    assert w.get_tasks("jobs") == [f"a{i}" for i in range(n)]
    assert texts(r.lrange(k.returned, 0, -1)) == ["2"] * n


def test_cancel_larger_than_a_chunk_keeps_counts_aligned(
    make: Any, r: redis.Redis, prefix: str
) -> None:
    """Copies of X spread over 3.5 chunks, some among the returned tasks at the head (with
    counts in qn): all are removed, the other tasks keep their order and their counts, the
    unique lock of a returned X is released, one cancel call per window."""
    k = Keys(prefix).queue("jobs")
    w = worker(make, "jobs", **SLOW)
    n = base.LIST_CHUNK * 3 + base.LIST_CHUNK // 2
    tasks = ["X" if i % 7 == 0 else f"t{i}" for i in range(n)]
    r.rpush(k.tasks, *tasks)
    head = 1500  # the first 1500 entries were returned: counts in qn, X's lock held by one
    counts = [str(2 + i % 3) for i in range(head)]
    counts[7] += ":u"
    r.rpush(k.returned, *counts)
    r.hset(k.locks, "X", "r")
    r.execute_command("CONFIG", "RESETSTAT")
    assert w.cancel_tasks("jobs", "X") == tasks.count("X")
    stats = r.info("commandstats")
    kept = [i for i, t in enumerate(tasks) if t != "X"]
    assert w.get_tasks("jobs") == [tasks[i] for i in kept]
    assert texts(r.lrange(k.returned, 0, -1)) == [counts[i] for i in kept if i < head]
    assert r.hget(k.locks, "X") is None
    # one call per window, plus the worker's supervision turns meanwhile (renew_turn)
    assert stats["cmdstat_evalsha"]["calls"] <= math.ceil(n / base.LIST_CHUNK) + 10
    assert w.dequeue("jobs").deliveries == 4  # t1: its count came along with it


def test_cancel_between_calls_removes_what_was_queued_and_keeps_qn_aligned(
    server: Any, r: redis.Redis, prefix: str
) -> None:
    """Between cancel calls a worker takes from the head, a task comes back to the head and
    producers append copies: every copy queued at the start and still queued is removed;
    the head's counts stay aligned; copies appended meanwhile stay."""
    keys = Keys(prefix)
    k = keys.queue("jobs")
    n = 4 * base.LIST_CHUNK
    r.rpush(k.tasks, *["X" if i % 5 == 0 else f"t{i}" for i in range(n)])
    r.rpush(k.returned, *["3"] * 200)
    rounds = [0]

    def meanwhile() -> None:
        rounds[0] += 1
        r.lpop(k.tasks)  # a dequeue (its count with it)
        r.lpop(k.returned)
        r.lpush(k.tasks, f"back{rounds[0]}")  # a return, with its count
        r.lpush(k.returned, "9")
        r.rpush(k.tasks, "X", f"new{rounds[0]}")  # a producer

    d = Driver(r)
    removed = d.run(core_of(server.url, prefix).cancel_tasks("jobs", "X"), between=meanwhile)
    tasks = texts(r.lrange(k.tasks, 0, -1))
    assert tasks.count("X") <= rounds[0]  # only copies appended while it ran
    assert "X" not in tasks[: len(tasks) - 2 * rounds[0]]
    assert removed >= n // 5 - rounds[0]  # the ones taken by the "worker" may be X copies
    returned = texts(r.lrange(k.returned, 0, -1))
    head = [t for t in tasks if t.startswith("back") or (t[0] == "t" and int(t[1:]) < 200)]
    assert tasks[: len(head)] == head  # the counted entries are still the first ones
    assert returned == ["9" if t.startswith("back") else "3" for t in head]


def test_delete_of_a_queue_with_more_locks_than_a_chunk(
    make: Any, server: Any, r: redis.Redis, prefix: str
) -> None:
    """delete_queue drops the queue and releases every queued unique task's lock over
    several calls, keeping the lock of a unique task in process; the tasks can be enqueued
    uniquely again."""
    k = Keys(prefix).queue("jobs")
    w = worker(make, "jobs", **SLOW)
    n = 2 * base.LOCK_CHUNK + 500
    r.rpush(k.tasks, *[f"u{i}" for i in range(n)])
    r.hset(k.locks, mapping={f"u{i}": "q" for i in range(n)})  # as n unique enqueues leave it
    p = w.dequeue("jobs")
    assert p.task == "u0"
    d = Driver(r)
    d.run(core_of(server.url, prefix).delete_queue("jobs"))
    assert len(d.replies("delete")) >= 2  # more than one bounded call for the locks
    assert int(d.replies("delete")[0][0]) == n - 1
    assert w.count_queue("jobs") == 0 and "jobs" not in w.get_queues()
    assert r.hgetall(k.locks) == {"u0": f"{w.worker_id}.1"}
    assert w.enqueue("jobs", "u5", unique=True) is True
    assert w.enqueue("jobs", "u0", unique=True) is False  # still in process
    assert w.finish_process(p.id) is True


def test_dead_letters_larger_than_a_chunk(make: Any, r: redis.Redis, prefix: str) -> None:
    """purge_dead and requeue_dead of one task and of all, on dead lists of several chunks:
    counts, order and what is left are as one atomic call gave."""
    k = Keys(prefix).queue("jobs")
    w = worker(make, "jobs", **SLOW)
    n = 2 * base.LIST_CHUNK + 300
    dead = ["Y" if i % 9 == 0 else "Z" if i % 13 == 0 else f"d{i}" for i in range(n)]
    r.rpush(k.dead, *dead)
    assert w.purge_dead("jobs", "Y") == dead.count("Y")
    dead = [t for t in dead if t != "Y"]
    assert w.get_dead_tasks("jobs") == dead
    w.enqueue("jobs", "first")
    zs = dead.count("Z")
    assert w.requeue_dead("jobs", "Z") == zs
    dead = [t for t in dead if t != "Z"]
    assert w.get_dead_tasks("jobs") == dead
    assert w.get_tasks("jobs") == ["first"] + ["Z"] * zs
    r.delete(k.tasks)
    assert w.requeue_dead("jobs") == len(dead)
    assert w.get_tasks("jobs") == dead and w.get_dead_tasks("jobs") == []
    r.rpush(k.dead, *dead)
    assert w.purge_dead("jobs") == len(dead)
    assert w.get_dead_tasks("jobs") == []


def test_requeue_dead_moves_only_what_was_dead_when_it_began(
    server: Any, r: redis.Redis, prefix: str
) -> None:
    """Dead letters that arrive while requeue_dead() runs stay dead: it moves the count it
    found, oldest first, at most LIST_CHUNK per call."""
    k = Keys(prefix).queue("jobs")
    n = 3 * base.LIST_CHUNK + 1
    r.rpush(k.dead, *[f"d{i}" for i in range(n)])
    d = Driver(r)
    moved = d.run(
        core_of(server.url, prefix).requeue_dead("jobs"), between=lambda: r.rpush(k.dead, "late")
    )
    assert moved == n
    assert texts(r.lrange(k.tasks, 0, -1)) == [f"d{i}" for i in range(n)]
    assert set(texts(r.lrange(k.dead, 0, -1))) == {"late"}
    assert [int(x[0]) for x in d.replies("requeue_dead")] == [base.LIST_CHUNK] * 3 + [1]


def test_a_snapshot_shows_a_reclaim_under_way(server: Any, r: redis.Redis, prefix: str) -> None:
    """Half-way through a reclaim, snapshot finds the staging set too: every key it holds."""
    keys = Keys(prefix)
    dead = DeadWorker("feed0006", 2 * base.LEAVE_CHUNK)
    dead.build(r, keys)
    op = core_of(server.url, prefix)._deregister([dead.wid], Removal.REAP, 5)
    Driver(r).run(op, stop=lambda replies: len(replies) == 2)
    staging = keys.queue("jobs").staging(dead.wid)
    with Worqr(server.url, prefix=prefix) as w:
        snap = w.snapshot()
    assert snap[staging][0] == "zset" and len(snap[staging][1]) > 1
    assert set(snap) == set(r.keys(f"*{prefix}*"))
