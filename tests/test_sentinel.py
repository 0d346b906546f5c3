"""Sentinel failover with real processes: a master, one replica and three sentinels. Workers
(one over a ``redis+sentinel://`` URL, one over the user's own ``master_for`` clients) run
while a producer enqueues; the master is SIGKILLed mid-stream. Enqueue and processing must
resume once Sentinel promotes the replica, and nothing acknowledged may be lost beyond what
asynchronous replication can lose."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio.sentinel as async_sentinel
import redis.sentinel

from worqr_py.core.keys import Keys

from .sentinel import SERVICE, SentinelCluster
from .support import running, wait_for

BOUND = 30.0  # every wait on the failover (about 2-4 s here)
OPTIONS = {
    "heartbeat_interval": 0.2,
    "heartbeat_ttl": 1.0,
    "poll_interval": 0.5,
    "retry_timeout": 20.0,
    "max_deliveries": None,  # a task delivered again and again must not be dead-lettered
}


@pytest.fixture
def cluster() -> Iterator[SentinelCluster]:
    """A fresh master + replica + 3 sentinels, every process stopped after the test."""
    c = SentinelCluster()
    try:
        yield c
    finally:
        c.stop()


class Producer:
    """Enqueues ``t0``, ``t1``... in a thread and records, for each acknowledged enqueue, when
    it started, and the highest index known to be on the replica: after each enqueue, while
    the master is the original one, a marker write and ``WAIT 1`` on one connection of
    ``checker`` (replication is ordered, so a replica that has the marker has the task)."""

    def __init__(self, w: Any, queue: str, checker: redis.Redis, marker: str) -> None:
        self.w, self.queue, self.checker, self.marker = w, queue, checker, marker
        self.acked: dict[str, tuple[float, float]] = {}  # task -> its enqueue's start, reply
        self.replicated = -1  # every task up to t<replicated> is on the replica
        self.errors: list[BaseException] = []
        self.check = True  # cleared when the master is killed: no replica is left after
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="test-producer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        i = 0
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                self.w.enqueue(self.queue, f"t{i}")
            except Exception as exc:  # reported by the test
                self.errors.append(exc)
                return
            self.acked[f"t{i}"] = (started, time.monotonic())
            if self.check:
                self._check(i)
            i += 1
            self.stop.wait(0.005)  # pacing: a stream, not a flood

    def _check(self, i: int) -> None:
        try:
            pipe = self.checker.pipeline(transaction=False)
            pipe.incr(self.marker)
            pipe.execute_command("WAIT", 1, 500)
            if int(pipe.execute()[1]) >= 1:
                self.replicated = i
        except redis.RedisError:  # the master is going: this task counts as unreplicated
            pass

    def close(self) -> None:
        self.stop.set()
        self.thread.join(BOUND + 10)
        assert not self.thread.is_alive(), "the producer did not end"


def user_clients(driver: str, cluster: SentinelCluster) -> tuple[Any, Callable[[Any], None]]:
    """The user's own ``Sentinel(...).master_for(...)`` client of the driver's flavour, with
    redis-py's default retry, and how to close it (and its sentinel clients) after the test."""
    if driver == "sync":
        manager: Any = redis.sentinel.Sentinel(cluster.addresses, socket_timeout=1.0)

        def close(w: Any) -> None:
            for c in [client, *manager.sentinels]:
                c.close()

    else:
        manager = async_sentinel.Sentinel(cluster.addresses, socket_timeout=1.0)

        def close(w: Any) -> None:
            async def aclose() -> None:
                for c in [client, *manager.sentinels]:
                    await c.aclose()

            w._loop.run(aclose())

    client = manager.master_for(SERVICE, socket_timeout=5.0)
    return client, close


def test_failover_loses_nothing_acknowledged_and_replicated(
    cluster: SentinelCluster, make: Callable[..., Any], driver: str, prefix: str
) -> None:
    queue = "jobs"
    seen: dict[str, int] = {}  # task -> deliveries that finished
    first: dict[str, float] = {}  # task -> when its handler first ran
    lock = threading.Lock()

    def handler(p: Any) -> None:
        with lock:
            seen[p.task] = seen.get(p.task, 0) + 1
            first.setdefault(p.task, time.monotonic())

    by_url = make(url=cluster.url, **OPTIONS)
    mine, close_mine = user_clients(driver, cluster)
    by_clients = make(redis=mine, **OPTIONS)
    producer_client = make(url=cluster.url, **OPTIONS)
    checker = redis.sentinel.Sentinel(cluster.addresses, socket_timeout=1.0).master_for(
        SERVICE, socket_timeout=5.0
    )
    old = cluster.master.port
    try:
        with (
            running(by_url, queue, handler, concurrency=2),
            running(by_clients, queue, handler, concurrency=2),
        ):
            producer = Producer(producer_client, queue, checker, f"{prefix}-marker")
            try:
                wait_for(lambda: len(seen) >= 100, BOUND, "100 tasks processed before the kill")
                producer.check = False
                killed = time.monotonic()
                cluster.master.kill()
                wait_for(lambda: cluster.master_port() not in (None, old), BOUND, "a promotion")
                promoted = time.monotonic() - killed
                after = lambda: [t for t, s in producer.acked.items() if s[0] > killed]  # noqa: E731
                wait_for(lambda: len(after()) >= 100, BOUND, "100 enqueues after the kill")
            finally:
                producer.close()
            assert not producer.errors, producer.errors
            acked = producer.acked
            must = {t for t in acked if int(t[1:]) <= producer.replicated} | set(after())
            wait_for(
                lambda: must <= seen.keys(),
                BOUND,
                "every acknowledged and replicated task processed",
            )
            enqueued = min(acked[t][1] for t in after()) - killed
            processed = min(first[t] for t in after()) - killed
            maybe = set(acked) - must  # acknowledged by the old master, not known replicated
            lost = sorted(maybe - seen.keys(), key=lambda t: int(t[1:]))
        again = sum(n - 1 for n in seen.values())
        print(
            f"\n[{driver}] after the kill: promoted at {promoted:.2f} s, first enqueue "
            f"acknowledged at {enqueued:.2f} s, first new task processed at {processed:.2f} s; "
            f"{len(acked)} acknowledged, {len(must)} of "
            f"them replicated or acked by the new master, {len(maybe)} maybe not replicated, "
            f"{len(lost)} of those lost {lost}; {again} deliveries again"
        )
        assert cluster.master_port() == cluster.replica.port
    finally:
        for w in (by_url, by_clients, producer_client):
            w.close()
        close_mine(by_clients)
        checker.close()
        for s in checker.connection_pool.sentinel_manager.sentinels:
            s.close()


def test_after_a_failover_writes_go_to_the_master_the_sentinels_name(
    cluster: SentinelCluster, make: Callable[..., Any], prefix: str
) -> None:
    """SENTINEL FAILOVER promotes the replica; the old master stays writable for seconds,
    until the sentinels reconfigure it, and what a client writes there is lost (a review of
    0.7.3: 10 s of acknowledged enqueues, as redis-py asks the sentinels only on connecting
    or an error). A client asks them every 0.5 s and leaves a master they no longer name:
    every task acknowledged more than 3 s after they named the new master is on it."""
    w = make(url=cluster.url, retry_timeout=20)
    acked: list[tuple[str, float]] = []
    stop = threading.Event()

    def produce() -> None:
        i = 0
        while not stop.is_set():
            w.enqueue("q", f"t{i}")
            acked.append((f"t{i}", time.monotonic()))
            i += 1
            stop.wait(0.01)

    thread = threading.Thread(target=produce, name="test-producer")
    thread.start()
    old = cluster.master.port
    try:
        wait_for(lambda: len(acked) >= 20, timeout=BOUND, what="the producer under way")
        cluster.sentinels[0].ask("SENTINEL", "FAILOVER", SERVICE)
        wait_for(
            lambda: cluster.master_port() not in (None, old), timeout=BOUND, what="a new master"
        )
        named = time.monotonic()
        wait_for(lambda: acked[-1][1] > named + 5, timeout=BOUND, what="5 s of enqueues after it")
    finally:
        stop.set()
        thread.join(BOUND)
    assert not thread.is_alive()
    new = cluster.replica.client(decode_responses=True)
    try:
        queued = set(new.lrange(Keys(prefix).queue("q").tasks, 0, -1))
    finally:
        new.close()
    late = [t for t, at in acked if at > named + 3 and t not in queued]
    assert late == [], f"{len(late)} tasks acknowledged by the old master after the failover"
    assert any(at > named + 3 for _, at in acked)


def test_a_master_watch_ends_with_its_client(cluster: SentinelCluster) -> None:
    """The thread that asks the sentinels which master they name ends on close(), and also
    when a client is dropped without close() (a review of 0.7.4's first cut: it ran on)."""
    import gc

    from worqr_py import Worqr

    def watches() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "worqr-master-watch"]

    before = len(watches())
    w = Worqr(cluster.url, prefix="watch")
    w.enqueue("q", "x")
    assert len(watches()) == before + 1
    w.close()
    wait_for(lambda: len(watches()) == before, timeout=BOUND, what="the watch to end on close")
    dropped = Worqr(cluster.url, prefix="watch")
    dropped.enqueue("q", "x")
    assert len(watches()) == before + 1
    del dropped
    gc.collect()
    wait_for(lambda: len(watches()) == before, timeout=BOUND, what="the watch of a dropped client")


def test_a_readonly_reply_behind_sentinel_is_retried_as_redis_py_would(
    servers: Any, prefix: str
) -> None:
    """A master demoted while the sentinels still name it answers READONLY: redis-py's
    Sentinel connection turns that into a ConnectionError (the drivers retry; it asks the
    sentinels again), and the sync executor's own read must not bypass that (a review of
    0.7.4's first cut: ReadOnlyError raised to the caller). Two real servers; the sentinels'
    answer is scripted (discover_master), the replies are Redis'."""
    from worqr_py.core.calls import command
    from worqr_py.drivers._sync.redis_io import Executor

    old, new = servers(), servers()
    named = [("127.0.0.1", old.port)]

    class Scripted(redis.sentinel.Sentinel):
        def discover_master(self, service_name: str) -> Any:
            return named[0]

    client = Scripted([("127.0.0.1", 1)]).master_for("svc", socket_timeout=5.0)
    ex = Executor(client)
    try:
        ex.call(command("SET", f"{prefix}:k", "1"))
        old.client().replicaof("127.0.0.1", new.port)  # demoted; the "sentinels" still name it
        with pytest.raises(redis.ConnectionError, match="previous master"):
            ex.call(command("SET", f"{prefix}:k", "2"))
        named[0] = ("127.0.0.1", new.port)  # now they name the new one: the retry goes there
        assert ex.call(command("SET", f"{prefix}:k", "3")) in (True, b"OK", "OK")
        assert new.client().get(f"{prefix}:k") == b"3"
    finally:
        old.client().replicaof("no", "one")
        ex.release()
        client.close()


def test_a_readonly_reply_behind_sentinel_is_retried_in_asyncio_too(
    servers: Any, prefix: str
) -> None:
    """The asyncio executor reads from the parser itself too: behind Sentinel it reads
    through the connection's read_response, which turns READONLY into a ConnectionError."""
    from worqr_py.core.calls import command
    from worqr_py.drivers._async.redis_io import Executor

    old, new = servers(), servers()
    named = [("127.0.0.1", old.port)]

    class Scripted(async_sentinel.Sentinel):
        async def discover_master(self, service_name: str) -> Any:
            return named[0]

    async def main() -> None:
        client = Scripted([("127.0.0.1", 1)]).master_for("svc", socket_timeout=5.0)
        ex = Executor(client)
        try:
            await ex.call(command("SET", f"{prefix}:k", "1"))
            old.client().replicaof("127.0.0.1", new.port)
            with pytest.raises(redis.ConnectionError, match="previous master"):
                await ex.call(command("SET", f"{prefix}:k", "2"))
            named[0] = ("127.0.0.1", new.port)
            assert await ex.call(command("SET", f"{prefix}:k", "3")) in (True, b"OK", "OK")
            assert new.client().get(f"{prefix}:k") == b"3"
        finally:
            old.client().replicaof("no", "one")
            await ex.release()
            await client.aclose()

    import asyncio

    asyncio.run(asyncio.wait_for(main(), BOUND))
