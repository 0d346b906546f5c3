"""taskiq + taskiq-redis ListQueueBroker (a Redis list, BRPOP); no batch API."""

from __future__ import annotations

from taskiq_redis import ListQueueBroker

from peerapps import URL, Clock, _taskiq_common, stamp

DIST = "taskiq"
EXTRA_DISTS = ["taskiq-redis"]
HAS_BATCH = False
broker = ListQueueBroker(URL)
VARIANTS = _taskiq_common.variants("taskiq_list_app")
CRASH = "LOST (BRPOP: nothing left in Redis)"
NOTES = ""


@broker.task
async def noop(i: int) -> None:
    stamp()


def enqueue(n: int, batch: int, clock: Clock, warmup: bool) -> int:
    return _taskiq_common.enqueue(broker, noop, n, clock, warmup)
