"""taskiq + taskiq-redis ListQueueBroker (a Redis list, BRPOP)."""

from __future__ import annotations

from taskiq_redis import ListQueueBroker

from peerapps import URL, _taskiq_common, aslow, stamp

DIST = "taskiq"
EXTRA_DISTS = ["taskiq-redis"]
broker = ListQueueBroker(URL)
VARIANTS = _taskiq_common.variants("taskiq_list_app", "ListQueueBroker")
RECLAIM = (0, "none: BRPOP removed the message from Redis")


@broker.task
async def noop(i: int) -> None:
    await aslow(i)
    stamp(i)


def enqueue(n: int) -> int:
    return _taskiq_common.enqueue(broker, noop, n)
