"""Cancelling: `cancel_tasks` removes queued copies at once; a copy already in process is the
worker's to stop, so the handler watches for the `cancel` event and gives up early.

    python examples/cancel_handling.py     # uses $REDIS_URL, else starts a throwaway redis-server
"""

from __future__ import annotations

import os
import sys
import threading
import uuid

from worqr_py import Process, Worqr
from worqr_py.embedded import EmbeddedRedis, scrub


def reports(url: str, prefix: str) -> int:
    cancelled: set[str] = set()
    started, finished = threading.Event(), threading.Event()
    outcome: dict[str, str] = {}
    worker = Worqr(url, prefix=prefix)

    def on_event(kind: str, message: str) -> None:
        if kind == "cancel":
            cancelled.add(message)  # tell the running handler

    def build(p: Process) -> None:  # a long job, in steps that check for cancellation
        started.set()
        for _step in range(500):
            if p.task in cancelled:
                outcome[p.task] = "stopped early"
                break
            threading.Event().wait(0.01)
        else:
            outcome[p.task] = "done"
        finished.set()  # returning finishes the process: a cancelled task is not retried

    worker.on("reports", on_event)
    runner = threading.Thread(target=worker.run, args=("reports", build))
    runner.start()
    with Worqr(url, prefix=prefix) as producer:
        producer.enqueue("reports", ["big-report", "queued-report"])
        started.wait(5)
        removed = producer.cancel_tasks("reports", "queued-report")  # still queued: removed
        producer.cancel_tasks("reports", "big-report")  # in process: the handler stops it
        finished.wait(5)
    worker.shutdown()
    runner.join()
    worker.close()
    print(f"queued copies removed: {removed}; big-report: {outcome.get('big-report')}")
    return 0 if removed == 1 and outcome == {"big-report": "stopped early"} else 1


def main(url: str) -> int:
    prefix = f"cancel-example-{uuid.uuid4().hex[:8]}"
    try:
        return reports(url, prefix)
    finally:
        scrub(url, prefix)  # every key of that prefix: nothing left on your Redis


if __name__ == "__main__":
    if os.environ.get("REDIS_URL"):
        sys.exit(main(os.environ["REDIS_URL"]))
    with EmbeddedRedis() as server:
        sys.exit(main(server.url))
