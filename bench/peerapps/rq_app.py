"""rq: one Queue on a sync redis-py connection; ``enqueue_many`` is its batch API."""

from __future__ import annotations

from redis import Redis
from rq import Queue

from peerapps import URL, Clock, stamp

DIST = "rq"
HAS_BATCH = True
VARIANTS = {
    "c1": ("rq worker (forks a work horse per job)", ["rq", "worker", "--url", URL, "default"]),
    "simple": (
        "rq worker -w SimpleWorker (no fork)",
        ["rq", "worker", "--url", URL, "-w", "rq.worker.SimpleWorker", "default"],
    ),
}
CRASH = "not retried: stays in StartedJobRegistry, moved to failed by maintenance"
NOTES = "default result_ttl (job hash kept 500 s)"


def noop(i: int) -> None:
    stamp()


def enqueue(n: int, batch: int, clock: Clock, warmup: bool) -> int:
    q = Queue("default", connection=Redis.from_url(URL))
    if warmup:
        q.enqueue(noop, -1)
    clock.start()
    done = 0
    while done < n and not clock.expired():
        if batch == 1:
            q.enqueue(noop, done)
            done += 1
        else:
            k = min(batch, n - done)
            q.enqueue_many([Queue.prepare_data(noop, (done + j,)) for j in range(k)])
            done += k
    clock.stop()
    q.connection.close()
    return done
