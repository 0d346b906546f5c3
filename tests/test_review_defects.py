"""Regression tests for the defects an adversarial review found (issue 10), each on a real
redis-server and, where it applies, with both drivers. Each failed before its fix."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
import redis

from worqr_py import AsyncWorqr, Process, Worqr
from worqr_py.core.keys import Keys

from .conftest import FAST, worker
from .support import BlackholeProxy, RedisServer, running, wait_for

DEBUG_OK = ("--enable-debug-command", "local")


def inner(w: Any) -> Any:
    """The client behind the test facade (AsyncWorqr for the async driver)."""
    return getattr(w, "inner", w)


def permanent(make: Any, queue: str) -> Any:
    w = make(**FAST)
    w.start_worker(permanent=True)
    w.start_work(queue)
    return w


def test_short_lived_calling_threads_hold_no_connection(server: RedisServer, prefix: str) -> None:
    """#1: 150 threads that each make one call end holding nothing: the connections in use
    stay bounded by the calls in flight, the heartbeat keeps working."""
    r = server.client()
    with Worqr(server.url, prefix=prefix, **FAST) as w:
        w.start_worker()
        w.start_work("q")
        errors: list[BaseException] = []

        def call() -> None:
            try:
                w.count_queue("q")
            except BaseException as exc:  # pragma: no cover - what the test looks for
                errors.append(exc)

        for _ in range(150):
            t = threading.Thread(target=call)
            t.start()
            t.join()
        pool = w._redis.connection_pool
        assert errors == []
        assert len(pool._in_use_connections) <= 4  # heartbeat, supervisor, cleanup, caller
        assert w.alive
        assert w.count_queue("q") == 0
    assert int(r.info("clients")["connected_clients"]) < 20


def test_worker_failures_leak_no_connection(server: RedisServer, prefix: str) -> None:
    """#1b: each failure's cleanup used to keep one pooled connection forever."""
    r = server.client()
    w = Worqr(server.url, prefix=prefix, heartbeat_interval=0.05, heartbeat_ttl=0.5)
    w.events.on("error", lambda exc: None)
    try:
        for _ in range(30):
            wid = w.start_worker()
            r.delete(Keys(prefix).heartbeat(wid))  # the lease vanishes
            wait_for(lambda: not w.alive, what="the worker to notice")
            wait_for(lambda wid=wid: not r.sismember(Keys(prefix).workers, wid), what="cleanup")
        assert len(w._redis.connection_pool._in_use_connections) <= 4
    finally:
        w.close()


def test_reaping_many_dead_workers_never_starves_the_supervisors_heartbeat(
    make: Any, r: redis.Redis, prefix: str
) -> None:
    """#2: 3,000 workers die together; the supervisor reaps them in batches, apart from its
    heartbeat: it never fails itself and can still finish its own task (a 0.6 s margin: the
    old in-heartbeat reaping of 3,000 took longer; a CPU stall on a busy machine does not)."""
    keys = Keys(prefix)
    pipe = r.pipeline(transaction=False)
    for i in range(3000):
        wid = f"dead{i:05d}"
        pipe.sadd(keys.workers, wid)
        pipe.sadd(keys.working_queues(wid), "jobs")
        pipe.sadd(keys.queue("jobs").workers, wid)
        pipe.hset(keys.queue("jobs").processes(wid), "1", f"task-of-{wid}")
    pipe.execute()
    w = make(heartbeat_interval=0.2, heartbeat_ttl=1.0)
    failed: list[str] = []
    w.events.on("failed", lambda wid, reason: failed.append(reason))
    w.start_worker()
    w.start_work("jobs")
    w.enqueue("jobs", "live-task")
    p = w.dequeue("jobs")
    wait_for(lambda: r.scard(keys.workers) == 1, timeout=60, what="every dead worker reaped")
    assert failed == []
    assert w.finish_process(p.id) is True
    assert r.llen(keys.queue("jobs").tasks) == 3000  # each dead worker's task back once


def test_a_permanent_worker_notices_that_a_peer_failed_it(make: Any) -> None:
    """#3: after fail_worker(its id) by a peer, a permanent worker stops trusting itself (a
    False finish fails it at once; otherwise its next beat does): never two owners."""
    perm, other, admin = permanent(make, "shards"), worker(make, "shards"), make()
    admin.enqueue("shards", ["s1", "s2"])
    p1, p2 = perm.dequeue("shards"), perm.dequeue("shards")
    perm.start_worker()  # no-op: alive
    admin.fail_worker(perm.worker_id)
    assert perm.finish_process(p1.id) is False
    assert not perm.alive  # the False finish failed it at once
    assert perm.processes == []
    assert other.dequeue("shards").task == "s1"
    lone = permanent(make, "shards")
    admin.enqueue("shards", "s3")
    q = lone.dequeue("shards")
    admin.fail_worker(lone.worker_id)
    wait_for(lambda: not lone.alive, what="the permanent worker's beat to notice")
    assert lone.finish_process(q.id) is False
    assert p2.task == "s2" and perm.finish_process(p2.id) is False


def test_run_keeps_its_acks_when_a_take_is_refused(make: Any, servers: Any, driver: str) -> None:
    """#4: a take refused by Redis (here NOPERM for a moment) while the worker stays alive
    keeps its acks: the finished task is acked by the next take and never runs again."""
    s = servers()
    admin = s.client()
    w = make(url=s.url, poll_interval=0.3, heartbeat_interval=0.2, heartbeat_ttl=1.0)
    look = make(url=s.url)
    runs: list[str] = []

    def handler(p: Process) -> None:
        runs.append(p.task)
        if p.task == "a":
            admin.execute_command("ACL", "SETUSER", "default", "-evalsha")

    w.enqueue("q", "a")
    t = threading.Thread(target=w.run, args=("q", handler), kwargs={"grace": 1}, daemon=True)
    t.start()
    try:
        wait_for(lambda: "a" in runs, what="task a")
        time.sleep(0.3)  # the take after "a" is refused meanwhile
        admin.execute_command("ACL", "SETUSER", "default", "+evalsha")
        w.enqueue("q", "b")
        wait_for(lambda: "b" in runs, what="task b")
        wait_for(
            lambda: not any(x.processes for x in look.overview().workers),
            what="every finished task acked",
        )
    finally:
        admin.execute_command("ACL", "SETUSER", "default", "+evalsha")
        w.shutdown()
        t.join(10)
    assert runs == ["a", "b"]
    assert look.get_tasks("q") == []


def test_a_cancelled_async_dequeue_gives_its_task_back(servers: Any, prefix: str) -> None:
    """#5: a dequeue cancelled after Redis ran it (wait_for timing out while Redis is slow)
    returns what it took to the front instead of stranding it in the live worker's record."""
    s = servers(*DEBUG_OK)
    admin = s.client()

    async def main() -> None:
        async with AsyncWorqr(s.url, prefix=prefix, heartbeat_interval=0.2, heartbeat_ttl=2) as w:
            await w.start_worker()
            await w.start_work("q")
            await w.enqueue("q", "job-1")
            slow = threading.Thread(target=admin.execute_command, args=("DEBUG", "SLEEP", "0.5"))
            slow.start()
            await asyncio.sleep(0.1)  # Redis is busy: the dequeue waits for its reply
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(w.dequeue("q"), timeout=0.2)
            await asyncio.to_thread(slow.join)
            for _ in range(200):
                if await w.get_tasks("q") == ["job-1"]:
                    break
                await asyncio.sleep(0.01)
            assert await w.get_tasks("q") == ["job-1"]
            assert w.processes == []
            again = await w.dequeue("q")
            assert again is not None and again.task == "job-1"

    asyncio.run(main())


def test_own_does_not_reregister_after_a_deliberate_fail_worker(make: Any) -> None:
    """#6: after fail_worker() the owner stays down (both drivers); after a lost heartbeat
    it registers again."""
    w = make(**FAST)
    w.enqueue("conns", ["c1", "c2"])
    acquired: list[str] = []
    w.own("conns", lambda p: acquired.append(p.task), lambda p: None)
    wait_for(lambda: len(acquired) == 2, what="both acquired")
    first = w.worker_id
    w.fail_worker()
    time.sleep(0.5)  # five heartbeat intervals: time enough to have re-registered
    assert (w.worker_id, w.alive, len(acquired)) == (first, False, 2)
    assert sorted(make().get_tasks("conns")) == ["c1", "c2"]


def test_own_reregisters_after_a_lost_heartbeat(make: Any, r: redis.Redis, prefix: str) -> None:
    w = make(**FAST)
    w.enqueue("conns", ["c1"])
    acquired: list[str] = []
    w.own("conns", lambda p: acquired.append(p.task), lambda p: None)
    wait_for(lambda: acquired == ["c1"], what="acquired")
    first = w.worker_id
    r.delete(Keys(prefix).heartbeat(first))
    wait_for(lambda: w.alive and w.worker_id != first and len(acquired) == 2, what="rejoin")


def test_a_stale_cleanup_never_touches_the_next_worker(
    server: RedisServer, r: redis.Redis, prefix: str
) -> None:
    """#7: the cleanup of a failed worker runs late, after a new worker was registered: it
    deregisters the failed id only, never the new one."""
    w = Worqr(server.url, prefix=prefix, heartbeat_interval=0.05, heartbeat_ttl=1.0)
    deferred: list[tuple[Any, ...]] = []
    original = w._schedule_cleanup
    w._schedule_cleanup = lambda *a: deferred.append(a)  # type: ignore[method-assign]
    try:
        old = w.start_worker()
        r.delete(Keys(prefix).heartbeat(old))
        wait_for(lambda: deferred, what="the failure")
        new = w.start_worker()
        w.start_work("q")
        original(*deferred[0])  # the stale cleanup runs now
        wait_for(lambda: not r.sismember(Keys(prefix).workers, old), what="old id gone")
        assert r.exists(Keys(prefix).heartbeat(new))
        assert w.alive and w.worker_id == new
        assert w.get_working_queues() == ["q"]
    finally:
        w.close()


def test_unique_enqueue_does_not_scan_the_queue(make: Any, r: redis.Redis) -> None:
    """#8: unique=True is O(1) in Redis: no LPOS over the queue, no HVALS of the records."""
    w = worker(make, "q")
    w.enqueue("q", [f"bulk-{i}" for i in range(20_000)])
    w.dequeue("q")
    r.config_resetstat()
    assert w.enqueue("q", "u", unique=True) is True
    stats = r.info("commandstats")
    assert "cmdstat_lpos" not in stats and "cmdstat_hvals" not in stats


def test_async_run_registers_one_worker_id_after_a_failure(servers: Any, prefix: str) -> None:
    """#9: after one failure, the eight runner tasks of run(concurrency=8) register one new
    worker id between them, not one each."""
    s = servers()
    r = s.client(decode_responses=True)
    ids: list[str] = []

    async def main() -> None:
        w = AsyncWorqr(s.url, prefix=prefix, heartbeat_interval=0.1, heartbeat_ttl=1.0)
        register = w._core.start_worker

        def counted(*a: Any) -> Any:
            wid = yield from register(*a)
            if wid not in ids:
                ids.append(wid)
            return wid

        w._core.start_worker = counted  # type: ignore[method-assign]
        runner = asyncio.create_task(w.run("q", lambda p: None, concurrency=8, grace=1))
        while not w.alive:
            await asyncio.sleep(0.01)
        r.delete(Keys(prefix).heartbeat(ids[0]))
        while len(ids) < 2 or not w.alive:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)  # time for more registrations, were any coming
        w.shutdown()
        await runner
        await w.close()

    asyncio.run(main())
    assert len(ids) == 2
    assert r.smembers(Keys(prefix).workers) == set()


def test_on_lost_comes_before_the_new_owner_acquires(
    make: Any, r: redis.Redis, prefix: str
) -> None:
    """#10: after a failure every on_lost of the old id runs before any on_acquire of the
    new one, so the app's view of what it owns matches the library's."""
    w = make(**FAST)
    w.enqueue("res", ["a", "b", "c"])
    log: list[tuple[str, str]] = []
    owned: set[str] = set()

    def on_acquire(p: Process) -> None:
        owned.add(p.task)
        log.append(("acquire", p.id))

    def on_lost(p: Process) -> None:
        time.sleep(0.05)  # a realistic teardown
        owned.discard(p.task)
        log.append(("lost", p.id))

    w.own("res", on_acquire, on_lost)
    wait_for(lambda: len(owned) == 3, what="all three owned")
    first = w.worker_id
    r.delete(Keys(prefix).heartbeat(first))
    wait_for(lambda: w.alive and len(w.processes) == 3, timeout=10, what="re-acquired")
    wait_for(lambda: len(log) == 9, what="every callback")
    kinds = [kind for kind, _ in log[3:]]
    assert kinds == ["lost"] * 3 + ["acquire"] * 3
    assert owned == {p.task for p in w.processes}


def test_a_queue_re_created_by_a_return_is_listed(make: Any) -> None:
    """#12: a return after delete_queue, or a requeue of dead letters, lists the queue
    again, so get_queues/overview and get_matching_processes see it."""
    w, strict = worker(make, "q"), worker(make, "d", max_deliveries=1)
    w.enqueue("q", ["a", "b"])
    p = w.dequeue("q")
    w.delete_queue("q")
    assert "q" not in w.get_queues()
    w.stop_process(p.id)
    assert "q" in w.get_queues()
    assert "q" in [x.name for x in w.overview().queues]
    again = w.dequeue("q")
    assert [m.id for m in w.get_matching_processes("a")] == [again.id]
    strict.enqueue("d", "x")
    strict.stop_process(strict.dequeue("d").id)  # dead-lettered
    strict.delete_queue("d")
    assert strict.requeue_dead("d") == 1
    assert "d" in w.get_queues()


def test_run_removes_its_handlers_when_it_returns(make: Any) -> None:
    """run() called again and again does not pile up handlers."""
    w = make(**FAST)
    target = inner(w)
    before = len(target.events.listeners("failed"))
    for _ in range(3):
        t = threading.Thread(target=w.run, args=("q", lambda p: None), daemon=True)
        t.start()
        wait_for(lambda: w.alive, what="the runner")
        w.shutdown()
        t.join(10)
    assert len(target.events.listeners("failed")) == before
    assert target._handlers.listeners("q:q") == []


def test_a_silently_dead_connection_is_replaced(make: Any, server: RedisServer) -> None:
    """#11: every connection the worker has goes silently dead (packets dropped, no RST):
    with our socket timeouts it notices, fences, reconnects and works again, on every
    redis-py we allow (CI runs this on the oldest too)."""
    proxy = BlackholeProxy(server.port)
    try:
        w = make(url=proxy.url, heartbeat_interval=0.2, heartbeat_ttl=1.0, poll_interval=0.5)
        w.events.on("error", lambda exc: None)  # timeouts while the flows are dead: expected
        producer = make()
        done: list[str] = []
        with running(w, "q", lambda p: done.append(p.task)):
            producer.enqueue("q", "t1")
            wait_for(lambda: done == ["t1"], what="t1")
            proxy.freeze()
            producer.enqueue("q", "t2")
            wait_for(lambda: "t2" in done, timeout=60, what="t2, after reconnecting")
        w.close()
    finally:
        proxy.close()
