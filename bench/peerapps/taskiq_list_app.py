"""taskiq + taskiq-redis ListQueueBroker (a Redis list, BRPOP); no batch API."""

from __future__ import annotations

from taskiq_redis import ListQueueBroker

from peerapps import URL, Clock, _taskiq_common, stamp

DIST = "taskiq"
EXTRA_DISTS = ["taskiq-redis"]
HAS_BATCH = False
broker = ListQueueBroker(URL)
VARIANTS = {
    "c1": (
        "taskiq worker --workers 1 --max-async-tasks 1",
        [
            "taskiq",
            "worker",
            "peerapps.taskiq_list_app:broker",
            "--workers",
            "1",
            "--max-async-tasks",
            "1",
        ],
    ),
    "default": (
        "taskiq worker (default: --workers 2, max-async-tasks 100)",
        ["taskiq", "worker", "peerapps.taskiq_list_app:broker"],
    ),
}
CRASH = "LOST (BRPOP: nothing left in Redis)"
NOTES = ""


@broker.task
async def noop(i: int) -> None:
    stamp()


def enqueue(n: int, batch: int, clock: Clock, warmup: bool) -> int:
    return _taskiq_common.enqueue(broker, noop, n, clock, warmup)
