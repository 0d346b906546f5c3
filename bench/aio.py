"""The asyncio driver against the sync one, on one throwaway redis-server (issue 13).

    python bench/aio.py                  # all four measurements
    python bench/aio.py --only rate      # or latency, idle, io

(a) ``rate``: one worker (``run``, concurrency 1, prefetch 1) drains a queue filled
beforehand, in a process of its own; rounds alternate sync and asyncio (A-B-A-B-A), so a
busy machine slows both alike. Per round: tasks/s and worker CPU (``time.process_time``,
every thread of the worker process) per task, both between the first and the last handler
call. The ratio compares each asyncio round with the mean of the sync rounds around it.

(b) ``latency``: an asyncio worker takes tasks that another process enqueues one by one at
a steady rate (1,500/s by default); each task carries its ``time.monotonic_ns()`` (one clock
for every process on Linux), and the handler records enqueue-to-handler latency. The first
second is left out (start-up). ``--plain`` gives the worker a plain handler (run in a thread)
instead of a coroutine function.

(d) ``io``: the two I/O models bare, no worqr_py: one LPOP round trip at a time on a raw
socket (``sendall``/``recv``) and on asyncio streams (``write``/``await read``), A-B-A. Their
ratio is the most any asyncio driver can reach against a thread-blocking one per round trip
on this machine (the event loop runs two iterations and two ``epoll_wait`` per reply).

(c) ``idle``: an idle asyncio worker (``run`` on an empty queue) for a few seconds; its event
loop's selector is wrapped to count the loop's iterations (each ``select()``/``epoll_wait``),
the sleeps among them (a select that may block) and the sleeps a timer ended (no I/O). The
heartbeat (1/s by default, with its supervision turn: a burst of round trips) and the safety
polls (every ``poll_interval``) are the expected wake-ups.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import redis
from worqr_py import AsyncWorqr, Process, Worqr
from worqr_py.embedded import EmbeddedRedis

HERE = Path(__file__).resolve()


# ---- worker processes ----------------------------------------------------------------------
def rate_worker(url: str, prefix: str, flavour: str, n: int) -> dict[str, Any]:
    """Drain ``n`` queued tasks with one worker; times and CPU from the first handler call
    to the last."""
    marks: list[tuple[float, float]] = []
    count = 0

    def seen(stop: Any) -> None:
        nonlocal count
        count += 1
        if count in (1, n):
            marks.append((time.perf_counter(), time.process_time()))
        if count == n:
            stop()

    if flavour == "sync":
        with Worqr(url, prefix=prefix) as w:
            w.run("q", lambda p: seen(w.shutdown))
    else:

        async def main() -> None:
            async with AsyncWorqr(url, prefix=prefix) as w:

                async def handler(p: Process) -> None:
                    seen(w.shutdown)

                await w.run("q", handler)

        asyncio.run(main())
    (t0, c0), (t1, c1) = marks
    return {"rate": (n - 1) / (t1 - t0), "cpu_us": 1e6 * (c1 - c0) / (n - 1)}


def latency_worker(url: str, prefix: str, seconds: float, plain: bool) -> dict[str, Any]:
    """An asyncio worker that records enqueue-to-handler latency until the ``end`` task
    (``plain``: its handler is a plain function, run in a thread)."""
    lat: list[int] = []

    async def main() -> None:
        async with AsyncWorqr(url, prefix=prefix) as w:
            loop = asyncio.get_running_loop()

            def seen(p: Process) -> None:
                if p.task == "end":
                    loop.call_soon_threadsafe(w.shutdown)
                else:
                    lat.append(time.monotonic_ns() - int(p.task))

            async def handler(p: Process) -> None:
                seen(p)

            print("ready", flush=True)
            await w.run("q", seen if plain else handler)

    asyncio.run(main())
    skip = len(lat) // int(seconds)  # the first second
    ms = sorted(x / 1e6 for x in lat[skip:])
    return {
        "tasks": len(ms),
        "p50_ms": ms[len(ms) // 2],
        "p99_ms": ms[int(len(ms) * 0.99)],
        "max_ms": ms[-1],
    }


def enqueuer(url: str, prefix: str, rate: float, seconds: float) -> None:
    """Enqueue one task at a time on a fixed schedule (late ones go at once, so the offered
    load stays ``rate``), then the ``end`` task."""
    with Worqr(url, prefix=prefix) as w:
        start = time.monotonic()
        for i in range(int(rate * seconds)):
            due = start + i / rate
            left = due - time.monotonic()
            if left > 0:
                time.sleep(left)
            w.enqueue("q", str(time.monotonic_ns()))
        w.enqueue("q", "end")


def idle_worker(url: str, prefix: str, seconds: float) -> dict[str, Any]:
    """Count the event loop's iterations while an asyncio worker idles for ``seconds``, and
    of those the sleeps (a ``select()`` that may block) and the sleeps a timer ended."""
    wakes = sleeps = timers = 0

    async def main() -> None:
        selector = asyncio.get_running_loop()._selector  # type: ignore[attr-defined]
        select = selector.select

        def counted(timeout: float | None = None) -> Any:
            nonlocal wakes, sleeps, timers
            wakes += 1
            events = select(timeout)
            if timeout is None or timeout > 0:
                sleeps += 1
                timers += not events
            return events

        async with AsyncWorqr(url, prefix=prefix) as w:
            runner = asyncio.ensure_future(w.run("q", lambda p: None))
            await asyncio.sleep(1.0)  # joined and subscribed
            selector.select = counted
            await asyncio.sleep(seconds)
            selector.select = select
            w.shutdown()
            await runner

    asyncio.run(main())
    return {
        "seconds": seconds,
        "loop_iterations_per_s": wakes / seconds,
        "sleeps_per_s": sleeps / seconds,
        "timer_wakeups_per_s": timers / seconds,
    }


def bare_io(port: int, n: int, rounds: int) -> dict[str, Any]:
    """(d): LPOP round trips, sync socket against asyncio streams, A-B-A per round."""
    lpop = b"*2\r\n$4\r\nLPOP\r\n$1\r\nq\r\n"

    def sync_rate() -> float:
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            t = time.perf_counter()
            for _ in range(n):
                s.sendall(lpop)
                s.recv(65536)
            return n / (time.perf_counter() - t)

    async def async_rate() -> float:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        t = time.perf_counter()
        for _ in range(n):
            writer.write(lpop)
            await reader.read(65536)
        rate = n / (time.perf_counter() - t)
        writer.close()
        await writer.wait_closed()
        return rate

    ratios = []
    for _ in range(rounds):
        a, b, c = sync_rate(), asyncio.run(async_rate()), sync_rate()
        ratios.append(b / ((a + c) / 2))
        print(f"  sync {a:8.0f}  asyncio {b:8.0f}  sync {c:8.0f} round trips/s")
    return {
        "asyncio_over_sync": [round(x, 3) for x in ratios],
        "median": round(statistics.median(ratios), 3),
    }


# ---- the driver ------------------------------------------------------------------------------
def child(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(HERE), "--child", *args], capture_output=True, text=True, check=True
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure_rate(url: str, n: int, rounds: int) -> dict[str, Any]:
    r = redis.Redis.from_url(url)
    results: list[tuple[str, dict[str, Any]]] = []
    for i in range(2 * rounds + 1):
        flavour = "sync" if i % 2 == 0 else "async"
        prefix = f"rate-{uuid.uuid4().hex[:8]}"
        with Worqr(url, prefix=prefix) as w:
            for start in range(0, n, 1000):
                w.enqueue("q", [str(j) for j in range(start, min(n, start + 1000))])
        res = child("rate", url, prefix, flavour, str(n))
        results.append((flavour, res))
        print(f"  {flavour:5}  {res['rate']:8.0f} tasks/s  {res['cpu_us']:6.1f} us CPU/task")
        r.flushdb()
    ratios, cpu_ratios = [], []
    for i in range(1, len(results), 2):
        sync = [results[i - 1][1], results[i + 1][1]]
        ratios.append(results[i][1]["rate"] / statistics.mean(s["rate"] for s in sync))
        cpu_ratios.append(results[i][1]["cpu_us"] / statistics.mean(s["cpu_us"] for s in sync))
    per = {f: [res for g, res in results if g == f] for f in ("sync", "async")}
    return {
        "tasks_per_round": n,
        "sync_rate": statistics.median(x["rate"] for x in per["sync"]),
        "async_rate": statistics.median(x["rate"] for x in per["async"]),
        "sync_cpu_us": statistics.median(x["cpu_us"] for x in per["sync"]),
        "async_cpu_us": statistics.median(x["cpu_us"] for x in per["async"]),
        "async_over_sync_rate": [round(x, 3) for x in ratios],
        "async_over_sync_cpu": [round(x, 3) for x in cpu_ratios],
    }


def measure_latency(url: str, rate: float, seconds: float, plain: bool) -> dict[str, Any]:
    prefix = f"lat-{uuid.uuid4().hex[:8]}"
    args = [sys.executable, str(HERE), "--child", "latency", url, prefix, str(seconds)]
    args += ["plain"] if plain else []
    worker = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    assert worker.stdout is not None
    worker.stdout.readline()  # "ready"
    time.sleep(0.5)  # subscribed and joined
    feeder = [sys.executable, str(HERE), "--child", "enqueue", url, prefix, str(rate), str(seconds)]
    subprocess.run(feeder, check=True)
    out, _ = worker.communicate(timeout=120)
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return {"offered_per_s": rate, "handler": "plain" if plain else "coroutine", **result}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", choices=["rate", "latency", "idle", "io"])
    p.add_argument("--tasks", type=int, default=5000, help="tasks per rate round")
    p.add_argument("--rounds", type=int, default=3, help="asyncio rounds (sync: one more)")
    p.add_argument("--rate", type=float, default=1500.0, help="offered load for latency")
    p.add_argument("--seconds", type=float, default=6.0)
    p.add_argument("--plain", action="store_true", help="latency: a plain (threaded) handler")
    p.add_argument("--child", nargs=argparse.REMAINDER)
    a = p.parse_args()
    if a.child:
        kind, url, prefix, *rest = a.child
        if kind == "enqueue":
            enqueuer(url, prefix, float(rest[0]), float(rest[1]))
            return
        if kind == "rate":
            res = rate_worker(url, prefix, rest[0], int(rest[1]))
        elif kind == "latency":
            res = latency_worker(url, prefix, float(rest[0]), rest[1:] == ["plain"])
        else:
            res = idle_worker(url, prefix, float(rest[0]))
        print(json.dumps(res))
        return
    with EmbeddedRedis() as server:
        out: dict[str, Any] = {"threads": threading.active_count(), "cpus": os.cpu_count()}
        if a.only in (None, "rate"):
            print("rate (one worker, concurrency 1, prefetch 1):")
            out["rate"] = measure_rate(server.url, a.tasks, a.rounds)
        if a.only in (None, "latency"):
            out["latency"] = measure_latency(server.url, a.rate, a.seconds, a.plain)
        if a.only in (None, "io"):
            print("bare I/O (LPOP round trips, no worqr_py):")
            out["io"] = bare_io(server.port, 20000, a.rounds)
        if a.only in (None, "idle"):
            out["idle"] = child("idle", server.url, f"idle-{uuid.uuid4().hex[:8]}", "5")
        print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
