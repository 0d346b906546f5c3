"""Many workers under ``run()``: do they hold their heartbeats?

    python bench/many_workers.py [--processes 4] [--workers 250] [--seconds 300]
                                 [--rate 100] [--driver sync|async]

Starts a throwaway redis-server, then ``--processes`` processes each running ``--workers``
clients, every one under ``run()`` on the same queue (sync: one thread per ``run()``;
asyncio: one event loop per process), while a producer enqueues ``--rate`` tasks a second.
Reports, per process and in total, how many times a worker failed while running (``failed``
events other than shutdown's own ``fail_worker``: each is a spurious re-registration, since
nothing here kills a worker), apart from heartbeats that lapsed during the mass shutdown at
the end (no re-registration follows those), the registered workers seen every second
(min/max), and the tasks done. Nothing here is a test: no assertion depends on a timing.
The issue's target: zero re-registrations in 5 minutes with 1,000 workers in 4 processes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis
from worqr_py import AsyncWorqr, Process, Worqr
from worqr_py.core.model import Reason
from worqr_py.tools.embedded import EmbeddedRedis

PREFIX = "many"


def sync_workers(url: str, n: int, seconds: float, out: Any) -> None:
    failed, done = [0], [0]
    reasons: dict[str, int] = {}
    when: list[float] = []  # seconds after the start, of each re-registration
    t0 = time.monotonic()
    lock = threading.Lock()

    def handler(p: Process) -> None:
        with lock:
            done[0] += 1

    def on_failed(worker_id: str, reason: str) -> None:
        if reason != Reason.CALLED:  # shutdown's own fail_worker is no re-registration
            with lock:
                failed[0] += 1
                reasons[str(reason)] = reasons.get(str(reason), 0) + 1
                when.append(round(time.monotonic() - t0, 1))

    clients = [Worqr(url, prefix=PREFIX) for _ in range(n)]
    threads = []
    for w in clients:
        w.events.on("failed", on_failed)
        t = threading.Thread(target=w.run, args=("q", handler), daemon=True)
        t.start()
        threads.append(t)
    time.sleep(seconds)
    for w in clients:
        w.shutdown()
    for t in threads:
        t.join(30)
    for w in clients:
        w.close()
    running = [t for t in when if t < seconds]  # before shutdown() began
    out.put(
        {
            "failed": len(running),
            "lapsed_in_shutdown": len(when) - len(running),
            "done": done[0],
            "reasons": reasons,
            "when": running,
        }
    )


def async_workers(url: str, n: int, seconds: float, out: Any) -> None:
    async def main() -> dict[str, int]:
        failed, done = [0], [0]

        async def handler(p: Process) -> None:
            done[0] += 1

        clients = [AsyncWorqr(url, prefix=PREFIX) for _ in range(n)]

        def on_failed(worker_id: str, reason: str) -> None:
            if reason != Reason.CALLED:  # shutdown's own fail_worker is no re-registration
                failed[0] += 1

        for w in clients:
            w.events.on("failed", on_failed)
        runs = [asyncio.ensure_future(w.run("q", handler)) for w in clients]
        await asyncio.sleep(seconds)
        for w in clients:
            w.shutdown()
        await asyncio.wait(runs, timeout=30)
        for w in clients:
            await w.close()
        return {"failed": failed[0], "done": done[0]}

    out.put(asyncio.run(main()))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--processes", type=int, default=4)
    ap.add_argument("--workers", type=int, default=250, help="per process")
    ap.add_argument("--seconds", type=float, default=300)
    ap.add_argument("--rate", type=float, default=100, help="tasks enqueued per second")
    ap.add_argument("--driver", choices=["sync", "async"], default="sync")
    args = ap.parse_args()
    with EmbeddedRedis() as server:
        url = server.url
        r = redis.Redis.from_url(url)
        r.config_set("maxclients", 10000)
        out: Any = mp.Queue()
        target = sync_workers if args.driver == "sync" else async_workers
        procs = [
            mp.Process(target=target, args=(url, args.workers, args.seconds, out))
            for _ in range(args.processes)
        ]
        for p in procs:
            p.start()
        producer = Worqr(url, prefix=PREFIX)
        seen: list[int] = []
        started = time.monotonic()
        sent = 0
        while time.monotonic() - started < args.seconds:
            due = int((time.monotonic() - started) * args.rate)
            while sent < due:
                producer.enqueue("q", f"t{sent}")
                sent += 1
            if int(time.monotonic() - started) >= len(seen):
                seen.append(int(r.scard(f"{{{PREFIX}}}:workers")))
            time.sleep(0.01)
        results = [out.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(60)
        producer.close()
        total = args.processes * args.workers
        steady = seen[len(seen) // 5 :]  # after the first fifth (everyone registered)
        report = {
            "driver": args.driver,
            "workers": total,
            "processes": args.processes,
            "seconds": args.seconds,
            "re_registrations": sum(x["failed"] for x in results),
            "per_process": [x["failed"] for x in results],
            "lapsed_in_shutdown": sum(x.get("lapsed_in_shutdown", 0) for x in results),
            "reasons": [x.get("reasons", {}) for x in results],
            "when_s": sorted(t for x in results for t in x.get("when", [])),
            "registered_min_max_after_warmup": [min(steady or [0]), max(steady or [0])],
            "enqueued": sent,
            "done": sum(x["done"] for x in results),
        }
        print(json.dumps(report))


if __name__ == "__main__":
    main()
