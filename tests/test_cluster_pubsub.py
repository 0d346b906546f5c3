"""Sharded pub/sub and batching on a real Redis Cluster (tests/cluster.py), both drivers:
each queue's notifications go to its own shard only (the cluster bus carries no PUBLISH),
wake-ups and events arrive with the poll out of the way, subscriptions follow a slot moved
to another master and a master lost to a failover (SIGKILL, or SIGSTOP: silent), and a
pipeline of commuting calls over several masters keeps every reply in its place."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
import redis.asyncio as aredis

from worqr_py import AsyncWorqr, Worqr
from worqr_py.core import scripts
from worqr_py.core.calls import Commuting, command, script
from worqr_py.core.keys import Keys
from worqr_py.drivers._async import cluster_io as async_io
from worqr_py.drivers._sync import cluster_io as sync_io

from .cluster import RedisCluster, move_slot
from .conftest import FAST, Loop
from .support import running, task_log, wait_for
from .test_cluster import node_of, spread

SLOW_POLL = {"heartbeat_interval": 0.2, "heartbeat_ttl": 15, "poll_interval": 60}


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisCluster]:
    c = RedisCluster()
    yield c
    c.stop()


def bus(node: Any) -> dict[str, int]:
    """The node's cluster-bus message counters (CLUSTER INFO; absent ones are 0)."""
    info = node.client().execute_command("CLUSTER", "INFO")
    text = info.decode() if isinstance(info, bytes) else str(info)
    pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {k: int(v) for k, v in pairs if k.startswith("cluster_stats_messages_")}


def shard_subscribers(node: Any, channel: str) -> int:
    """How many connections subscribe ``channel`` (SSUBSCRIBE) on ``node``."""
    return int(node.client().execute_command("PUBSUB", "SHARDNUMSUB", channel)[1])


def subscribers(cluster: RedisCluster, channel: str) -> dict[int, int]:
    """Port -> how many connections subscribe ``channel`` there, per master."""
    return {node.port: shard_subscribers(node, channel) for node in cluster.masters()}


def test_a_notification_goes_to_its_own_shard_only(
    make: Any, cluster: RedisCluster, prefix: str
) -> None:
    w = make(url=cluster.url, **FAST)
    queues = spread(cluster, prefix)
    seen: list[tuple[str, str, str]] = []
    for q in queues:
        w.on(q, lambda kind, message, q=q: seen.append((q, kind, message)))
    for q in queues:  # each queue's channel is subscribed on its own master, nowhere else
        channel = Keys(prefix).queue(q).events
        owner = node_of(cluster, channel).port
        assert subscribers(cluster, channel) == {
            n.port: int(n.port == owner) for n in cluster.masters()
        }
    before = {n.port: bus(n) for n in cluster.masters()}
    for q in queues:
        w.enqueue(q, ["a", "b"])
    wait_for(lambda: all((q, "work", "2") in seen for q in queues), what="every work event")
    after = {n.port: bus(n) for n in cluster.masters()}
    # No cluster-wide PUBLISH went over the bus, yet each queue's subscriber heard its event.
    # (How a shard's own replicas hear it differs: Redis 7.0 counts "publishshard" messages
    # on the bus, Valkey 8 does not, so that count is not asserted.)
    key = "cluster_stats_messages_publish_sent"
    for port in after:
        assert after[port].get(key, 0) == before[port].get(key, 0)


def test_an_idle_runner_is_woken_on_its_queue_s_shard(
    make: Any, cluster: RedisCluster, prefix: str
) -> None:
    """The poll is 60 s away: only the wake-up, on the queue's own shard channel
    ``P:{E}:wk:W``, can deliver each task to the waiting runner."""
    queues = spread(cluster, prefix)
    w, producer = make(url=cluster.url, **SLOW_POLL), make(url=cluster.url)
    done, handler = task_log()
    with running(w, queues, handler):
        wait_for(lambda: all(subscribed_wake(cluster, prefix, q, w) for q in queues))
        for i in range(3):
            for q in queues:
                task = f"{q}-{i}"
                producer.enqueue(q, task)
                wait_for(lambda task=task: task in done, what=f"{task} handled")
    assert sorted(done) == sorted(f"{q}-{i}" for i in range(3) for q in queues)


def subscribed_wake(cluster: RedisCluster, prefix: str, queue: str, w: Any) -> bool:
    channel = Keys(prefix).queue(queue).wakes + (w.worker_id or "")
    return sum(subscribers(cluster, channel).values()) == 1


def test_a_subscription_follows_its_slot_to_another_master(
    make: Any, cluster: RedisCluster, prefix: str
) -> None:
    """Resharding: the server unsubscribes the channels of a slot that leaves a master; the
    listener subscribes them on the slot's new master, where the next event is heard (the
    poll is 60 s away)."""
    w = make(url=cluster.url, **SLOW_POLL)
    q = spread(cluster, prefix)[0]
    channel = Keys(prefix).queue(q).events
    seen: list[tuple[str, str]] = []
    w.on(q, lambda kind, message: seen.append((kind, message)))
    source = node_of(cluster, channel)
    target = next(n for n in cluster.masters() if n is not source)
    move_slot(cluster, cluster.client().keyslot(channel), source, target)
    wait_for(lambda: shard_subscribers(target, channel) == 1, what="subscribed anew")
    assert shard_subscribers(source, channel) == 0
    w.enqueue(q, "after the move")
    wait_for(lambda: ("work", "1") in seen, what="the event on the new master")


@pytest.mark.parametrize("how", ["SIGKILL", "SIGSTOP"])
def test_a_subscription_follows_a_failover(
    make: Any, cluster: RedisCluster, prefix: str, how: str, monkeypatch: Any
) -> None:
    """The master holding a queue's channel dies (SIGKILL: its connections reset) or goes
    silent (SIGSTOP: nothing is reset; the shard's health checks notice, every 0.3 s here).
    Its replica is promoted and the channel is subscribed there: the next event is heard
    with the poll 60 s away."""
    for io in (sync_io, async_io):
        monkeypatch.setattr(io, "HEALTH_CHECK_S", 0.3)
    w = make(url=cluster.url, retry_timeout=30, **SLOW_POLL)
    q = spread(cluster, prefix)[0]
    channel = Keys(prefix).queue(q).events
    seen: list[tuple[str, str]] = []
    w.on(q, lambda kind, message: seen.append((kind, message)))
    victim = node_of(cluster, channel)
    pid = victim.proc.pid  # type: ignore[union-attr]
    try:
        os.kill(pid, getattr(signal, how))
        new = wait_for(lambda: promoted(cluster, victim, channel), timeout=30, what="a master")
        wait_for(lambda: shard_subscribers(new, channel) == 1, timeout=30, what="subscribed")
        w.enqueue(q, "after the failover")
        wait_for(lambda: ("work", "1") in seen, what="the event on the promoted master")
    finally:
        if how == "SIGSTOP":
            os.kill(pid, signal.SIGCONT)  # it rejoins as a replica of the promoted one
        else:
            victim.start()
        cluster.wait_ready()


def promoted(cluster: RedisCluster, old: Any, channel: str) -> Any:
    """The channel's master once it is not ``old`` (views differ while the cluster elects:
    the node found is the one used afterwards), else None."""
    try:
        found = node_of(cluster, channel)
    except Exception:  # the cluster is still electing
        return None
    return found if found is not old else None


def test_an_asyncio_cluster_client_of_your_own_needs_no_subscriber(
    cluster: RedisCluster, prefix: str
) -> None:
    loop = Loop()
    seen: list[tuple[str, str]] = []
    try:

        async def main() -> str:
            rc = aredis.RedisCluster(host="127.0.0.1", port=cluster.masters()[0].port)
            async with AsyncWorqr(redis=rc, prefix=prefix, **FAST) as w:
                await w.on("own", lambda kind, message: seen.append((kind, message)))
                await w.enqueue("own", "t")
                await until(lambda: ("work", "1") in seen)
                await w.start_worker()
                await w.start_work("own")
                taken = await w.dequeue("own")
                assert taken is not None
                task = taken.task
            await rc.aclose()
            return task

        assert loop.run(main(), timeout=30) == "t"
    finally:
        loop.stop()


async def until(predicate: Any, timeout: float = 10) -> None:
    """Wait (bounded) on the event loop until ``predicate()`` holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def test_subscriber_is_ignored_with_a_cluster_client_and_says_so(
    cluster: RedisCluster, prefix: str
) -> None:
    rc = cluster.client()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        w = Worqr(redis=rc, subscriber=rc, prefix=prefix)
    assert any(issubclass(c.category, DeprecationWarning) for c in caught)
    assert "subscriber=" in str(caught[0].message)
    w.close()
    rc.close()


def test_commuting_calls_over_every_master_keep_their_places(
    cluster: RedisCluster, prefix: str
) -> None:
    """One call per master and a NOSCRIPT on one of them (its script cache flushed): every
    reply comes back in its call's place, the refused call run again after the others."""
    queues = spread(cluster, prefix)
    keys = Keys(prefix)
    rc = cluster.client()
    ex = sync_io.ClusterExecutor(rc)
    ex.load()
    node_of(cluster, keys.queue(queues[1]).tasks).client().script_flush()
    calls = Commuting(
        [
            script(
                scripts.ENQUEUE,
                [k.tasks, k.idle, k.workers],
                [k.events, k.wakes, q, *[f"{q}-{i}" for i in range(n + 1)]],
            )
            for n, (q, k) in enumerate((q, keys.queue(q)) for q in queues)
        ]
    )
    calls.append(command("SADD", keys.queues, *queues))
    assert ex.pipeline(calls) == [1, 2, 3, 3]
    assert [rc.llen(keys.queue(q).tasks) for q in queues] == [1, 2, 3]
    rc.close()


def test_commuting_calls_over_every_master_asyncio(cluster: RedisCluster, prefix: str) -> None:
    """The asyncio executor: each master's share at the same time, replies in place, a
    NOSCRIPT'd call run again."""
    queues = spread(cluster, prefix)
    keys = Keys(prefix)
    node_of(cluster, keys.queue(queues[2]).tasks).client().script_flush()
    calls = Commuting(
        [command("SADD", keys.queues, *queues)]
        + [
            script(scripts.ENQUEUE, [k.tasks, k.idle, k.workers], [k.events, k.wakes, q, "x"])
            for q, k in ((q, keys.queue(q)) for q in queues)
        ]
    )

    async def main() -> list[Any]:
        rc = aredis.RedisCluster(host="127.0.0.1", port=cluster.masters()[0].port)
        try:
            return await async_io.ClusterExecutor(rc).pipeline(calls)
        finally:
            await rc.aclose()

    loop = Loop()
    try:
        assert loop.run(main()) == [3, 1, 1, 1]
    finally:
        loop.stop()


def test_a_channel_left_and_asked_for_again_is_not_taken_for_a_move(
    cluster: RedisCluster, prefix: str
) -> None:
    """Our own SUNSUBSCRIBE's confirmation, arriving after the same channel was subscribed
    again, is ours (counted), not the server moving the slot away: no re-placement."""
    rc = cluster.client()
    ps = sync_io.ShardedPubSub(rc)
    channel = Keys(prefix).queue("again").events
    try:
        ps.subscribe(channel)
        ps.unsubscribe(channel)
        ps.subscribe(channel)
        kinds = []
        deadline = time.monotonic() + 10
        while len(kinds) < 3 and time.monotonic() < deadline:
            message = ps.next_message(0.5)
            if message is not None:
                kinds.append(message["type"])
        assert sorted(kinds) == ["subscribe", "subscribe", "unsubscribe"]
        assert not ps.reconnected
        assert numsub_on(cluster, channel) == 1
    finally:
        ps.close()
        rc.close()


def numsub_on(cluster: RedisCluster, channel: str) -> int:
    return shard_subscribers(node_of(cluster, channel), channel)


def test_killed_subscriber_connections_never_exhaust_a_small_pool(
    cluster: RedisCluster, prefix: str
) -> None:
    """A cluster client of yours with ``max_connections=4``: its shard connections are the
    listener's own, so six killed subscriptions are six re-subscriptions, not a full pool."""
    rc = cluster.client(max_connections=4)
    channel = Keys(prefix).queue("small").events
    seen: list[tuple[str, str]] = []
    w = Worqr(redis=rc, prefix=prefix, poll_interval=60)
    try:
        w.on("small", lambda kind, message: seen.append((kind, message)))
        master = node_of(cluster, channel)
        for i in range(6):
            wait_for(lambda: shard_subscribers(master, channel) == 1, what=f"subscribed {i}")
            master.client().execute_command("CLIENT", "KILL", "TYPE", "pubsub")
            wait_for(lambda: shard_subscribers(master, channel) == 1, what=f"again {i}")
        w.enqueue("small", "t")
        wait_for(lambda: ("work", "1") in seen, what="the event after six kills")
    finally:
        w.close()
        rc.close()


def test_a_subscribe_to_a_silent_master_s_slot_lands_on_its_replica(
    cluster: RedisCluster, prefix: str
) -> None:
    """A master goes silent (SIGSTOP) after the listener has a connection to it; a new
    ``on()`` for a queue in its slots sends SSUBSCRIBE down that connection, which is taken
    for lost once unanswered for a health-check interval (5 s), and re-placed on the
    promoted replica: ``on()`` returns within its wait (``retry_timeout``, 10 s by default,
    and on a cluster 10 s more), with the default settings."""
    keys = Keys(prefix)
    first, second = (
        "silent-a",
        next(
            f"silent-{i}"
            for i in range(500)
            if node_of(cluster, keys.queue(f"silent-{i}").events)
            is node_of(cluster, keys.queue("silent-a").events)
            and f"silent-{i}" != "silent-a"
        ),
    )
    w = Worqr(cluster.url, prefix=prefix)  # the default retry_timeout: on() waits 20 s
    victim = node_of(cluster, keys.queue(first).events)
    pid = victim.proc.pid  # type: ignore[union-attr]
    seen: list[tuple[str, str]] = []
    try:
        w.on(first, lambda kind, message: None)
        os.kill(pid, signal.SIGSTOP)
        w.on(second, lambda kind, message: seen.append((kind, message)))  # raises if > 20 s
        w.enqueue(second, "t")
        wait_for(lambda: ("work", "1") in seen, timeout=30, what="the event on the replica")
    finally:
        os.kill(pid, signal.SIGCONT)
        w.close()
        cluster.wait_ready()


def test_the_listener_outlives_a_whole_cluster_outage(
    make: Any, cluster: RedisCluster, prefix: str
) -> None:
    """Every node down for a while, then back: the listener keeps going (it sees redis-py's
    "cannot be connected" as the connection error it is), so the next event arrives and a
    new subscription works."""
    w = make(url=cluster.url, retry_timeout=30, **SLOW_POLL)
    seen: list[tuple[str, str, str]] = []
    errors: list[BaseException] = []
    w.events.on("error", errors.append)
    w.on("before", lambda kind, message: seen.append(("before", kind, message)))
    for node in cluster.nodes:
        node.kill()
    try:
        # the lost connection, then at least two tries to subscribe again, all reported
        wait_for(lambda: len(errors) >= 3, timeout=60, what="the listener trying again")
        assert listener_erred(w)
    finally:
        for node in cluster.nodes:
            node.start()
        cluster.wait_ready()
    w.on("after", lambda kind, message: seen.append(("after", kind, message)))
    w.enqueue("before", "t")
    w.enqueue("after", "u")
    wait_for(lambda: {("before", "work", "1"), ("after", "work", "1")} <= set(seen), timeout=30)


def listener_erred(w: Any) -> bool:
    inner = getattr(w, "inner", w)
    pubsub = inner._pubsub
    return pubsub is not None and bool(getattr(pubsub, "_stale", False))
