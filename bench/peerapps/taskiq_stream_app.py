"""taskiq + taskiq-redis RedisStreamBroker (a stream + consumer group); no batch API."""

from __future__ import annotations

from taskiq_redis import RedisStreamBroker

from peerapps import URL, Clock, _taskiq_common, stamp

DIST = "taskiq"
EXTRA_DISTS = ["taskiq-redis"]
HAS_BATCH = False
broker = RedisStreamBroker(URL)
VARIANTS = _taskiq_common.variants("taskiq_stream_app")
CRASH = "stays pending in the group; XAUTOCLAIM after idle_timeout 600 s"
NOTES = ""


@broker.task
async def noop(i: int) -> None:
    stamp()


def enqueue(n: int, batch: int, clock: Clock, warmup: bool) -> int:
    return _taskiq_common.enqueue(broker, noop, n, clock, warmup)
