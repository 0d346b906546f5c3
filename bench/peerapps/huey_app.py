"""huey: RedisHuey (a Redis list, BRPOP consumer). huey stores a task's return value unless
it is None (``results=True``, ``store_none=False``: its defaults): the ``results*`` variants
run ``add``."""

from __future__ import annotations

from huey import RedisHuey  # type: ignore[import-untyped]

from peerapps import RESULTS, URL, slow, stamp

DIST = "huey"
huey = RedisHuey("bench", url=URL)
VARIANTS = {
    "default": (
        "huey_consumer (default: -w 1 -k thread)",
        ["huey_consumer", "peerapps.huey_app.huey"],
    ),
    "results": (
        "huey_consumer (default: -w 1 -k thread)",
        ["huey_consumer", "peerapps.huey_app.huey"],
    ),
    "results-w10": (
        "huey_consumer -w 10 -k thread",
        ["huey_consumer", "peerapps.huey_app.huey", "-w", "10", "-k", "thread"],
    ),
}
RECLAIM = (0, "none: BRPOP removed the message from Redis")


@huey.task()  # type: ignore[untyped-decorator]
def noop(i: int) -> None:
    slow(i)
    stamp(i)


@huey.task()  # type: ignore[untyped-decorator]
def add(a: int, b: int) -> int:
    """The task of the ``results*`` variants: its return value is the stored result."""
    slow(a)
    stamp(a)
    return a + b


TASK_IDS: list[str] = []  # results*: the id of task number i (this process only)


def enqueue(n: int) -> int:
    for i in range(n):
        if RESULTS:
            TASK_IDS.append(add(i, 1).id)
        else:
            noop(i)
    return n


def check_results(numbers: list[int]) -> dict[str, int] | None:
    """results*: how many of these task numbers have the stored result i + 1 (read with
    ``preserve=True``: reading does not remove it)."""
    if not RESULTS:
        return None
    ok = sum(1 for i in numbers if huey.result(TASK_IDS[i], preserve=True) == i + 1)
    return {"checked": len(numbers), "stored": ok}
