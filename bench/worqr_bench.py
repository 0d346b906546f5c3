"""worqr_py's in-process figures through its public API: enqueue (one by one and in lists
of 50, paired with ``ceiling.push``), latency, memory and idle supervision cost. Processing
rates are not here: worqr_py's worker runs as a subprocess of peer_driver.py like the peers.

Counters (commands, round trips, Redis CPU per task) come from ``redisinfo``.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
import uuid
from typing import Any

import redis
from worqr_py import AsyncWorqr, Process, Worqr

import redisinfo  # type: ignore[import-not-found]


class Counter:
    """Server-side counters around a window."""

    def __init__(self, url: str) -> None:
        self.probe = redisinfo.raw_connection(url)
        self.own = redisinfo.calibrate(self.probe)

    def start(self) -> Any:
        return redisinfo.snapshot(self.probe), time.process_time()

    def stop(self, start: Any, tasks: int) -> dict[str, Any]:
        cpu = time.process_time() - start[1]
        d = redisinfo.delta(start[0], redisinfo.snapshot(self.probe), self.own)
        return {
            "seconds": round(d.seconds, 4),
            "worker_cpu_us_per_task": round(cpu * 1e6 / tasks, 1),
            **d.per_task(tasks),
        }


def _client(url: str, **kw: Any) -> Worqr:
    return Worqr(url, prefix=f"bench-{uuid.uuid4().hex[:8]}", **kw)


def enqueue(url: str, n: int, batch: int = 0) -> dict[str, Any]:
    """n tasks one by one (batch=0) or in lists of ``batch``."""
    c = Counter(url)
    with _client(url) as w:
        w.enqueue("warm", "up")
        tasks = [f"task-{i:07d}" for i in range(n)]
        t0 = time.perf_counter()
        s = c.start()
        if batch:
            for i in range(0, n, batch):
                w.enqueue("q", tasks[i : i + batch])
        else:
            for t in tasks:
                w.enqueue("q", t)
        secs = time.perf_counter() - t0
        out = c.stop(s, n)
        w.delete_queue("q")
    c.probe.close()
    return {**out, "n": n, "batch": batch or 1, "per_s": round(n / secs, 1)}


def latency(url: str, samples: int = 300) -> dict[str, Any]:
    """Enqueue -> handler start, one task at a time into an idle worker (notified by pub/sub)."""
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    w = Worqr(url, prefix=prefix)
    producer = Worqr(url, prefix=prefix)
    got = threading.Event()
    seen: list[float] = []

    def handler(p: Process) -> None:
        seen.append((time.perf_counter_ns() - int(p.task)) / 1e6)
        got.set()

    runner = threading.Thread(target=w.run, args=("q", handler))
    runner.start()
    while not w.alive:
        time.sleep(0.01)
    time.sleep(0.2)
    for _ in range(samples):
        got.clear()
        producer.enqueue("q", str(time.perf_counter_ns()))
        got.wait(5)
        time.sleep(0.002)  # idle again, as a worker waiting for work is
    w.shutdown()
    runner.join(10)
    w.close()
    producer.close()
    q = statistics.quantiles(seen, n=100)
    return {"samples": len(seen), "p50_ms": round(q[49], 3), "p99_ms": round(q[98], 3)}


def memory(url: str, n: int = 100_000) -> dict[str, Any]:
    """used_memory per queued task (10-byte tasks), against the same tasks in a bare list."""
    r = redis.Redis.from_url(url)
    tasks = [f"t-{i:07d}" for i in range(n)]
    with _client(url) as w:
        before = int(r.info("memory")["used_memory"])
        for i in range(0, n, 10_000):
            w.enqueue("q", tasks[i : i + 10_000])
        ours = (int(r.info("memory")["used_memory"]) - before) / n
        w.delete_queue("q")
    before = int(r.info("memory")["used_memory"])
    for i in range(0, n, 10_000):
        r.rpush("bench:bare-list", *tasks[i : i + 10_000])
    bare = (int(r.info("memory")["used_memory"]) - before) / n
    r.delete("bench:bare-list")
    return {"bytes_per_task": round(ours, 1), "bare_list_bytes_per_task": round(bare, 1)}


def supervision(
    url: str, counts: tuple[int, ...] = (10, 100, 500), window: float = 3.0
) -> list[dict[str, Any]]:
    """Commands/s that heartbeats and supervision cost with N idle workers (real AsyncWorqr
    instances in one process, heartbeat 1 s)."""

    async def one(n: int) -> dict[str, Any]:
        c = Counter(url)
        prefix = f"bench-{uuid.uuid4().hex[:8]}"
        ws = [
            AsyncWorqr(url, prefix=prefix, heartbeat_interval=1.0, heartbeat_ttl=3.0)
            for _ in range(n)
        ]
        await asyncio.gather(*[w.start_worker() for w in ws])
        await asyncio.sleep(1.5)  # let their phases settle
        s = c.start()
        await asyncio.sleep(window)
        out = c.stop(s, 1)
        await asyncio.gather(*[w.close() for w in ws])
        per_s = out["cmds_per_task"] / out["seconds"]
        return {
            "workers": n,
            "commands_per_s": round(per_s, 1),
            "per_worker_per_s": round(per_s / n, 2),
            "mget_per_s": round(out["top_cmds_per_task"].get("mget", 0) / out["seconds"], 2),
        }

    return [asyncio.run(one(n)) for n in counts]
