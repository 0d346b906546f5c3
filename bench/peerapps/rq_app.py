"""rq: one Queue on a sync redis-py connection; ``enqueue_many`` pre-fills it."""

from __future__ import annotations

from redis import Redis
from rq import Queue

from peerapps import URL, slow, stamp

DIST = "rq"
VARIANTS = {
    "default": ("rq worker (forks a work horse per job; default)", ["rq", "worker", "--url", URL]),
    "simple": (
        "rq worker -w SimpleWorker (no fork)",
        ["rq", "worker", "--url", URL, "-w", "rq.worker.SimpleWorker"],
    ),
}
RECLAIM = (0, "none: an abandoned job goes to the FailedJobRegistry (re-run only with Retry)")


def noop(i: int) -> None:
    slow(i)
    stamp(i)


def enqueue(n: int) -> int:
    q = Queue("default", connection=Redis.from_url(URL))
    for s in range(0, n, 50):
        q.enqueue_many([Queue.prepare_data(noop, (i,)) for i in range(s, min(n, s + 50))])
    q.connection.close()
    return n
