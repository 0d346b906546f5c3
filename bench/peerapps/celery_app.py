"""celery: Redis broker (kombu), no result backend."""

from __future__ import annotations

from celery import Celery  # type: ignore[import-untyped]

from peerapps import URL, slow, stamp

DIST = "celery"
EXTRA_DISTS = ["kombu"]
app = Celery("bench", broker=URL)
app.conf.broker_connection_retry_on_startup = True
_CMD = ["celery", "-A", "peerapps.celery_app", "worker", "--loglevel", "WARNING"]
VARIANTS = {
    "default": ("celery worker (default: prefork, -c ncpu)", _CMD),
    "solo": ("celery worker --pool solo", [*_CMD, "--pool", "solo"]),
}
RECLAIM = (3600, "unacked messages are restored after visibility_timeout 1 h")


@app.task  # type: ignore[untyped-decorator]
def noop(i: int) -> None:
    slow(i)
    stamp(i)


def enqueue(n: int) -> int:
    for i in range(n):
        noop.delay(i)
    return n
