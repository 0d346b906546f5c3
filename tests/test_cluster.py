"""worqr_py on a real Redis Cluster (3 masters + 3 replicas, tests/cluster.py), both drivers:
queues spread over every master, scripts reloaded after NOSCRIPT, jobs, a reclaim, and a
master SIGKILLed while a worker runs."""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from worqr_py import Process, Worqr
from worqr_py.core.keys import Keys
from worqr_py.core.model import Reason
from worqr_py.drivers.connect import clients
from worqr_py.embedded import free_port

from .cluster import RedisCluster, move_slot
from .conftest import FAST
from .job_worker import FUNCTIONS
from .support import wait_for

# Workers here share the 2 CPUs with six redis-servers: a 0.4 s heartbeat TTL (0.25 s of trust
# after a beat) lapsed one mid-test on a loaded CI run; none of these tests waits for a lapse.
CLUSTER_FAST = {**FAST, "heartbeat_ttl": 1.0}


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisCluster]:
    c = RedisCluster()
    yield c
    c.stop()


def spread(c: RedisCluster, prefix: str, n: int = 3) -> list[str]:
    """Queue names whose keys live on ``n`` different masters (one each)."""
    rc = c.client()
    by_node: dict[str, str] = {}
    for i in range(200):
        q = f"q{i}"
        node = rc.get_node_from_key(Keys(prefix).queue(q).tasks)
        by_node.setdefault(node.name, q)
        if len(by_node) == n:
            rc.close()
            return sorted(by_node.values())
    raise AssertionError("no queues spread over the masters")


def test_queues_on_every_master(make: Any, cluster: RedisCluster, prefix: str) -> None:
    w = make(url=cluster.url, **CLUSTER_FAST)
    w.init()
    queues = spread(cluster, prefix)
    for q in queues:
        assert w.enqueue(q, [f"{q}-1", f"{q}-2", f"{q}-3"]) == 3
    assert w.get_queues() == queues
    w.start_worker()
    for q in queues:
        w.start_work(q)
        first = w.dequeue(q)
        assert first.task == f"{q}-1" and w.finish_process(first.id)
        second = w.dequeue(q)
        assert w.stop_process(second.id)  # back to the front
        assert w.get_tasks(q) == [f"{q}-2", f"{q}-3"]
        assert [p.task for p in w.dequeue_many(q, 5)] == [f"{q}-2", f"{q}-3"]
    assert w.fail_worker() == 6  # every held task back to the front of its queue
    assert [w.count_queue(q) for q in queues] == [2, 2, 2]


def test_a_flushed_script_cache_is_reloaded(make: Any, cluster: RedisCluster) -> None:
    w = make(url=cluster.url, **CLUSTER_FAST)
    w.enqueue("a", "t")
    for node in cluster.masters():
        node.client().script_flush()
    assert w.enqueue("a", "u") == 2  # NOSCRIPT on the queue's master: loaded, run again


def test_jobs_and_a_reclaim_across_masters(make: Any, cluster: RedisCluster, prefix: str) -> None:
    queues = spread(cluster, prefix)
    producer, dead, peer = make(url=cluster.url), make(url=cluster.url, **CLUSTER_FAST), None
    dead.start_worker()
    for q in queues:
        dead.start_work(q)
        producer.enqueue(q, f"held-{q}")
        assert dead.dequeue(q) is not None
    peer = make(url=cluster.url, **CLUSTER_FAST)
    peer.start_worker()
    assert peer.fail_worker(dead.worker_id) == 3  # as a reclaim does
    assert [producer.get_tasks(q) for q in queues] == [[f"held-{q}"] for q in queues]
    runner = threading.Thread(target=peer.run_jobs, args=(FUNCTIONS, queues), daemon=True)
    runner.start()
    try:
        for q in queues:
            producer.purge_dead(q)
            producer.delete_queue(q)
        jobs = [producer.submit(q, "add", i, 1) for i, q in enumerate(queues)]
        assert [producer.wait_for_result(j.id, 30) for j in jobs] == [1, 2, 3]
    finally:
        peer.shutdown()
        runner.join(15)
    assert not runner.is_alive()


def test_cluster_urls_are_checked() -> None:
    for url in ("redis+cluster://h:1/0", "redis+cluster://h:x", "redis+cluster://:1"):
        with pytest.raises(ValueError, match="url"):
            clients(url, None, None, "sync")


@pytest.mark.parametrize("shard", ["a queue's", "the registry's"])
def test_a_master_sigkilled_mid_run_loses_nothing_acknowledged(
    cluster: RedisCluster, prefix: str, shard: str
) -> None:
    """A worker runs tasks spread over all three masters; the master of one queue's shard, or
    of the registry's (its heartbeats), is SIGKILLed. Its replica is promoted; the worker's
    calls retry meanwhile, and with a heartbeat TTL above the failover time (the README's
    rule) its heartbeat never lapses: every task is done at least once (an ack lost with the
    master's last writes may run one again: asynchronous replication)."""
    queues = spread(cluster, prefix)
    rc = cluster.client()
    registry = rc.get_node_from_key(Keys(prefix).workers).name
    queue_nodes = {q: rc.get_node_from_key(Keys(prefix).queue(q).tasks).name for q in queues}
    rc.close()
    if shard == "a queue's":
        target = next(queue_nodes[q] for q in queues if queue_nodes[q] != registry)
    else:
        target = registry
    victim = next(n for n in cluster.nodes if f"127.0.0.1:{n.port}" == target)
    failed: list[Any] = []
    done: Counter[str] = Counter()
    lock = threading.Lock()

    def handler(p: Process) -> None:
        with lock:
            done[p.task] += 1

    options = {"prefix": prefix, "retry_timeout": 30, "poll_interval": 0.5}
    producer = Worqr(cluster.url, **options)
    worker = Worqr(cluster.url, heartbeat_interval=0.5, heartbeat_ttl=15, **options)
    worker.events.on("failed", lambda *args: failed.append(args))
    runner = threading.Thread(target=worker.run, args=(queues, handler), daemon=True)
    try:
        tasks = {q: [f"{q}-{i}" for i in range(200)] for q in queues}
        for q in queues:
            producer.enqueue(q, tasks[q][:100])
        runner.start()
        wait_for(lambda: sum(done.values()) >= 150, timeout=30, what="work under way")
        os.kill(victim.proc.pid, signal.SIGKILL)  # type: ignore[union-attr]
        for q in queues:
            producer.enqueue(q, tasks[q][100:])  # retried until the replica is promoted
        wanted = {t for ts in tasks.values() for t in ts}
        wait_for(lambda: wanted <= set(done), timeout=90, what="every task done")
    finally:
        worker.shutdown()
        runner.join(30)
        producer.close()
        worker.close()
        victim.start()  # back as a replica of the promoted one
        cluster.wait_ready()
    assert not runner.is_alive()
    # its heartbeats rode through; a write lost with the old master (its join of the
    # queue, say) may fail it as removed, and run() registers it again: at least once holds
    assert not [r for _, r in failed if r in (Reason.LAPSED, Reason.EXPIRED)], failed


def test_a_redis_cluster_of_your_own(cluster: RedisCluster, prefix: str) -> None:
    """``Worqr(redis=RedisCluster(...))``: the listener subscribes each queue's channels on
    its slot's master through that client's slot map, so events and wake-ups arrive."""
    rc = cluster.client()
    seen: list[tuple[str, str]] = []
    with Worqr(redis=rc, prefix=prefix, **CLUSTER_FAST) as w:
        w.on("mine", lambda kind, message: seen.append((kind, message)))
        w.enqueue("mine", ["a", "b"])
        wait_for(lambda: ("work", "2") in seen, what="the work event")
        w.start_worker()
        w.start_work("mine")
        assert w.dequeue("mine").task == "a"
    rc.close()


def test_a_dead_startup_node_is_skipped(make: Any, cluster: RedisCluster) -> None:
    """The first startup node is down: the data client asks the next, and the listener's
    sharded subscriptions go where its slot map says (an event arrives)."""
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there
    live = ",".join(f"127.0.0.1:{n.port}" for n in cluster.nodes if n.pings())
    w = make(url=f"redis+cluster://{dead},{live}", **CLUSTER_FAST)
    seen: list[tuple[str, str]] = []
    w.on("skip", lambda kind, message: seen.append((kind, message)))
    w.enqueue("skip", "t")
    wait_for(lambda: ("work", "1") in seen, what="the work event")


def _running(cluster: RedisCluster, prefix: str, queues: list[str]) -> Any:
    """A worker running ``queues`` (its handled tasks counted), its errors and failures."""
    done: Counter[str] = Counter()
    lock = threading.Lock()

    def handler(p: Process) -> None:
        with lock:
            done[p.task] += 1

    worker = Worqr(
        cluster.url,
        prefix=prefix,
        retry_timeout=30,
        poll_interval=0.5,
        heartbeat_interval=0.5,
        heartbeat_ttl=15,
    )
    failed: list[Any] = []
    worker.events.on("failed", lambda *args: failed.append(args))
    runner = threading.Thread(target=worker.run, args=(queues, handler), daemon=True)
    runner.start()
    return worker, runner, done, failed


def node_of(cluster: RedisCluster, key: str) -> Any:
    rc = cluster.client()
    name = rc.get_node_from_key(key).name
    rc.close()
    return next(n for n in cluster.nodes if f"127.0.0.1:{n.port}" == name)


def test_a_manual_failover_is_seen_by_no_caller(cluster: RedisCluster, prefix: str) -> None:
    """``CLUSTER FAILOVER`` on the replica of a queue's master while a producer enqueues and
    a worker runs: no call raises, every task is done, no heartbeat lapses."""
    queues = spread(cluster, prefix)
    master = node_of(cluster, Keys(prefix).queue(queues[0]).tasks)
    replica = next(
        n
        for n in cluster.nodes
        if n.pings() and cluster.info(n, "replication").get("master_port") == master.port
    )
    producer = Worqr(cluster.url, prefix=prefix, retry_timeout=30)
    worker, runner, done, failed = _running(cluster, prefix, queues)
    try:
        tasks = [f"{q}-{i}" for i in range(100) for q in queues]
        producer.enqueue(queues[0], tasks[:50])
        replica.client().execute_command("CLUSTER", "FAILOVER")
        for t in tasks[50:]:
            producer.enqueue(t.rpartition("-")[0], t)  # one by one, across the switch
        wait_for(
            lambda: cluster.info(replica, "replication")["role"] == "master",
            timeout=30,
            what="the replica promoted",
        )
        wait_for(lambda: set(tasks) <= set(done), timeout=60, what="every task done")
    finally:
        worker.shutdown()
        runner.join(30)
        producer.close()
        worker.close()
        cluster.wait_ready()
    assert not runner.is_alive()
    assert not [r for _, r in failed if r in (Reason.LAPSED, Reason.EXPIRED)], failed


def test_resharding_a_queue_s_slot_while_a_worker_runs(cluster: RedisCluster, prefix: str) -> None:
    """The slot of a queue moves, keys and all, to another master (as ``redis-cli --cluster
    reshard`` moves it) while tasks are queued and a worker runs: every task is done; the
    queue lives on the new master afterwards."""
    queues = spread(cluster, prefix)
    k = Keys(prefix).queue(queues[0])
    source = node_of(cluster, k.tasks)
    target = next(n for n in cluster.masters() if n is not source)
    producer = Worqr(cluster.url, prefix=prefix, retry_timeout=30)
    worker, runner, done, failed = _running(cluster, prefix, queues)
    try:
        tasks = [f"t{i}" for i in range(300)]
        producer.enqueue(queues[0], tasks[:200])
        slot = cluster.client().keyslot(k.tasks)
        assert move_slot(cluster, slot, source, target) >= 1
        producer.enqueue(queues[0], tasks[200:])
        wait_for(lambda: set(tasks) <= set(done), timeout=60, what="every task done")
        assert node_of(cluster, k.tasks) is target
    finally:
        worker.shutdown()
        runner.join(30)
        producer.close()
        worker.close()
    assert not runner.is_alive()
    assert not [r for _, r in failed if r in (Reason.LAPSED, Reason.EXPIRED)], failed


def test_calls_on_a_slot_being_migrated_are_retried_not_raised(
    cluster: RedisCluster, prefix: str
) -> None:
    """While a queue's slot migrates key by key (its keys split between two nodes, so a
    script on them is answered TRYAGAIN until the last one moved), a producer's enqueues
    wait and succeed: redis-py's redirections running out (ClusterError 'TTL exhausted') is
    retried for retry_timeout, as an outage is (a review of 0.7.3: they raised at once)."""
    queues = spread(cluster, prefix)
    k = Keys(prefix).queue(queues[0])
    source = node_of(cluster, k.tasks)
    target = next(n for n in cluster.masters() if n is not source)
    tag = k.tasks[k.tasks.index("{") : k.tasks.index("}") + 1]
    filler = source.client()
    filler.mset({f"filler:{tag}:{i}": "x" for i in range(400)})  # a migration of 40 batches
    producer = Worqr(cluster.url, prefix=prefix, retry_timeout=30)
    worker, runner, done, _ = _running(cluster, prefix, queues)
    sent: list[str] = []
    raised: list[BaseException] = []
    stop = threading.Event()

    def produce() -> None:
        i = 0
        while not stop.is_set():
            try:
                producer.enqueue(queues[0], f"m{i}")
                sent.append(f"m{i}")
            except Exception as exc:
                raised.append(exc)
            i += 1

    thread = threading.Thread(target=produce)
    thread.start()
    try:
        wait_for(lambda: len(sent) >= 20, what="the producer under way")
        slot = cluster.client().keyslot(k.tasks)
        assert move_slot(cluster, slot, source, target, pause=0.01) >= 400
        count = len(sent)
        wait_for(lambda: len(sent) >= count + 20, what="enqueues after the migration")
        stop.set()
        thread.join(60)
        assert raised == []
        wait_for(lambda: set(sent) <= set(done), timeout=60, what="every task done")
    finally:
        stop.set()
        thread.join(60)
        worker.shutdown()
        runner.join(30)
        producer.close()
        worker.close()
    assert not runner.is_alive() and not thread.is_alive()
