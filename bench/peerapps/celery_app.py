"""celery: Redis broker (kombu), no result backend; no batch enqueue API."""

from __future__ import annotations

from celery import Celery  # type: ignore[import-untyped]

from peerapps import URL, Clock, stamp

DIST = "celery"
EXTRA_DISTS = ["kombu"]
HAS_BATCH = False
app = Celery("bench", broker=URL)
app.conf.broker_connection_retry_on_startup = True
VARIANTS = {
    "c1": (
        "celery worker --pool solo -c 1",
        [
            "celery",
            "-A",
            "peerapps.celery_app",
            "worker",
            "--pool",
            "solo",
            "-c",
            "1",
            "--loglevel",
            "WARNING",
        ],
    ),
    "default": (
        "celery worker (default prefork, -c ncpu)",
        ["celery", "-A", "peerapps.celery_app", "worker", "--loglevel", "WARNING"],
    ),
}
CRASH = "solo: restored after visibility_timeout (1 h); prefork acks at start: LOST"
NOTES = "no result backend"


@app.task  # type: ignore[untyped-decorator]
def noop(i: int) -> None:
    stamp()


def enqueue(n: int, batch: int, clock: Clock, warmup: bool) -> int:
    if warmup:
        noop.delay(-1)
    clock.start()
    done = 0
    while done < n and not clock.expired():
        noop.delay(done)
        done += 1
    clock.stop()
    return done
