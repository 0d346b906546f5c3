"""Delayed tasks (``enqueue(..., delay=/at=)``, ``stop_process(..., delay=)``): each due task
is promoted to its queue exactly once, never before its due time, whoever promotes it (a
dequeue, an idle runner waking at the due time, or the supervision turn); a returned process
keeps its delivery count and comes back at the FRONT; unique locks, cancel and delete cover
delayed copies; bad arguments write nothing. Both drivers, real Redis. Due times are the
server's clock, so "not before" is checked against the server's TIME, with a few ms of slack
for its granularity."""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest
import redis

from worqr_py import AsyncWorqr, Process
from worqr_py.core.calls import time_ms
from worqr_py.core.keys import Keys

from .support import running, wait_for
from .test_wake_one import waiting

SOON = 15  # seconds: a bound for a failure only, far above any wake on a loaded 2-core VM
SLACK_MS = 5  # clock granularity: due times are whole ms, TIME has µs
# No poll (60 s) and no supervision turn (the first comes after 30 s) within SOON: an idle
# runner's delayed task comes from its own due-time wake (or a wake by a promotion), and a
# client without a runner promotes only in its own dequeue.
QUIET: dict[str, Any] = {"poll_interval": 60, "heartbeat_interval": 30, "heartbeat_ttl": 90}


def now_ms(r: Any) -> int:
    return time_ms(r.time())


def keys_of(r: Any, prefix: str) -> set[str]:
    """Every key of this test's prefix: queue keys ``P:{E}:*`` and registry keys ``{P}:*``."""
    return set(r.keys(f"{prefix}:*")) | set(r.keys(f"{{{prefix}}}:*"))


def queued_at(r: Any, prefix: str, queue: str) -> tuple[int, list[str], int]:
    """Atomically: the server time (ms), the queue's tasks and how many are delayed."""
    k = Keys(prefix).queue(queue)
    if isinstance(r, redis.RedisCluster):  # WORQR_TEST_URL: the queue's own node
        r = r.get_redis_connection(r.get_node_from_key(k.tasks))
    pipe = r.pipeline(transaction=True)
    pipe.time().lrange(k.tasks, 0, -1).zcard(k.delayed)
    (seconds, micros), tasks, delayed = pipe.execute()
    return int(seconds) * 1000 + int(micros) // 1000, tasks, int(delayed)


def due_ms(w: Any, queue: str) -> int:
    (d,) = w.get_delayed(queue)
    due: float = d.due
    return round(due * 1000)


# ---- exactly once, whoever promotes -----------------------------------------------------------
def test_ten_racing_workers_deliver_ten_thousand_due_tasks_exactly_once(
    make: Any, r: Any, prefix: str
) -> None:
    n = 10_000
    workers = [make(heartbeat_interval=0.2, heartbeat_ttl=30, poll_interval=1) for _ in range(10)]
    producer = make()
    seen: list[Process] = []
    first_at: list[int] = []  # server time (ms) of the first task handled
    lock = threading.Lock()

    def handler(p: Process) -> None:
        with lock:
            if not seen:
                first_at.append(now_ms(r))
            seen.append(p)

    with contextlib.ExitStack() as stack:
        for w in workers:
            stack.enter_context(running(w, "q", handler))
        wait_for(lambda: all(waiting(r, prefix, "q", w) for w in workers), SOON, "all idle")
        tasks = [f"t{i}" for i in range(n)]
        before = now_ms(r)
        assert producer.enqueue("q", tasks, delay=0.5) == n
        wait_for(lambda: len(seen) >= n, 60, f"{n} tasks handled")
        assert producer.count_delayed("q") == 0
        assert producer.count_queue("q") == 0
    dupes = [t for t, c in Counter(p.task for p in seen).items() if c > 1]
    assert not dupes, f"{len(dupes)} tasks handled twice, e.g. {dupes[:5]}"
    assert sorted(p.task for p in seen) == sorted(tasks)
    assert {p.deliveries for p in seen} == {1}
    assert r.zcard(Keys(prefix).queue("q").delayed) == 0
    assert first_at[0] >= before + 500 - SLACK_MS, "delivered before the due time"


@pytest.mark.parametrize("scheduled", ["while idle", "before the runner started"])
def test_a_due_task_reaches_an_idle_runner_with_no_new_enqueue(
    make: Any, r: Any, prefix: str, scheduled: str
) -> None:
    w, producer = make(**QUIET), make()
    handled_at: dict[str, int] = {}

    def handler(p: Process) -> None:
        handled_at.setdefault(p.task, now_ms(r))

    with contextlib.ExitStack() as stack:
        if scheduled == "while idle":
            stack.enter_context(running(w, "q", handler))
            wait_for(lambda: waiting(r, prefix, "q", w), SOON, "the runner idle")
        due = now_ms(r) + 1000  # at or before the due time
        assert producer.enqueue("q", "later", delay=1) == 1
        if scheduled != "while idle":  # the runner learns the due time when it joins
            stack.enter_context(running(w, "q", handler))
        wait_for(lambda: "later" in handled_at, SOON, "the due task delivered")
    assert handled_at["later"] >= due - SLACK_MS, "delivered before its due time"
    assert producer.count_delayed("q") == 0


def test_the_supervision_turn_promotes_a_due_task_with_no_runner(
    make: Any, r: Any, prefix: str
) -> None:
    w = make(heartbeat_interval=0.1, heartbeat_ttl=10, poll_interval=60)
    w.start_worker()  # no runner, no dequeue: only its supervision turn can promote
    producer = make()
    due = now_ms(r) + 300  # at or before the due time
    assert producer.enqueue("q", "later", delay=0.3) == 1

    def promoted() -> bool:
        now, tasks, delayed = queued_at(r, prefix, "q")
        assert not tasks or now >= due - SLACK_MS, f"promoted {due - now} ms early"
        return tasks == ["later"] and delayed == 0

    wait_for(promoted, SOON, "the due task in the queue")
    wait_for(lambda: r.zscore(Keys(prefix).delayed, "q") is None, SOON, "the registry entry gone")
    assert w.get_tasks("q") == ["later"]


# ---- a process returned with a delay -------------------------------------------------------
def test_a_process_stopped_with_a_delay_comes_back_first_with_its_deliveries(
    make: Any, r: Any
) -> None:
    w = make(**QUIET)  # no supervision turn: only its dequeue promotes
    w.start_worker()
    w.start_work("q")
    w.enqueue("q", ["a", "b", "c"])
    p = w.dequeue("q")
    assert (p.task, p.deliveries) == ("a", 1)
    assert w.stop_process(p.id, delay=0.3) is True
    (d,) = w.get_delayed("q")
    assert (d.task, d.deliveries) == ("a", 1)
    assert w.count_delayed("q") == 1
    assert w.get_tasks("q") == ["b", "c"]  # not promoted by anything but a dequeue
    wait_for(lambda: now_ms(r) >= d.due * 1000 + SLACK_MS, SOON, "the due time")
    again = w.dequeue("q")  # the dequeue promotes it, to the front
    assert (again.task, again.deliveries) == ("a", 2)
    assert [w.dequeue("q").task for _ in range(2)] == ["b", "c"]
    assert w.count_delayed("q") == 0


def test_a_process_stopped_with_a_delay_after_max_deliveries_is_dead(make: Any) -> None:
    w = make(heartbeat_ttl=30, max_deliveries=2)
    w.start_worker()
    w.start_work("q")
    w.enqueue("q", "a")
    assert w.stop_process(w.dequeue("q").id) is True  # back to the front at once
    p = w.dequeue("q")
    assert p.deliveries == 2
    assert w.stop_process(p.id, delay=30) is True
    assert w.get_dead_tasks("q") == ["a"]
    assert w.count_delayed("q") == 0
    assert w.get_tasks("q") == []


# ---- enqueue forms, unique locks, cancel, delete ----------------------------------------------
def test_due_times_already_past_queue_at_once_at_the_tail(make: Any) -> None:
    w = make()
    w.enqueue("q", "first")
    assert w.enqueue("q", "now", delay=0) == 0
    assert w.enqueue("q", "past", at=datetime.now() - timedelta(hours=1)) == 0
    assert w.get_tasks("q") == ["first", "now", "past"]
    assert w.enqueue("q", ["x", "y"], delay=timedelta(minutes=5)) == 2
    assert w.enqueue("q", "z", at=datetime.now() + timedelta(minutes=10)) == 3
    delayed = w.get_delayed("q")
    assert [d.task for d in delayed][-1] == "z"  # earliest first
    assert {d.deliveries for d in delayed} == {0}
    assert sorted(d.task for d in delayed) == ["x", "y", "z"]
    assert w.get_tasks("q") == ["first", "now", "past"]


def test_server_time_is_the_clock_of_due_times(make: Any, r: Any) -> None:
    w = make()
    before = now_ms(r)
    w.enqueue("q", "t", delay=60)
    after = w.server_time()
    assert before / 1000 <= after <= before / 1000 + 30  # Redis' TIME, in seconds
    (d,) = w.get_delayed("q")
    assert before / 1000 + 60 <= d.due <= after + 60 + 0.001


def test_unique_delayed_copies_hold_their_lock_until_cancelled_or_deleted(
    make: Any, r: Any, prefix: str
) -> None:
    w = make()
    k = Keys(prefix).queue("q")
    assert w.enqueue("q", "u", unique=True, delay=60) is True
    assert w.enqueue("q", "u", unique=True, delay=1) is False  # a unique copy is delayed
    assert w.enqueue("q", "u", unique=True) is False
    assert w.count_delayed("q") == 1
    assert w.get_tasks("q") == []
    assert w.cancel_tasks("q", "u") == 1  # the delayed copy, counted
    assert w.count_delayed("q") == 0
    assert r.hget(k.locks, "u") is None
    assert w.enqueue("q", "u", unique=True, delay=60) is True  # the lock was released
    assert w.enqueue("q", ["v", "w"], delay=60) == 3
    w.delete_queue("q")
    assert w.count_delayed("q") == 0
    assert not r.exists(k.delayed)
    assert r.hget(k.locks, "u") is None
    assert w.enqueue("q", "u", unique=True, delay=60) is True  # released by the delete too
    assert w.enqueue("q", "u", unique=True) is False


def test_a_unique_delayed_task_is_delivered_once_and_its_lock_follows(
    make: Any, r: Any, prefix: str
) -> None:
    w = make(**QUIET)  # no supervision turn: only its dequeue promotes
    w.start_worker()
    w.start_work("q")
    assert w.enqueue("q", "u", unique=True, delay=0.2) is True
    due = due_ms(w, "q")
    wait_for(lambda: now_ms(r) >= due + SLACK_MS, SOON, "the due time")
    p = w.dequeue("q")
    assert p.task == "u"
    assert w.enqueue("q", "u", unique=True, delay=0.2) is False  # in process: still locked
    assert w.finish_process(p.id) is True
    assert w.dequeue("q") is None
    assert w.enqueue("q", "u", unique=True, delay=60) is True  # finished: free again


def test_a_unique_process_stopped_with_a_delay_keeps_its_lock_until_finished(
    make: Any, r: Any
) -> None:
    w = make(**QUIET)  # no supervision turn: only its dequeue promotes
    w.start_worker()
    w.start_work("q")
    assert w.enqueue("q", "u", unique=True) is True
    assert w.stop_process(w.dequeue("q").id, delay=0.2) is True
    assert w.enqueue("q", "u", unique=True) is False  # its unique copy is delayed
    assert w.enqueue("q", "u", unique=True, delay=0.1) is False
    (d,) = w.get_delayed("q")
    wait_for(lambda: now_ms(r) >= d.due * 1000 + SLACK_MS, SOON, "the due time")
    p = w.dequeue("q")
    assert (p.task, p.deliveries) == ("u", 2)
    assert w.enqueue("q", "u", unique=True) is False  # in process again
    assert w.finish_process(p.id) is True
    assert w.enqueue("q", "u", unique=True) is True


def test_delayed_tasks_with_colons_and_glob_characters_stay_exact(make: Any, r: Any) -> None:
    w = make(heartbeat_ttl=30)
    tasks = ["a:b", "b", "x*", "xy", "[z]", "", "0:1:u:c"]
    assert w.enqueue("q", tasks, delay=60) == len(tasks)
    assert w.cancel_tasks("q", "b") == 1  # not "a:b"
    assert w.cancel_tasks("q", "x*") == 1  # not "xy"
    assert w.cancel_tasks("q", "[z]") == 1
    assert w.cancel_tasks("q", "c") == 0
    left = ["", "0:1:u:c", "a:b", "xy"]
    assert sorted(d.task for d in w.get_delayed("q")) == left
    at = datetime.now() + timedelta(seconds=0.2)
    assert w.enqueue("q", "soon", at=at) == 5
    soon = [d for d in w.get_delayed("q") if d.task == "soon"]
    assert [round(d.due * 1000) for d in soon] == [math.ceil(at.timestamp() * 1000)]
    w.start_worker()
    w.start_work("q")
    wait_for(lambda: now_ms(r) >= soon[0].due * 1000 + SLACK_MS, SOON, "the due time")
    p = w.dequeue("q")
    assert (p.task, p.deliveries) == ("soon", 1)
    assert w.dequeue("q") is None
    assert sorted(d.task for d in w.get_delayed("q")) == left
    assert {d.deliveries for d in w.get_delayed("q")} == {0}


# ---- bad arguments write nothing ------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"delay": "1"}, TypeError, "delay"),
        ({"delay": True}, TypeError, "delay"),
        ({"delay": -1}, ValueError, "delay"),
        ({"delay": float("nan")}, ValueError, "delay"),
        ({"delay": math.inf}, ValueError, "delay"),
        ({"delay": timedelta(seconds=-1)}, ValueError, "delay"),
        ({"delay": 1e300}, ValueError, "delay"),
        ({"delay": timedelta(days=36525 + 1)}, ValueError, "delay"),
        ({"at": "2026-01-01"}, TypeError, "at"),
        ({"at": 1_700_000_000}, TypeError, "at"),
        ({"delay": 1, "at": datetime.now()}, ValueError, "delay or at"),
    ],
)
def test_bad_delay_or_at_raises_and_writes_nothing(
    make: Any, r: Any, prefix: str, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    w = make()
    before = keys_of(r, prefix)
    with pytest.raises(error, match=match):
        w.enqueue("q", "t", **kwargs)
    with pytest.raises(error, match=match):
        w.enqueue("q", "t", unique=True, **kwargs)
    assert w.count_delayed("q") == 0
    assert keys_of(r, prefix) == before == set()


def test_a_bad_stop_delay_raises_and_leaves_the_process_held(make: Any) -> None:
    w = make(heartbeat_ttl=30)
    w.start_worker()
    w.start_work("q")
    w.enqueue("q", "a")
    p = w.dequeue("q")
    for bad, error in (("1", TypeError), (-1, ValueError), (float("nan"), ValueError)):
        with pytest.raises(error, match="delay"):
            w.stop_process(p.id, delay=bad)
    assert w.count_delayed("q") == 0
    assert w.finish_process(p.id) is True  # still ours


# ---- the asyncio runner -----------------------------------------------------------------------
def test_an_asyncio_runner_delivers_a_delayed_task_when_due(
    server: Any, r: Any, prefix: str
) -> None:
    handled_at: dict[str, int] = {}

    async def main() -> None:
        async with AsyncWorqr(server.url, prefix=prefix, **QUIET) as w:
            producer = AsyncWorqr(server.url, prefix=prefix)

            async def handler(p: Process) -> None:
                handled_at.setdefault(p.task, now_ms(r))
                w.shutdown()

            runner = asyncio.create_task(w.run("q", handler, grace=5))
            try:
                while not waiting(r, prefix, "q", w):  # idle, waiting for work
                    assert not runner.done()
                    await asyncio.sleep(0.01)
                due = now_ms(r) + 500  # at or before the due time
                assert await producer.enqueue("q", "later", delay=0.5) == 1
                await asyncio.wait_for(asyncio.shield(runner), SOON)
                assert handled_at["later"] >= due - SLACK_MS
                assert await producer.count_delayed("q") == 0
            finally:
                w.shutdown(force=True)
                with contextlib.suppress(BaseException):
                    await asyncio.wait_for(runner, 10)
                await producer.close()

    asyncio.run(asyncio.wait_for(main(), 60))
    assert set(handled_at) == {"later"}
