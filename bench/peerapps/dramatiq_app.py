"""dramatiq: RedisBroker with its default middleware."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from peerapps import URL, slow, stamp

DIST = "dramatiq"
broker = RedisBroker(url=URL)  # type: ignore[no-untyped-call]
dramatiq.set_broker(broker)
VARIANTS = {
    "default": ("dramatiq (default: -p ncpu -t 8)", ["dramatiq", "peerapps.dramatiq_app"]),
    "p1t8": ("dramatiq -p 1 -t 8", ["dramatiq", "peerapps.dramatiq_app", "-p", "1", "-t", "8"]),
}
RECLAIM = (
    60,
    "requeued by the (probabilistic) maintenance once the dead worker's heartbeat is > 60 s old",
)


@dramatiq.actor
def noop(i: int) -> None:
    slow(i)
    stamp(i)


def enqueue(n: int) -> int:
    for i in range(n):
        noop.send(i)
    return n
