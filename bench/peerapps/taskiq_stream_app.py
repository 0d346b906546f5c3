"""taskiq + taskiq-redis RedisStreamBroker (a stream + consumer group)."""

from __future__ import annotations

from taskiq_redis import RedisStreamBroker

from peerapps import RESULTS, URL, _taskiq_common, aslow, stamp

DIST = "taskiq"
EXTRA_DISTS = ["taskiq-redis"]
broker = RedisStreamBroker(URL)
if RESULTS:  # the results* variants: results stored by taskiq-redis
    broker = broker.with_result_backend(_taskiq_common.result_backend())
VARIANTS = _taskiq_common.variants("taskiq_stream_app", "RedisStreamBroker")
RECLAIM = (600, "pending in the consumer group; XAUTOCLAIM after idle_timeout 600 s")


@broker.task
async def noop(i: int) -> None:
    await aslow(i)
    stamp(i)


@broker.task
async def add(a: int, b: int) -> int:
    """The task of the ``results*`` variants: its return value is the stored result."""
    await aslow(a)
    stamp(a)
    return a + b


def enqueue(n: int) -> int:
    if RESULTS:
        return _taskiq_common.enqueue_add(broker, add, n)
    return _taskiq_common.enqueue(broker, noop, n)


def check_results(numbers: list[int]) -> dict[str, int] | None:
    """results*: how many of these task numbers have the stored result i + 1."""
    return _taskiq_common.check_results(broker, numbers) if RESULTS else None
