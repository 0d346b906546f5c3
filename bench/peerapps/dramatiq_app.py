"""dramatiq: RedisBroker with its default middleware; no batch enqueue API."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from peerapps import URL, Clock, stamp

DIST = "dramatiq"
HAS_BATCH = False
broker = RedisBroker(url=URL)  # type: ignore[no-untyped-call]
dramatiq.set_broker(broker)
VARIANTS = {
    "c1": ("dramatiq -p 1 -t 1", ["dramatiq", "peerapps.dramatiq_app", "-p", "1", "-t", "1"]),
    "default": ("dramatiq (default -p ncpu -t 8)", ["dramatiq", "peerapps.dramatiq_app"]),
}
CRASH = "requeued once the dead worker's heartbeat is >60 s old (maintenance is rare: minutes)"
NOTES = ""


@dramatiq.actor
def noop(i: int) -> None:
    stamp()


def enqueue(n: int, batch: int, clock: Clock, warmup: bool) -> int:
    if warmup:
        noop.send(-1)
    clock.start()
    done = 0
    while done < n and not clock.expired():
        noop.send(done)
        done += 1
    clock.stop()
    return done
