"""A worker process for the fault-injection suite. It runs ``Worqr.run`` (or ``own`` for
persistent tasks) and writes a ledger of what its handler did to a separate Redis (the
ledger survives restarts of the Redis under test):

    L:events  list  "start <worker> <task> <deliveries>", "done <worker> <task>",
                    "lost <worker> <task>", "failed <worker> <reason>"
    L:done    hash  task -> how many times a handler completed it
    L:pids    hash  worker id -> OS pid (to know which process to kill)
    L:beliefs hash  OS pid -> "<wall-clock until> <task> <task> ..." (own mode)

    python -m tests.faults.agent '{"url": ..., "prefix": ..., "ledger_url": ..., "ledger": ...}'
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from typing import Any

import redis

from worqr_py import Process, Worqr
from worqr_py.core.keys import split_process_id


def main(cfg: dict[str, Any]) -> None:
    ledger = redis.Redis.from_url(cfg["ledger_url"], decode_responses=True)
    key = cfg["ledger"]
    name = f"agent-{os.getpid()}"
    data = redis.Redis.from_url(cfg["url"], client_name=name)
    sub = redis.Redis.from_url(cfg["url"], client_name=name)
    w = Worqr(
        redis=data,
        subscriber=sub,
        prefix=cfg["prefix"],
        heartbeat_interval=cfg.get("interval", 0.1),
        heartbeat_ttl=cfg.get("ttl", 0.5),
        max_deliveries=cfg.get("max_deliveries", 5),
        retry_timeout=30,
    )
    w.events.on("lost", lambda p: ledger.rpush(f"{key}:events", f"lost {_wid(p)} {p.task}"))
    w.events.on("failed", lambda wid, why: ledger.rpush(f"{key}:events", f"failed {wid} {why}"))
    behaviour = cfg.get("behaviour", "normal")
    work_s = cfg.get("ms", 5) / 1000

    def handler(p: Process) -> None:
        ledger.hset(f"{key}:pids", _wid(p), os.getpid())
        ledger.rpush(f"{key}:events", f"start {_wid(p)} {p.task} {p.deliveries}")
        if behaviour == "poison" and p.task.startswith("poison"):
            os.kill(os.getpid(), signal.SIGKILL)
        if behaviour == "gil" and p.task.startswith("gil") and p.deliveries == 1:
            hold_the_gil(cfg["gil_s"])
        time.sleep(float(cfg.get("slow_s", 0)) if p.task.startswith("slow") else work_s)
        ledger.hincrby(f"{key}:done", p.task, 1)
        ledger.rpush(f"{key}:events", f"done {_wid(p)} {p.task}")

    if cfg.get("mode") == "own":
        own(w, ledger, key, cfg.get("limit"))
    else:
        w.run(cfg.get("queue", "jobs"), handler, concurrency=cfg.get("concurrency", 1), grace=10)
        w.close()


def own(w: Worqr, ledger: redis.Redis, key: str, limit: int | None) -> None:
    """Own persistent tasks; every 5 ms write what this process believes it owns, and until
    when (wall clock), so the test's sampler can check that no two beliefs overlap."""
    mine: set[str] = set()
    lock = threading.Lock()

    def acquire(p: Process) -> None:
        with lock:
            mine.add(p.task)

    def lose(p: Process) -> None:
        with lock:
            mine.discard(p.task)

    w.own("conns", acquire, lose, limit=limit)
    signal.signal(signal.SIGTERM, lambda *_: (w.close(), os._exit(0)))
    while True:
        trusted = w.trusted_until - time.monotonic()  # checks the clock first: may fail us
        with lock:
            tasks = sorted(mine) if trusted > 0 else []
        until = time.time() + max(trusted, 0)
        ledger.hset(f"{key}:beliefs", str(os.getpid()), " ".join([f"{until:.4f}", *tasks]))
        time.sleep(0.005)


def hold_the_gil(seconds: float) -> None:
    """Run C code that never releases the GIL for about ``seconds`` (one sum() call)."""
    t = time.perf_counter()
    sum(range(200_000))
    per_item = (time.perf_counter() - t) / 200_000
    sum(range(int(seconds / per_item)))


def _wid(p: Process) -> str:
    parts = split_process_id(p.id)
    return parts[1] if parts else "?"


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
