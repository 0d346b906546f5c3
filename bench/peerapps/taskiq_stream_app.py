"""taskiq + taskiq-redis RedisStreamBroker (a stream + consumer group); no batch API."""

from __future__ import annotations

from taskiq_redis import RedisStreamBroker

from peerapps import URL, Clock, _taskiq_common, stamp

DIST = "taskiq"
EXTRA_DISTS = ["taskiq-redis"]
HAS_BATCH = False
broker = RedisStreamBroker(URL)
VARIANTS = {
    "c1": (
        "taskiq worker --workers 1 --max-async-tasks 1",
        [
            "taskiq",
            "worker",
            "peerapps.taskiq_stream_app:broker",
            "--workers",
            "1",
            "--max-async-tasks",
            "1",
        ],
    ),
    "default": (
        "taskiq worker (default: --workers 2, max-async-tasks 100)",
        ["taskiq", "worker", "peerapps.taskiq_stream_app:broker"],
    ),
}
CRASH = "stays pending in the group; XAUTOCLAIM after idle_timeout 600 s"
NOTES = ""


@broker.task
async def noop(i: int) -> None:
    stamp()


def enqueue(n: int, batch: int, clock: Clock, warmup: bool) -> int:
    return _taskiq_common.enqueue(broker, noop, n, clock, warmup)
