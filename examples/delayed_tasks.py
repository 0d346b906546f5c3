"""Delayed tasks and retries later: tasks due in 0.5-1.5 s, and a flaky handler whose failures
are retried 0.2 s later instead of at once. No scheduler process: the worker itself sleeps
until the next due time (Redis' clock decides when a task is due).

python examples/delayed_tasks.py     # uses $REDIS_URL, else starts a throwaway redis-server
"""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid

from worqr_py import Process, Worqr
from worqr_py.embedded import EmbeddedRedis, scrub


def delayed(url: str, prefix: str) -> int:
    seen: dict[str, list[float]] = {}
    start = time.time()
    with Worqr(url, prefix=prefix) as producer, Worqr(url, prefix=prefix) as worker:
        producer.enqueue("reminders", ["in-0.5s"], delay=0.5)
        producer.enqueue("reminders", ["in-1.5s", "flaky"], delay=1.5)
        print(
            "delayed:",
            [(d.task, round(d.due - start, 1)) for d in producer.get_delayed("reminders")],
        )

        def handle(p: Process) -> None:
            seen.setdefault(p.task, []).append(round(time.time() - start, 2))
            if p.task == "flaky" and p.deliveries < 3:
                worker.stop_process(p.id, delay=0.2)  # try again in 0.2 s, not next
                return
            worker.finish_process(p.id)
            if {"in-0.5s", "in-1.5s"} <= seen.keys() and len(seen.get("flaky", [])) == 3:
                worker.shutdown()

        runner = threading.Thread(target=worker.run, args=("reminders", handle))
        runner.start()
        runner.join(30)
        worker.shutdown()
        runner.join()
    print("handled at (s after start):", seen)
    ok = seen.get("in-0.5s", [0])[0] >= 0.5 and seen.get("in-1.5s", [0])[0] >= 1.5
    return 0 if ok and len(seen.get("flaky", [])) == 3 else 1


def main(url: str) -> int:
    prefix = f"delayed-{uuid.uuid4().hex[:8]}"  # a namespace of our own on your Redis
    try:
        return delayed(url, prefix)
    finally:
        scrub(url, prefix)  # every key of that prefix: nothing left on your Redis


if __name__ == "__main__":
    if os.environ.get("REDIS_URL"):
        sys.exit(main(os.environ["REDIS_URL"]))
    with EmbeddedRedis() as server:
        sys.exit(main(server.url))
