"""Quick start: a producer and two event-driven workers share one queue; each task is done once.

python examples/quickstart.py     # uses $REDIS_URL, else starts a throwaway redis-server
"""

from __future__ import annotations

import os
import sys
import threading
import uuid
from collections import Counter

from worqr_py import Worqr
from worqr_py.embedded import EmbeddedRedis, scrub

TASKS = [f"job-{n}" for n in range(200)]


def quickstart(url: str, prefix: str) -> int:
    done: Counter[str] = Counter()
    by_worker: Counter[str] = Counter()
    all_done = threading.Event()
    workers = [Worqr(url, prefix=prefix) for _ in range(2)]
    for name, w in zip(("worker-a", "worker-b"), workers, strict=True):

        def on_event(kind: str, message: str, w: Worqr = w, name: str = name) -> None:
            if kind != "work":
                return
            while (p := w.dequeue("jobs")) is not None:
                _ = p.task.upper()  # the "work"
                if w.finish_process(p.id):  # False only if this worker lost the task meanwhile
                    done[p.task] += 1
                    by_worker[name] += 1
            if sum(done.values()) >= len(TASKS):
                all_done.set()

        w.on("jobs", on_event)  # handler first, so no work event is missed
        w.start_worker()
        w.start_work("jobs")

    with Worqr(url, prefix=prefix) as producer:
        producer.enqueue("jobs", TASKS)
        finished = all_done.wait(30)
        left = producer.count_queue("jobs")
    for w in workers:
        w.close()  # fails the worker: anything it still held would go back at once
    print(
        f"done {sum(done.values())}/{len(TASKS)}, twice: {sum(n > 1 for n in done.values())}, "
        f"left in queue: {left}, by worker: {dict(by_worker)}"
    )
    return 0 if finished and set(done) == set(TASKS) else 1


def main(url: str) -> int:
    prefix = f"quickstart-{uuid.uuid4().hex[:8]}"  # a namespace of our own on your Redis
    try:
        return quickstart(url, prefix)
    finally:
        scrub(url, prefix)  # every key of that prefix: nothing left on your Redis


if __name__ == "__main__":
    if os.environ.get("REDIS_URL"):
        sys.exit(main(os.environ["REDIS_URL"]))
    with EmbeddedRedis() as server:
        sys.exit(main(server.url))
