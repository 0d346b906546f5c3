"""Processes: dequeue, finish, stop, stop_work, fail_worker, and per-worker ownership."""

from __future__ import annotations

from typing import Any

import pytest

from worqr_py import Process
from worqr_py.core.keys import Keys

from .conftest import FAST, worker
from .support import wait_for


def test_dequeue_moves_the_head_into_this_workers_process_set(
    make: Any, r: Any, prefix: str
) -> None:
    w = worker(make, "q")
    w.enqueue("q", ["a", "b"])
    p = w.dequeue("q")
    assert isinstance(p, Process)
    assert (p.queue, p.task, p.deliveries) == ("q", "a", 1)
    assert w.get_tasks("q") == ["b"]
    k = Keys(prefix).queue("q")
    assert r.hvals(k.processes(w.worker_id)) == ["a"]
    assert r.smembers(k.workers) == {w.worker_id}
    assert w.processes == [p]


def test_dequeue_on_an_empty_queue_returns_none(make: Any) -> None:
    w = worker(make, "q")
    assert w.dequeue("q") is None
    assert w.dequeue_many("q", 5) == []


def test_finish_drops_the_process_once(make: Any, r: Any, prefix: str) -> None:
    w = worker(make, "q")
    w.enqueue("q", "a")
    p = w.dequeue("q")
    assert w.finish_process(p.id) is True
    assert w.finish_process(p.id) is False
    assert w.get_tasks("q") == []
    assert not r.exists(Keys(prefix).queue("q").processes(w.worker_id))


def test_stop_process_puts_the_task_back_at_the_front(make: Any) -> None:
    w = worker(make, "q")
    w.enqueue("q", ["t1", "t2", "t3"])
    p = w.dequeue("q")
    assert w.stop_process(p.id) is True
    assert w.stop_process(p.id) is False
    assert w.get_tasks("q") == ["t1", "t2", "t3"]
    again = w.dequeue("q")
    assert (again.task, again.deliveries) == ("t1", 2)
    assert again.id != p.id
    assert w.finish_process(p.id) is False  # the old id is dead
    assert [w.dequeue("q").task, w.dequeue("q").task] == ["t2", "t3"]


def test_returned_tasks_come_before_tasks_enqueued_after_them(make: Any) -> None:
    w = worker(make, "q")
    w.enqueue("q", ["a", "b", "c"])
    w.dequeue_many("q", 2)
    w.enqueue("q", "d")
    assert w.stop_work("q") == 2
    assert w.get_tasks("q") == ["a", "b", "c", "d"]  # oldest first, at the front


def test_fail_worker_returns_every_process_to_the_front_and_deregisters(make: Any) -> None:
    w = worker(make, "q1", "q2")
    w.enqueue("q1", ["a", "b"])
    w.enqueue("q2", ["x", "y"])
    w.dequeue("q1"), w.dequeue("q2"), w.dequeue("q2")
    wid = w.worker_id
    assert w.fail_worker() == 3
    assert w.get_tasks("q1") == ["a", "b"]
    assert w.get_tasks("q2") == ["x", "y"]
    assert wid not in w.get_workers()
    assert w.get_working_queues(wid) == []
    assert not w.alive


def test_a_failed_worker_registers_a_new_id_and_is_never_revived(make: Any) -> None:
    w = worker(make, "q")
    old = w.worker_id
    w.fail_worker()
    new = w.start_worker()
    assert new != old
    assert w.get_workers() == [new]


def test_failing_worker_a_never_touches_worker_b(make: Any) -> None:
    a, b = worker(make, "q"), worker(make, "q")
    a.enqueue("q", ["a1", "b1", "a2", "b2", "rest"])
    pa1, pb1, _pa2, pb2 = a.dequeue("q"), b.dequeue("q"), a.dequeue("q"), b.dequeue("q")
    b.fail_worker(a.worker_id)
    assert a.get_tasks("q") == ["a1", "a2", "rest"]
    assert b.finish_process(pb1.id) and b.finish_process(pb2.id)
    assert a.finish_process(pa1.id) is False


def test_finish_and_stop_are_fenced_to_the_owner(make: Any) -> None:
    a, b = worker(make, "q"), worker(make, "q")
    a.enqueue("q", "t")
    p = a.dequeue("q")
    assert b.finish_process(p.id) is False
    assert b.stop_process(p.id) is False
    assert a.get_matching_processes("t") == [p]


def test_stop_work_returns_only_this_workers_processes(make: Any) -> None:
    a, b = worker(make, "q"), worker(make, "q")
    a.enqueue("q", ["1", "2", "3"])
    a.dequeue("q"), b.dequeue("q")
    assert a.stop_work("q") == 1
    assert a.get_tasks("q") == ["1", "3"]
    assert [p.task for p in b.get_matching_processes("2")] == ["2"]
    assert a.get_working_queues() == []


def test_get_matching_processes_across_queues_and_workers(make: Any) -> None:
    a, b = worker(make, "q1", "q2"), worker(make, "q2")
    a.enqueue("q1", ["same", "other"])
    a.enqueue("q2", ["same", "same"])
    pa1, pa2, pb = a.dequeue("q1"), a.dequeue("q2"), b.dequeue("q2")
    found = a.get_matching_processes("same")
    assert sorted(p.id for p in found) == sorted([pa1.id, pa2.id, pb.id])
    assert [p.id for p in a.get_matching_processes("same", queue="q1")] == [pa1.id]
    assert a.get_matching_processes("nope") == []


def test_dequeue_many_takes_in_order_with_distinct_ids(make: Any) -> None:
    w = worker(make, "q")
    w.enqueue("q", [str(i) for i in range(10)])
    procs = w.dequeue_many("q", 4)
    assert [p.task for p in procs] == ["0", "1", "2", "3"]
    assert len({p.id for p in procs}) == 4
    assert w.get_tasks("q") == [str(i) for i in range(4, 10)]


def test_leaving_the_context_manager_returns_tasks_at_once(driver: str, make: Any) -> None:
    producer = make()
    w = make(**FAST)
    with w:
        w.start_worker()
        w.start_work("q")
        producer.enqueue("q", ["a", "b"])
        w.dequeue("q")
    assert producer.get_tasks("q") == ["a", "b"]
    assert producer.get_workers() == []


def test_close_of_a_producer_writes_nothing(make: Any, r: Any, prefix: str) -> None:
    w = make()
    w.enqueue("q", "t")
    before = r.dbsize()
    w.close()
    assert r.dbsize() == before
    assert r.lrange(Keys(prefix).queue("q").tasks, 0, -1) == ["t"]


@pytest.mark.parametrize("decode", [False, True], ids=["bytes", "decode_responses"])
def test_your_own_connections_work_decoded_or_not(server: Any, prefix: str, decode: bool) -> None:
    import redis as redis_lib

    from worqr_py import Worqr

    data = redis_lib.Redis(port=server.port, decode_responses=decode)
    sub = redis_lib.Redis(port=server.port, decode_responses=decode)
    seen: list[tuple[str, str]] = []
    with Worqr(redis=data, subscriber=sub, prefix=prefix, **FAST) as w:
        w.on("q", lambda kind, msg: seen.append((kind, msg)))
        w.start_worker()
        w.start_work("q")
        assert w.enqueue("q", ["über", "b"]) == 2
        wait_for(lambda: ("work", "2") in seen, what="the work event")
        p = w.dequeue("q")
        assert p.task == "über" and w.finish_process(p.id)
        assert w.get_workers() == [w.worker_id] and w.overview().queues[0].length == 1
    assert data.ping()  # your connections stay yours: close() does not close them


def test_your_own_asyncio_connections_work(server: Any, prefix: str) -> None:
    import asyncio

    import redis.asyncio as aredis

    from worqr_py import AsyncWorqr

    async def main() -> None:
        data = aredis.Redis(port=server.port, decode_responses=True)
        async with AsyncWorqr(redis=data, prefix=prefix, **FAST) as w:
            await w.start_worker()
            await w.start_work("q")
            await w.enqueue("q", "t")
            p = await w.dequeue("q")
            assert p.task == "t" and await w.finish_process(p.id)
        assert await data.ping()
        await data.aclose()

    asyncio.run(main())
