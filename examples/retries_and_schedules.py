"""Retries with backoff, dead letters that say why, and a periodic task: a flaky task fails
once and is retried 0.1 s later; a broken one fails every try and ends in the dead-letter list
with its exception; a schedule enqueues "tick" every 0.3 s. No scheduler process: the
worker's own runtime fires the schedule and retries (Redis' clock decides when).

python examples/retries_and_schedules.py   # uses $REDIS_URL, else starts a throwaway redis-server
"""

from __future__ import annotations

import os
import sys
import threading
import uuid

from worqr_py import Process, Retry, Worqr
from worqr_py.embedded import EmbeddedRedis, scrub


def demo(url: str, prefix: str) -> int:
    tries: dict[str, int] = {}
    with Worqr(url, prefix=prefix) as producer, Worqr(url, prefix=prefix) as worker:
        producer.enqueue("jobs", ["flaky", "broken"])
        producer.schedule("jobs", "tick", every=0.3)

        def handle(p: Process) -> None:
            tries[p.task] = tries.get(p.task, 0) + 1
            if tries.get("tick", 0) >= 3 and tries.get("broken") == 3:
                worker.shutdown()  # seen enough
            if p.task == "flaky" and p.deliveries == 1:
                raise ConnectionError("upstream timed out")  # retried in 0.1 s
            if p.task == "broken":
                raise ValueError(f"cannot parse {p.task!r}")  # every try: dead after the last

        runner = threading.Thread(
            target=worker.run, args=("jobs", handle), kwargs={"retry": Retry(max=2, backoff=[0.1])}
        )
        runner.start()
        runner.join(30)
        worker.shutdown()
        runner.join()
        dead = producer.get_dead("jobs")
        (tick,) = producer.get_schedules("jobs")
    print("tries per task:", tries)
    for d in dead:
        print(f"dead: {d.task!r} after {d.deliveries} tries: {d.error_type}: {d.error_message}")
    print(f"schedule {tick.name!r}: fired {tick.fires} times, every {tick.every} s")
    ok = tries.get("flaky") == 2 and tries.get("broken") == 3 and tries.get("tick", 0) >= 3
    return 0 if ok and [d.error_type for d in dead] == ["ValueError"] else 1


def main(url: str) -> int:
    prefix = f"retries-{uuid.uuid4().hex[:8]}"  # a namespace of our own on your Redis
    try:
        return demo(url, prefix)
    finally:
        scrub(url, prefix)  # every key of that prefix: nothing left on your Redis


if __name__ == "__main__":
    if os.environ.get("REDIS_URL"):
        sys.exit(main(os.environ["REDIS_URL"]))
    with EmbeddedRedis() as server:
        sys.exit(main(server.url))
