"""rq: one Queue on a sync redis-py connection; ``enqueue_many`` pre-fills it. rq stores
every job's return value (``result_ttl`` 500 s by default): the ``results*`` variant is a
SimpleWorker running ``add``."""

from __future__ import annotations

from redis import Redis
from rq import Queue
from rq.job import Job

from peerapps import RESULTS, URL, slow, stamp

DIST = "rq"
_SIMPLE = ["rq", "worker", "--url", URL, "-w", "rq.worker.SimpleWorker"]
VARIANTS = {
    "default": ("rq worker (forks a work horse per job; default)", ["rq", "worker", "--url", URL]),
    "simple": ("rq worker -w SimpleWorker (no fork)", _SIMPLE),
    "results": ("rq worker -w SimpleWorker (no fork; one job at a time)", _SIMPLE),
}
RECLAIM = (0, "none: an abandoned job goes to the FailedJobRegistry (re-run only with Retry)")


def noop(i: int) -> None:
    slow(i)
    stamp(i)


def add(a: int, b: int) -> int:
    """The job of the ``results`` variant: its return value is the stored result."""
    slow(a)
    stamp(a)
    return a + b


JOB_IDS: list[str] = []  # results: the id of the job of task number i (this process only)


def enqueue(n: int) -> int:
    q = Queue("default", connection=Redis.from_url(URL))
    for s in range(0, n, 50):
        if RESULTS:
            data = [Queue.prepare_data(add, (i, 1)) for i in range(s, min(n, s + 50))]
            JOB_IDS.extend(job.id for job in q.enqueue_many(data))
        else:
            q.enqueue_many([Queue.prepare_data(noop, (i,)) for i in range(s, min(n, s + 50))])
    q.connection.close()
    return n


def check_results(numbers: list[int]) -> dict[str, int] | None:
    """results: how many of these task numbers' jobs have the stored result i + 1."""
    if not RESULTS:
        return None
    r = Redis.from_url(URL)
    ok = sum(1 for i in numbers if Job.fetch(JOB_IDS[i], connection=r).return_value() == i + 1)
    r.close()
    return {"checked": len(numbers), "stored": ok}
