"""huey: RedisHuey (a Redis list, BRPOP consumer); no batch enqueue API."""

from __future__ import annotations

from huey import RedisHuey  # type: ignore[import-untyped]

from peerapps import URL, Clock, stamp

DIST = "huey"
HAS_BATCH = False
huey = RedisHuey("bench", url=URL)
VARIANTS = {
    "c1": (
        "huey_consumer -w 1 -k thread (default)",
        ["huey_consumer", "peerapps.huey_app.huey", "-w", "1", "-k", "thread"],
    ),
}
CRASH = "LOST (BRPOP: nothing left in Redis)"
NOTES = "returns None, so no result is stored"


@huey.task()  # type: ignore[untyped-decorator]
def noop(i: int) -> None:
    stamp()


def enqueue(n: int, batch: int, clock: Clock, warmup: bool) -> int:
    if warmup:
        noop(-1)
    clock.start()
    done = 0
    while done < n and not clock.expired():
        noop(done)
        done += 1
    clock.stop()
    return done
