"""Graceful shutdown: SIGTERM a worker mid-task. Its in-flight task finishes, it takes nothing
new, it leaves at once (no waiting for its heartbeat to expire), and the rest stays queued.

    python examples/graceful_shutdown.py   # uses $REDIS_URL, else starts a throwaway redis-server
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import redis

from worqr_py import Process, Worqr
from worqr_py.embedded import EmbeddedRedis, scrub


def worker(url: str, prefix: str) -> None:
    """The worker process: each job takes 0.3 s; `run` handles SIGTERM."""
    ledger = redis.Redis.from_url(url)

    def job(p: Process) -> None:
        ledger.hset(f"{prefix}-ledger", p.task, "started")
        time.sleep(0.3)
        ledger.hset(f"{prefix}-ledger", p.task, "finished")

    with Worqr(url, prefix=prefix) as w:
        w.run("jobs", job, grace=10)


def shutdown(url: str, prefix: str) -> int:
    r = redis.Redis.from_url(url, decode_responses=True)
    with Worqr(url, prefix=prefix) as w:
        w.enqueue("jobs", [f"job-{i}" for i in range(10)])
        child = subprocess.Popen([sys.executable, __file__, "--worker", url, prefix])
        for _ in range(500):  # wait (bounded) for the first job to start
            if r.hlen(f"{prefix}-ledger"):
                break
            time.sleep(0.01)
        child.send_signal(signal.SIGTERM)
        code = child.wait(15)
        ledger = r.hgetall(f"{prefix}-ledger")
        left, workers = w.count_queue("jobs"), w.get_workers()
    print(
        f"exit {code}; in flight at SIGTERM: {sorted(ledger)} -> {sorted(set(ledger.values()))}; "
        f"still queued: {left}; workers left registered: {len(workers)}"
    )
    ok = code == 0 and set(ledger.values()) == {"finished"} and left == 10 - len(ledger)
    return 0 if ok and not workers else 1


def main(url: str) -> int:
    prefix = f"shutdown-example-{uuid.uuid4().hex[:8]}"
    try:
        return shutdown(url, prefix)
    finally:
        scrub(url, prefix)  # every key of that prefix: nothing left on your Redis


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        worker(sys.argv[2], sys.argv[3])
    elif os.environ.get("REDIS_URL"):
        sys.exit(main(os.environ["REDIS_URL"]))
    else:
        with EmbeddedRedis() as server:
            sys.exit(main(server.url))
