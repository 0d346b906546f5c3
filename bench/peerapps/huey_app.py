"""huey: RedisHuey (a Redis list, BRPOP consumer)."""

from __future__ import annotations

from huey import RedisHuey  # type: ignore[import-untyped]

from peerapps import URL, slow, stamp

DIST = "huey"
huey = RedisHuey("bench", url=URL)
VARIANTS = {
    "default": (
        "huey_consumer (default: -w 1 -k thread)",
        ["huey_consumer", "peerapps.huey_app.huey"],
    ),
}
RECLAIM = (0, "none: BRPOP removed the message from Redis")


@huey.task()  # type: ignore[untyped-decorator]
def noop(i: int) -> None:
    slow(i)
    stamp(i)


def enqueue(n: int) -> int:
    for i in range(n):
        noop(i)
    return n
