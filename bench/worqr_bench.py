"""worqr_py's own figures, measured the way bench/peers.py measures the peers.

Counters (commands and round trips per task) come from ``redisinfo`` (see its docstring for
the method). Processing rates are (done - 1) / (last handler stamp - first), so start-up is
excluded, as for the peers. Everything runs against the URL given, on the keys of one prefix.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import redis
from worqr_py import AsyncWorqr, Process, Worqr

import redisinfo  # type: ignore[import-not-found]

WORKER_APP = """
import os, time
fd = os.open(os.environ["STAMPS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
def noop(p):
    os.write(fd, b"%d\\n" % time.perf_counter_ns())
"""


class Counter:
    """Server-side counters around a window."""

    def __init__(self, url: str) -> None:
        self.probe = redisinfo.raw_connection(url)
        self.own = redisinfo.calibrate(self.probe)

    def start(self) -> Any:
        return redisinfo.snapshot(self.probe)

    def stop(self, start: Any, tasks: int) -> dict[str, Any]:
        d = redisinfo.delta(start, redisinfo.snapshot(self.probe), self.own)
        return {"seconds": round(d.seconds, 4), **d.per_task(tasks)}


def _client(url: str, **kw: Any) -> Worqr:
    return Worqr(url, prefix=f"bench-{uuid.uuid4().hex[:8]}", **kw)


def enqueue(url: str, n: int, c: Counter, batch: int = 0) -> dict[str, Any]:
    """n tasks one by one (batch=0) or in lists of ``batch``."""
    with _client(url) as w:
        w.enqueue("warm", "up")
        tasks = [f"task-{i:07d}" for i in range(n)]
        s = c.start()
        if batch:
            for i in range(0, n, batch):
                w.enqueue("q", tasks[i : i + batch])
        else:
            for t in tasks:
                w.enqueue("q", t)
        out = c.stop(s, n)
        w.delete_queue("q")
    return {**out, "per_s": round(n / out["seconds"], 1)}


def process(url: str, n: int, c: Counter, prefetch: int = 1) -> dict[str, Any]:
    """One worker, one handler at a time (concurrency 1), ``prefetch`` tasks per call."""
    w = _client(url, heartbeat_interval=1.0, heartbeat_ttl=3.0)
    w.enqueue("q", [f"task-{i:07d}" for i in range(n)])
    stamps: list[int] = []

    def noop(p: Process) -> None:
        stamps.append(time.perf_counter_ns())
        if len(stamps) == n:
            w.shutdown()

    s = c.start()
    w.run("q", noop, prefetch=prefetch)
    out = c.stop(s, n)
    w.close()
    secs = (stamps[-1] - stamps[0]) / 1e9
    return {**out, "per_s": round((len(stamps) - 1) / secs, 1), "done": len(stamps)}


def process_workers(
    url: str, n: int, workers: int, c: Counter, prefetch: int = 1, cap: float = 60
) -> dict[str, Any]:
    """``workers`` worker processes (``worqr worker``), concurrency 1 each."""
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "bench_app.py").write_text(WORKER_APP)
        stamps = Path(tmp) / "stamps"
        env = {**os.environ, "STAMPS": str(stamps), "PYTHONPATH": tmp}
        cmd = [
            sys.executable,
            "-m",
            "worqr_py",
            "--url",
            url,
            "--prefix",
            prefix,
            "worker",
            "bench_app:noop",
            "-q",
            "q",
            "--grace",
            "5",
        ]
        with Worqr(url, prefix=prefix) as producer:
            procs = [
                subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL) for _ in range(workers)
            ]
            deadline = time.monotonic() + 30
            while len(producer.get_workers()) < workers and time.monotonic() < deadline:
                time.sleep(0.05)
            s = c.start()
            producer.enqueue("q", [f"task-{i:07d}" for i in range(n)])
            deadline = time.monotonic() + cap
            while time.monotonic() < deadline and _lines(stamps) < n:
                time.sleep(0.02)
            out = c.stop(s, n)
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(15)
            producer.delete_queue("q")
        times = [int(x) for x in stamps.read_text().split()]
    secs = (max(times) - min(times)) / 1e9
    return {**out, "per_s": round((len(times) - 1) / secs, 1), "done": len(times)}


def _lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def latency(url: str, samples: int = 300) -> dict[str, Any]:
    """Enqueue -> handler start, one task at a time into an idle worker (notified by pub/sub)."""
    w = _client(url)
    producer = Worqr(url, prefix=w._core.options.prefix)
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
