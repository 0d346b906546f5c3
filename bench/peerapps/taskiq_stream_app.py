"""taskiq + taskiq-redis RedisStreamBroker (a stream + consumer group)."""

from __future__ import annotations

from taskiq_redis import RedisStreamBroker

from peerapps import URL, _taskiq_common, aslow, stamp

DIST = "taskiq"
EXTRA_DISTS = ["taskiq-redis"]
broker = RedisStreamBroker(URL)
VARIANTS = _taskiq_common.variants("taskiq_stream_app", "RedisStreamBroker")
RECLAIM = (600, "pending in the consumer group; XAUTOCLAIM after idle_timeout 600 s")


@broker.task
async def noop(i: int) -> None:
    await aslow(i)
    stamp(i)


def enqueue(n: int) -> int:
    return _taskiq_common.enqueue(broker, noop, n)
