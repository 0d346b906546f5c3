"""Delayed tasks (issue 14): how late a due task is delivered, and how long one promotion
call holds Redis.

    python bench/delayed.py [--tasks 300] [--n 100000] [--only NAME]

(a) ``idle``: two idle runners (``Worqr.run``, defaults) on a queue; a producer delays
``--tasks`` tasks with ``at=`` instants spread over 3 s. Each task carries its due time; the
handler records ``time.time() - due`` (one machine: one clock; Redis promotes by its own
``TIME``, the same clock here). Lateness p50/p99/max.
(b) ``busy``: the same, while a producer keeps the runners busy with plain tasks whose
handler takes 2 ms (a due task then also waits for a free runner).
(c) ``supervision``: no runner at all, only a started worker (default heartbeat interval,
1 s): each due task is promoted by the supervision turn alone. Lateness from the due time
to the promotion's ``work`` event, read by a subscriber that pops what was promoted.
(d) ``periodic``: two idle runners; a schedule ``every=0.2`` s; lateness from each fire time
(``since + k * every``) to the handler's start.
(e) ``mass``: ``--n`` tasks due at once (delayed 1 s, then one runner started): the longest
single promote/dequeue call in Redis' SLOWLOG (``slowlog-log-slower-than 0``) and the time to
drain them all.
"""

from __future__ import annotations

import argparse
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Any

import redis
from worqr_py import Process, Worqr
from worqr_py.core import scripts
from worqr_py.core.keys import Keys
from worqr_py.embedded import EmbeddedRedis

NAMES = {s.sha: s.name for s in scripts.ALL}


def lateness(url: str, tasks: int, busy: bool) -> dict[str, Any]:
    prefix = f"late-{uuid.uuid4().hex[:8]}"
    late: list[float] = []
    lock = threading.Lock()
    workers = [Worqr(url, prefix=prefix) for _ in range(2)]

    def handler(p: Process) -> None:
        if p.task.startswith("due:"):
            with lock:
                late.append(time.time() - float(p.task[4:]))
        else:
            time.sleep(0.002)

    threads = [threading.Thread(target=w.run, args=("q", handler)) for w in workers]
    for t in threads:
        t.start()
    stop = threading.Event()
    with Worqr(url, prefix=prefix) as producer:
        time.sleep(1.0)  # joined

        def feed() -> None:
            while not stop.is_set():
                producer.enqueue("q", ["plain"] * 2)
                time.sleep(0.004)  # about the two runners' capacity

        feeder = threading.Thread(target=feed) if busy else None
        if feeder:
            feeder.start()
        start = time.time() + 0.5
        for i in range(tasks):
            due = start + 3.0 * i / tasks
            producer.enqueue("q", f"due:{due:.6f}", at=datetime.fromtimestamp(due, timezone.utc))
        deadline = time.monotonic() + 30
        while len(late) < tasks and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        if feeder:
            feeder.join()
    for w in workers:
        w.shutdown()
    for t in threads:
        t.join()
    for w in workers:
        w.close()
    return summary(late)


def summary(late_s: list[float]) -> dict[str, Any]:
    ms = sorted(x * 1000 for x in late_s)
    return {
        "n": len(ms),
        "p50_ms": round(ms[len(ms) // 2], 2),
        "p99_ms": round(ms[min(len(ms) - 1, len(ms) * 99 // 100)], 2),
        "max_ms": round(ms[-1], 2),
        "early": sum(1 for x in ms if x < -1),  # before the due time (beyond clock rounding)
    }


def supervision(url: str, tasks: int) -> dict[str, Any]:
    prefix = f"sup-{uuid.uuid4().hex[:8]}"
    r = redis.Redis.from_url(url)
    k = Keys(prefix).queue("q")
    sub = r.pubsub()
    sub.subscribe(k.events)
    sub.get_message(timeout=1)
    late: list[float] = []
    with Worqr(url, prefix=prefix) as w, Worqr(url, prefix=prefix) as producer:
        w.start_worker()  # no runner: promotion by the supervision turn only
        start = time.time() + 0.5
        for i in range(tasks):
            due = start + 3.0 * i / tasks
            producer.enqueue("q", f"{due:.6f}", at=datetime.fromtimestamp(due, timezone.utc))
        deadline = time.monotonic() + 30
        while len(late) < tasks and time.monotonic() < deadline:
            if sub.get_message(timeout=1) is None:
                continue
            now = time.time()
            for task in r.lpop(k.tasks, 10_000) or []:
                late.append(now - float(task))
    sub.close()
    return summary(late)


def periodic(url: str, fires: int, every: float = 0.2) -> dict[str, Any]:
    prefix = f"per-{uuid.uuid4().hex[:8]}"
    starts: list[float] = []
    workers = [Worqr(url, prefix=prefix) for _ in range(2)]
    threads = [
        threading.Thread(target=w.run, args=("q", lambda p: starts.append(time.time())))
        for w in workers
    ]
    for t in threads:
        t.start()
    with Worqr(url, prefix=prefix) as producer:
        time.sleep(1.0)  # joined
        producer.schedule("q", "tick", every=every)
        since = producer.get_schedules("q")[0].since
        deadline = time.monotonic() + fires * every + 30
        while len(starts) < fires and time.monotonic() < deadline:
            time.sleep(0.05)
        producer.unschedule("q", "tick")
    for w in workers:
        w.shutdown()
    for t in threads:
        t.join()
    for w in workers:
        w.close()
    late = [(t - since) % every for t in starts[:fires]]  # lateness < every: from its fire time
    return summary(late)


def mass(url: str, n: int) -> dict[str, Any]:
    prefix = f"mass-{uuid.uuid4().hex[:8]}"
    r = redis.Redis.from_url(url)
    with Worqr(url, prefix=prefix) as producer:
        for i in range(0, n, 10_000):
            producer.enqueue("q", [str(j) for j in range(i, min(n, i + 10_000))], delay=1.0)
    time.sleep(1.2)
    r.config_set("slowlog-log-slower-than", 0)
    r.config_set("slowlog-max-len", 1_000_000)
    r.execute_command("SLOWLOG", "RESET")
    count = 0
    w = Worqr(url, prefix=prefix)

    def handler(p: Process) -> None:
        nonlocal count
        count += 1
        if count == n:
            w.shutdown()

    t0 = time.perf_counter()
    w.run("q", handler, prefetch=100)
    wall = time.perf_counter() - t0
    w.close()
    entries = r.execute_command("SLOWLOG", "GET", "-1")
    r.config_set("slowlog-log-slower-than", 10_000)
    worst: dict[str, int] = {}
    for e in entries:
        args = [a.decode(errors="replace") if isinstance(a, bytes) else str(a) for a in e[3]]
        name = NAMES.get(args[1], "?") if args[0].upper() == "EVALSHA" else args[0].upper()
        worst[name] = max(worst.get(name, 0), int(e[2]))
    return {
        "due_at_once": n,
        "drained_s": round(wall, 2),
        "longest_call_us": max(worst.values(), default=0),
        "longest_by_call_us": dict(sorted(worst.items(), key=lambda kv: -kv[1])[:5]),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", type=int, default=300)
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--only", choices=["idle", "busy", "supervision", "periodic", "mass"])
    a = p.parse_args()
    with EmbeddedRedis() as server:
        if a.only in (None, "idle"):
            print("idle runners:", lateness(server.url, a.tasks, busy=False), flush=True)
        if a.only in (None, "busy"):
            print("busy runners:", lateness(server.url, a.tasks, busy=True), flush=True)
        if a.only in (None, "supervision"):
            print("supervision only:", supervision(server.url, a.tasks), flush=True)
        if a.only in (None, "periodic"):
            print("periodic every 0.2 s:", periodic(server.url, 50), flush=True)
        if a.only in (None, "mass"):
            print("all due at once:", mass(server.url, a.n), flush=True)


if __name__ == "__main__":
    main()
