"""celery: Redis broker (kombu), no result backend; the ``results*`` variants configure its
Redis result backend (``backend=URL``: each result a key, kept 1 day by default) and run
``add``."""

from __future__ import annotations

from celery import Celery  # type: ignore[import-untyped]

from peerapps import RESULTS, URL, slow, stamp

DIST = "celery"
EXTRA_DISTS = ["kombu"]
app = Celery("bench", broker=URL, backend=URL if RESULTS else None)
app.conf.broker_connection_retry_on_startup = True
_CMD = ["celery", "-A", "peerapps.celery_app", "worker", "--loglevel", "WARNING"]
VARIANTS = {
    "default": ("celery worker (default: prefork, -c ncpu)", _CMD),
    "solo": ("celery worker --pool solo", [*_CMD, "--pool", "solo"]),
    "results": ("celery worker --pool solo (one task at a time)", [*_CMD, "--pool", "solo"]),
    "results-threads10": (
        "celery worker --pool threads -c 10",
        [*_CMD, "--pool", "threads", "-c", "10"],
    ),
}
RECLAIM = (3600, "unacked messages are restored after visibility_timeout 1 h")
TASK_IDS: list[str] = []  # results*: the id of task number i (this process only)


@app.task  # type: ignore[untyped-decorator]
def noop(i: int) -> None:
    slow(i)
    stamp(i)


@app.task  # type: ignore[untyped-decorator]
def add(a: int, b: int) -> int:
    """The task of the ``results*`` variants: its return value is the stored result."""
    slow(a)
    stamp(a)
    return a + b


def enqueue(n: int) -> int:
    for i in range(n):
        if RESULTS:
            TASK_IDS.append(add.delay(i, 1).id)
        else:
            noop.delay(i)
    return n


def check_results(numbers: list[int]) -> dict[str, int] | None:
    """results*: how many of these task numbers have the stored result i + 1."""
    if not RESULTS:
        return None
    got = [(i, app.AsyncResult(TASK_IDS[i])) for i in numbers]
    ok = sum(1 for i, r in got if r.state == "SUCCESS" and r.result == i + 1)
    return {"checked": len(numbers), "stored": ok}
