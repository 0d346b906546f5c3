"""worqr_py on a real Redis Cluster (3 masters + 3 replicas, tests/cluster.py): total
tasks/s and Redis CPU per task with the queues on one master against spread over three, and
the cost of a cluster-wide PUBLISH against a sharded SPUBLISH, and an enqueue's pipeline over
two masters sent call by call against as one batch per master.

    .venv/bin/python bench/cluster.py [--n 20000] [--rounds 2]

Each layout: 3 queues (all in slots of one master, or one per master), N tasks each,
pre-filled; then 3 worker processes, one per queue, each ``Worqr(url).run(queue, handler,
prefetch=10)`` until its N tasks are done. Tasks/s = 3N / wall time from the workers' start
(their start-up included, the same for both layouts); Redis CPU = the masters' ``INFO cpu``
delta over that window, per task. Pub/sub: M messages, each node holding one subscriber of
the channel (cluster-wide) or the shard's own (sharded); Redis CPU per message over all six
nodes. Prints markdown. No assertion depends on a timing.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from tests.cluster import RedisCluster  # noqa: E402
from worqr_py import Process, Worqr  # noqa: E402
from worqr_py.core.keys import Keys  # noqa: E402


def _work(url: str, prefix: str, queue: str, n: int) -> None:
    w = Worqr(url, prefix=prefix)
    seen = 0

    def handler(p: Process) -> None:
        nonlocal seen
        seen += 1
        if seen >= n:
            w.shutdown()

    w.run(queue, handler, prefetch=10)
    w.close()


def _cpu(nodes: list[Any]) -> float:
    total = 0.0
    for node in nodes:
        info = node.client().info("cpu")
        total += float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    return total


def _queues(c: RedisCluster, prefix: str, spread: bool) -> list[str]:
    rc = c.client()
    by_node: dict[str, list[str]] = {}
    i = 0
    while True:
        q = f"bq{i}"
        i += 1
        by_node.setdefault(rc.get_node_from_key(Keys(prefix).queue(q).tasks).name, []).append(q)
        if spread and len(by_node) == 3:
            rc.close()
            return [qs[0] for qs in by_node.values()]
        full = [qs for qs in by_node.values() if len(qs) == 3]
        if not spread and full:
            rc.close()
            return full[0]


def layout(c: RedisCluster, spread: bool, n: int, round_: int) -> dict[str, float]:
    prefix = f"bench{round_}{'s' if spread else 'o'}"
    queues = _queues(c, prefix, spread)
    with Worqr(c.url, prefix=prefix) as w:
        for q in queues:
            for s in range(0, n, 1000):
                w.enqueue(q, [str(i) for i in range(s, min(n, s + 1000))])
    masters = c.masters()
    cpu0, t0 = _cpu(masters), time.perf_counter()
    procs = [multiprocessing.Process(target=_work, args=(c.url, prefix, q, n)) for q in queues]
    for p in procs:
        p.start()
    for p in procs:
        p.join(600)
    wall, cpu = time.perf_counter() - t0, _cpu(masters) - cpu0
    return {"per_s": 3 * n / wall, "redis_us": cpu * 1e6 / (3 * n)}


def pubsub(c: RedisCluster, sharded: bool, m: int) -> float:
    """Redis CPU (all nodes) per message, with one subscriber on every node (cluster-wide)
    or one on the channel's shard (sharded)."""
    channel = "{bench}:ev"
    rc = c.client()
    node = rc.get_node_from_key(channel)
    plain = redis.Redis(host=node.host, port=node.port)
    subs: list[Any] = []
    if sharded:
        ps = plain.pubsub()
        ps.execute_command("SSUBSCRIBE", channel)
        subs.append(ps)
    else:
        for n in c.nodes:
            ps = n.client().pubsub()
            ps.subscribe(channel)
            subs.append(ps)
    time.sleep(0.2)  # the subscriptions settle (not a measured time)
    cpu0 = _cpu(c.nodes)
    command = "SPUBLISH" if sharded else "PUBLISH"
    pipe = plain.pipeline(transaction=False)
    for i in range(m):
        pipe.execute_command(command, channel, f"work:{i}")
        if i % 1000 == 999:
            pipe.execute()
    pipe.execute()
    time.sleep(0.5)  # let the cluster bus deliver (not a measured time)
    cpu = _cpu(c.nodes) - cpu0
    for ps in subs:
        ps.close()
    plain.close()
    rc.close()
    return cpu * 1e6 / m


def enqueue_latency(c: RedisCluster, k: int) -> dict[str, float]:
    """Median microseconds of one enqueue's pipeline (the queue's script and the registry's
    SADD, on two different masters), sent in order call by call (a plain list: what 0.6
    did) or as commuting calls (one batch per master, all sent before any reply is read),
    alternating, k of each; the queue is on a master other than the registry's."""
    prefix = "benchlat"
    rc = c.client()
    registry = rc.get_node_from_key(Keys(prefix).queues).name
    queue = next(
        f"q{i}"
        for i in range(200)
        if rc.get_node_from_key(Keys(prefix).queue(f"q{i}").tasks).name != registry
    )
    rc.close()
    times: dict[str, list[float]] = {"in order": [], "commuting": []}
    with Worqr(c.url, prefix=prefix) as w:
        w.init()
        step = next(w._core.enqueue(queue, "t"))
        assert isinstance(step, list) and len(step) == 2
        for i in range(2 * k):
            name = "commuting" if i % 2 else "in order"
            calls = step if name == "commuting" else list(step)
            t0 = time.perf_counter()
            w._executor.pipeline(calls)
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) * 1e6 for name, ts in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=20_000, help="tasks per queue")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--enqueues", type=int, default=5_000)
    args = ap.parse_args()
    c = RedisCluster()
    try:
        runs: dict[str, list[dict[str, float]]] = {"one master": [], "three masters": []}
        for r in range(args.rounds):
            for name, spread in (("one master", False), ("three masters", True)):
                runs[name].append(layout(c, spread, args.n, r))
                print(f"[bench] {name}: {runs[name][-1]}", file=sys.stderr, flush=True)
        pub = {s: pubsub(c, s, args.messages) for s in (False, True)}
        latency = enqueue_latency(c, args.enqueues)
    finally:
        c.stop()
    print(f"\n# worqr_py on a Redis Cluster ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})")
    print(f"\n3 queues x {args.n} tasks, 3 worker processes (prefetch 10), {args.rounds} rounds")
    print("\n| queues on | tasks/s (median) | runs | Redis CPU us/task (masters) |")
    print("| --- | --- | --- | --- |")
    for name, rs in runs.items():
        rates = [x["per_s"] for x in rs]
        cpu = statistics.median(x["redis_us"] for x in rs)
        shown = ", ".join(f"{x:,.0f}" for x in rates)
        print(f"| {name} | {statistics.median(rates):,.0f} | {shown} | {cpu:.1f} |")
    print(f"\nPub/sub, {args.messages} messages, Redis CPU per message over all 6 nodes:")
    print(f"- PUBLISH (cluster-wide, a subscriber on every node): {pub[False]:.1f} us")
    print(f"- SPUBLISH (sharded, one subscriber): {pub[True]:.1f} us")
    print(f"- ratio: {pub[False] / pub[True]:.1f}x")
    what = "queue script + registry SADD on another master"
    print(f"\nOne enqueue's pipeline ({what}), median of {args.enqueues}:")
    print(f"- in order, call by call (0.6): {latency['in order']:.0f} us")
    print(f"- commuting, one batch per master (0.7): {latency['commuting']:.0f} us")
    print(f"- ratio: {latency['in order'] / latency['commuting']:.2f}x")


if __name__ == "__main__":
    main()
