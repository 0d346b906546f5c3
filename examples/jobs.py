"""Jobs: function calls with arguments, results and recorded errors (the idenTTqueue and RQ
flow): submit, a worker running the functions by name, wait_for_result. One job fails and
is retried, one times out, one is submitted twice under the same id.

python examples/jobs.py   # uses $REDIS_URL, else starts a throwaway redis-server
"""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid

from worqr_py import JobFailed, Retry, Worqr
from worqr_py.embedded import EmbeddedRedis, scrub

tries = {"flaky": 0}


def resize(path: str, width: int, *, quality: int = 80) -> dict[str, object]:
    return {"path": f"{path}@{width}w", "quality": quality}


def flaky() -> str:
    tries["flaky"] += 1
    if tries["flaky"] == 1:
        raise ConnectionError("upstream timed out")  # the job's Retry tries again
    return "ok on try 2"


def stuck() -> None:
    while True:  # a CPU loop in Python: the timeout interrupts it
        time.sleep(0)


def demo(url: str, prefix: str) -> int:
    functions = {"resize": resize, "flaky": flaky, "stuck": stuck}
    with Worqr(url, prefix=prefix) as client, Worqr(url, prefix=prefix) as worker:
        runner = threading.Thread(
            target=worker.run_jobs, args=(functions, "images"), kwargs={"timeout": 1}
        )
        runner.start()
        try:
            job = client.submit("images", "resize", "cat.png", 200, quality=90)
            print("resize ->", job.result(timeout=30))
            again = client.submit("images", "flaky", retry=Retry(max=2, backoff=[0.1]))
            print(
                "flaky ->", again.result(timeout=30), f"({client.get_job(again.id).attempts} tries)"
            )
            first = client.submit("images", "resize", "dog.png", 64, job_id="dog-64")
            second = client.submit("images", "resize", "dog.png", 64, job_id="dog-64")
            print("same id twice:", first.id, "created:", first.created, second.created)
            try:
                client.submit("images", "stuck").result(timeout=30)
            except JobFailed as exc:
                print("stuck ->", exc.status, exc.error.type if exc.error else None)
            info = client.get_job(job.id)
            assert info is not None
            print(f"{info.id}: {info.status}, waited {info.started_at - info.enqueued_at:.3f} s")
        finally:
            worker.shutdown()
            runner.join()
        counts = worker.job_counts()
    print("counters:", counts)
    ok = counts[("images", "stuck")]["timed_out"] == 1 and not second.created
    return 0 if ok and counts[("images", "flaky")]["retried"] == 1 else 1


def main(url: str) -> int:
    prefix = f"jobs-{uuid.uuid4().hex[:8]}"  # a namespace of our own on your Redis
    try:
        return demo(url, prefix)
    finally:
        scrub(url, prefix)  # every key of that prefix: nothing left on your Redis


if __name__ == "__main__":
    if os.environ.get("REDIS_URL"):
        sys.exit(main(os.environ["REDIS_URL"]))
    with EmbeddedRedis() as server:
        sys.exit(main(server.url))
