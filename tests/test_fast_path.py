"""The drivers' own Redis I/O (``redis_io.py``): calls and pipelines on connections of the
executor's own, cancelled callers, connections killed mid-call, NOSCRIPT, and the listener's
blocking read (woken by subscribe requests and close, no timed wake-ups while idle)."""

from __future__ import annotations

import asyncio
import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest

from worqr_py import AsyncWorqr
from worqr_py.core.calls import command
from worqr_py.drivers._sync.redis_io import _read as read
from worqr_py.drivers.base import Liveness

from .conftest import FAST
from .support import wait_for


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_a_call_cancelled_mid_flight_does_not_corrupt_the_next(servers: Any, prefix: str) -> None:
    """Its reply is still unread when it is cancelled: the connection is dropped, so the
    next call never reads that stale reply as its own."""
    s = servers()

    async def main() -> None:
        async with AsyncWorqr(s.url, prefix=prefix) as w:
            await w.enqueue("q", ["a", "b"])
            await w.enqueue("other", "c")
            s.pause()  # the request is written; its reply cannot come yet
            try:
                call = asyncio.ensure_future(w.count_queue("q"))
                await asyncio.sleep(0.1)
                call.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await call
            finally:
                s.resume()
            assert await w.get_tasks("other") == ["c"]
            assert await w.count_queue("q") == 2
            assert await w.get_tasks("q") == ["a", "b"]

    run(main())


def test_a_cancelled_dequeue_is_held_until_its_reply_then_given_back(
    servers: Any, prefix: str
) -> None:
    s = servers()

    async def main() -> None:
        async with AsyncWorqr(s.url, prefix=prefix, heartbeat_interval=0.2, heartbeat_ttl=5) as w:
            await w.start_worker()
            await w.start_work("q")
            await w.enqueue("q", ["job-1", "job-2"])
            s.pause()
            try:
                take = asyncio.ensure_future(w.dequeue_many("q", 2))
                await asyncio.sleep(0.1)
                take.cancel()
            finally:
                s.resume()
            with pytest.raises(asyncio.CancelledError):
                await take
            for _ in range(500):
                if await w.get_tasks("q") == ["job-1", "job-2"] and not w.processes:
                    break
                await asyncio.sleep(0.01)
            assert await w.get_tasks("q") == ["job-1", "job-2"]
            assert w.processes == []
            assert [p.task for p in await w.dequeue_many("q", 2)] == ["job-1", "job-2"]

    run(main())


def test_a_connection_killed_mid_call_is_retried_on_a_fresh_one(servers: Any, prefix: str) -> None:
    """CLIENT PAUSE WRITE holds the EVALSHA; CLIENT KILL cuts its connection meanwhile. The
    call was never run, and the retry runs it once."""
    s = servers()
    admin = s.client()

    async def main() -> None:
        async with AsyncWorqr(s.url, prefix=prefix, retry_timeout=10) as w:
            await w.enqueue("q", "first")
            admin.execute_command("CLIENT", "PAUSE", 2000, "WRITE")
            try:
                call = asyncio.ensure_future(w.enqueue("q", "second"))
                await asyncio.sleep(0.2)
                assert admin.client_kill_filter(_type="normal", skipme=True) >= 1
            finally:
                admin.execute_command("CLIENT", "UNPAUSE")
            assert await call == 2
            assert await w.get_tasks("q") == ["first", "second"]

    run(main())


def test_noscript_is_loaded_on_the_same_connection_in_calls_and_pipelines(
    make: Any, r: Any
) -> None:
    w = make(**FAST)
    w.start_worker()
    r.script_flush()
    w.start_work("q")  # a pipeline of two scripts and a command: both scripts reloaded
    r.script_flush()
    assert w.enqueue("q", ["a", "b"]) == 2  # a single EVALSHA
    r.script_flush()
    assert [p.task for p in w.dequeue_many("q", 2)] == ["a", "b"]
    r.script_flush()
    assert w.fail_worker() == 2
    assert w.get_tasks("q") == ["a", "b"]


def test_an_error_reply_keeps_the_connection(make: Any, r: Any) -> None:
    """A WRONGTYPE reply is the caller's error; the connection stays in use."""
    w = make(**FAST)
    r.set(f"{w._core.keys.queue('q').tasks}", "not a list")
    with pytest.raises(Exception, match="WRONGTYPE"):
        w.count_queue("q")
    r.delete(w._core.keys.queue("q").tasks)
    assert w.count_queue("q") == 0
    assert len(w._executor.idle) == 1


def test_the_idle_listener_hears_work_and_subscribes_at_once(make: Any) -> None:
    """No poll can help here (every 60 s): the notifications and a later subscribe request
    are served while the listener sleeps in its read."""
    w = make(heartbeat_interval=0.5, heartbeat_ttl=3, poll_interval=60)
    feeder = make()
    heard: list[tuple[str, str, str]] = []
    w.on("q1", lambda kind, msg: heard.append(("q1", kind, msg)))
    feeder.enqueue("q1", "a")
    wait_for(lambda: ("q1", "work", "1") in heard, what="the work notification")
    w.on("q2", lambda kind, msg: heard.append(("q2", kind, msg)))  # listener idle: woken
    feeder.enqueue("q2", ["x", "y"])
    feeder.cancel_tasks("q1", "a")
    wait_for(lambda: ("q2", "work", "2") in heard, what="the second queue's notification")
    wait_for(lambda: ("q1", "cancel", "a") in heard, what="the cancel notification")


def test_an_idle_asyncio_worker_sleeps_until_its_heartbeat(server: Any, prefix: str) -> None:
    """Idle: the loop sleeps until a timer it needs (the heartbeat, every second here; the
    safety poll is a minute away), never on a short polling timeout."""
    timers = 0

    async def main() -> None:
        nonlocal timers
        selector = asyncio.get_running_loop()._selector  # type: ignore[attr-defined]
        select = selector.select

        def counted(timeout: float | None = None) -> Any:
            nonlocal timers
            events = select(timeout)
            if (timeout is None or timeout > 0) and not events:
                timers += 1
            return events

        async with AsyncWorqr(server.url, prefix=prefix, poll_interval=60) as w:
            runner = asyncio.ensure_future(w.run("q", lambda p: None))
            await asyncio.sleep(0.5)
            selector.select = counted
            await asyncio.sleep(3)
            selector.select = select
            w.shutdown()
            await runner

    run(main())
    assert timers <= 3 + 3, timers  # a heartbeat a second (the old listener: 20 a second)


def test_closing_a_sync_client_wakes_its_idle_listener(make: Any, driver: str) -> None:
    """The listener sleeps in its read (poll a minute away): close wakes it, and its thread
    ends with the client (the autouse fixture checks every thread ends)."""
    w = make(poll_interval=60)
    w.on("q", lambda kind, msg: None)
    done = threading.Event()
    closer = threading.Thread(target=lambda: (w.close(), done.set()))
    closer.start()
    wait_for(done.is_set, timeout=8, what="close")
    closer.join()


def test_a_subscriber_whose_health_checks_go_unanswered_is_taken_for_dead() -> None:
    """redis-py moves ``next_health_check`` on every reply (PONGs included); when it stays
    put for three intervals the listener drops the connection and reconnects."""
    conn = SimpleNamespace(health_check_interval=0.01, next_health_check=1.0)
    alive = Liveness()
    assert not alive.dead(conn)
    time.sleep(0.05)
    assert alive.dead(conn)
    conn.next_health_check = 2.0  # a reply came
    assert not alive.dead(conn)
    assert not Liveness().dead(SimpleNamespace(health_check_interval=0, next_health_check=0))
    assert Liveness.bound(conn, 60) == 0.01
    assert Liveness.bound(None, 60) == 60


def test_the_listener_works_with_file_descriptors_above_1023(make: Any) -> None:
    """A process with a few hundred clients has sockets numbered above 1023, which
    ``select()`` refuses (the sync listener thread died of it): fill the low numbers first."""
    import os

    filler = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        w, producer = make(poll_interval=60), make()
        got: list[tuple[str, str]] = []
        w.on("q", lambda kind, message: got.append((kind, message)))
        producer.enqueue("q", "t")
        wait_for(lambda: ("work", "1") in got, what="the work event")
    finally:
        for fd in filler:
            os.close(fd)


@pytest.mark.parametrize("encoding, errors", [("utf-8", "strict"), ("UTF_8", "strict")])
def test_hiredis_packs_the_bytes_redis_py_would(encoding: str, errors: str) -> None:
    """The executors pack with hiredis only where it gives redis-py's own bytes (pure);
    without hiredis (the floor's CI run), with the connection's packer."""
    import importlib.util

    import redis

    from worqr_py.drivers.wire import c_pack, packer, python_pack

    conn = redis.Redis(encoding=encoding, encoding_errors=errors).connection_pool.make_connection()
    if importlib.util.find_spec("hiredis") is None:
        assert packer(conn) is python_pack
        return
    assert packer(conn) is c_pack
    for words in [
        ("EVALSHA", "ab" * 20, 2, "k:{q}:1", "k:{q}:2", "tâche ✓", 7, -3, 0.1, 1e-7, b"\x00\xff"),
        ("RPUSH", "q", ""),
    ]:
        assert c_pack(conn, words) == python_pack(conn, words)


@pytest.mark.parametrize("encoding, errors", [("latin-1", "strict"), ("utf-8", "replace")])
def test_other_encodings_pack_as_the_connection_does(encoding: str, errors: str) -> None:
    import redis

    from worqr_py.drivers.wire import packer, python_pack

    conn = redis.Redis(encoding=encoding, encoding_errors=errors).connection_pool.make_connection()
    assert packer(conn) is python_pack


def test_a_pipeline_returns_error_replies_in_place_and_keeps_the_connection(
    server: Any, prefix: str, r: Any
) -> None:
    """Sync executor: one write, every reply read (an error reply in the middle included),
    the connection kept, so the next call on it reads its own reply. (The asyncio
    executor's twin is covered by the same behaviour tests through its pipelines.)"""
    from worqr_py import Worqr
    from worqr_py.core.calls import command

    with Worqr(server.url, prefix=prefix) as w:
        key = w._core.keys.queue("q").tasks + ":pipe"
        w.enqueue("q", "warm-up")  # the executor now holds one idle connection
        calls = [command("SET", key, "x"), command("LPUSH", key, "y"), command("GET", key)]
        replies = w._executor.pipeline(calls)
        assert len(replies) == 3
        assert isinstance(replies[1], Exception) and "WRONGTYPE" in str(replies[1])
        assert replies[2] in (b"x", "x")
        r.delete(key)
        assert w.count_queue("q") == 1
        assert len(w._executor.idle) == 1


def test_an_idle_connection_the_server_closed_is_connected_afresh(make: Any, r: Any) -> None:
    """A heartbeat is not retried: when the server has closed the executor's idle
    connection (its ``timeout``, CLIENT KILL, a proxy's idle cut), the next call connects
    afresh, as redis-py's pool does with the connections it hands out, instead of failing
    (review of 0.7.1: a worker whose beat met such a connection failed itself)."""
    from worqr_py.drivers._sync.redis_io import _readable

    w = make(heartbeat_interval=30, heartbeat_ttl=90)  # no beat of its own meanwhile
    w.start_worker()
    w.enqueue("q", "x")
    executor = w._executor
    assert len(executor.idle) >= 1
    assert r.client_kill_filter(_type="normal", skipme=True) >= 1

    def closed(conn: Any) -> bool:  # the close has reached this side (asyncio: its loop)
        reader = getattr(conn, "_reader", None)
        if reader is not None:
            return bool(reader.at_eof())
        return conn._sock is not None and bool(_readable([conn._sock], 0))

    wait_for(lambda: all(closed(c) for c in list(executor.idle)), what="the close seen")
    assert w._run(w._core.beat(), retry=False) is True
    assert w.alive
    assert w.get_tasks("q") == ["x"]


@pytest.mark.parametrize("protocol", [2, 3])
@pytest.mark.parametrize("decode", [False, True])
def test_the_sync_read_path_reads_every_kind_of_reply(
    server: Any, prefix: str, protocol: int, decode: bool
) -> None:
    """The sync executor reads replies from hiredis' reader itself (redis_io._read): big
    replies over many recv calls, error replies (the connection kept), RESP2 and RESP3, str
    or bytes clients, and a RESP3 push that comes before a reply (it goes to redis-py's push
    handler; the call gets its own reply)."""
    import redis

    from worqr_py import Worqr

    own = redis.Redis(port=server.port, protocol=protocol, decode_responses=decode)
    w = Worqr(redis=own, prefix=prefix)
    try:
        tasks = [f"task-{i}-" + "x" * 50 for i in range(20_000)]  # about 1.3 MB
        w.enqueue("q", tasks)
        assert w.get_tasks("q") == tasks
        own.set(f"{prefix}:plain", "v")
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            w._executor.call(command("LPUSH", f"{prefix}:plain", "x"))
        conn = w._executor.idle[-1]
        assert w._executor.call(command("GET", f"{prefix}:plain")) in ("v", b"v")
        assert w._executor.idle[-1] is conn  # the error reply kept the connection
        if protocol == 3:  # a RESP3 push before a reply (Redis 7 sends our own key's
            # invalidation after the SET's reply: it comes before the next reply)
            assert w._executor.call(command("CLIENT", "TRACKING", "ON")) in ("OK", b"OK")
            w._executor.call(command("GET", f"{prefix}:plain"))  # tracked now
            pushed: list[Any] = []
            handle = conn._parser.handle_push_response
            conn._parser.handle_push_response = lambda r, **kw: pushed.append(r) or handle(r)
            conn.send_packed_command(conn.pack_command("SET", f"{prefix}:plain", "w"))
            assert read(conn) in ("OK", b"OK") and pushed == []
            conn.send_packed_command(conn.pack_command("GET", f"{prefix}:plain"))
            assert read(conn) in ("w", b"w")
            if getattr(conn._parser, "_hiredis_PushNotificationType", None) is not None:
                # read here (hiredis and a redis-py that has push types): the push went to
                # redis-py's handler; else read_response read it, as redis-py does
                assert len(pushed) == 1 and pushed[0][0] in ("invalidate", b"invalidate")
    finally:
        w.close()
        own.close()


def test_the_sync_read_path_fails_as_redis_py_would(servers: Any, prefix: str) -> None:
    """A LOADING error reply raises (BusyLoadingError, which the drivers retry), a read the
    server does not answer in time raises redis-py's TimeoutError, a connection cut
    mid-call is retried on a fresh one; each failed connection is discarded."""
    import redis

    from worqr_py import Worqr

    s = servers()
    own = redis.Redis(port=s.port, socket_timeout=0.5)
    w = Worqr(redis=own, prefix=prefix, retry_timeout=0)
    try:
        loading = "return redis.error_reply('LOADING Redis is loading the dataset in memory')"
        with pytest.raises(redis.exceptions.BusyLoadingError):
            w._executor.call(command("EVAL", loading, 0))
        assert not w._executor.idle  # discarded, not kept as after an error reply
        w.enqueue("q", "first")
        s.pause()
        try:
            with pytest.raises(redis.exceptions.TimeoutError):
                w.enqueue("q", "second")
        finally:
            s.resume()
        assert w.get_tasks("q") == ["first", "second"]  # it ran, its reply came too late
    finally:
        w.close()
        own.close()
    admin = s.client()
    with Worqr(s.url, prefix=prefix, retry_timeout=10) as w2:
        admin.execute_command("CLIENT", "PAUSE", 2000, "WRITE")
        try:
            call = threading.Thread(target=w2.enqueue, args=("q", "third"))
            call.start()
            wait_for(lambda: admin.client_kill_filter(_type="normal", skipme=True) >= 1)
        finally:
            admin.execute_command("CLIENT", "UNPAUSE")
        call.join(10)
        assert not call.is_alive()
        assert w2.get_tasks("q") == ["first", "second", "third"]


def test_bounded_raises_the_builtin_timeout_error() -> None:
    """primitives.bounded (a waiter's read cut at its deadline) raises the builtin
    TimeoutError, which the job waiter turns into JobWaitTimeout; before Python 3.11
    asyncio.wait_for raises asyncio.TimeoutError, another class (a review of 0.7.4's first
    cut: AsyncWorqr.wait_for_result raised it on 3.10)."""
    from worqr_py.drivers._async.primitives import bounded

    with pytest.raises(TimeoutError) as info:
        run(bounded(asyncio.sleep(5), 0.01))
    assert type(info.value) is TimeoutError


def test_a_client_with_health_checks_pings_only_when_idle(servers: Any, prefix: str) -> None:
    """A connection with health_check_interval PINGs before a call only once it sat idle
    that long: the sync executor's own read sets the next check by redis-py's clock
    (time.time in 5.x, time.monotonic later; a review of 0.7.4's first cut: a PING before
    every call on redis-py 5.0.8 with hiredis)."""
    import redis

    from worqr_py import Worqr

    s = servers()
    own = redis.Redis(port=s.port, health_check_interval=5)
    probe = s.client()
    w = Worqr(redis=own, prefix=prefix)
    try:
        w.count_queue("q")

        def pings() -> int:
            return int(probe.info("commandstats").get("cmdstat_ping", {}).get("calls", 0))

        before = pings()
        for _ in range(50):
            w.count_queue("q")
        assert pings() - before <= 1
    finally:
        w.close()
        own.close()
