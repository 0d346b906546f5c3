"""Persistent tasks: one "connection" per task, each held by exactly one live process at a time.
Three owner processes share five connections; one is SIGKILLed and the survivors take over.

    python examples/persistent_tasks.py    # uses $REDIS_URL, else starts a throwaway redis-server
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import redis

from worqr_py import Process, Worqr
from worqr_py.embedded import EmbeddedRedis, scrub

CONNECTIONS = [f"db-{i}" for i in range(1, 6)]


def owner(url: str, prefix: str) -> None:
    """A process that keeps open the connections it owns (at most three)."""
    w = Worqr(url, prefix=prefix, heartbeat_interval=0.1, heartbeat_ttl=0.5)
    sockets: dict[str, str] = {}

    def acquire(p: Process) -> None:
        sockets[p.task] = f"socket to {p.task}"  # open it: we are its only owner

    def lose(p: Process) -> None:
        sockets.pop(p.task, None)  # close it: another process owns it now

    w.own("connections", acquire, lose, limit=3)
    redis.Redis.from_url(url).hset(f"{prefix}-pids", str(w.worker_id), os.getpid())
    signal.signal(signal.SIGTERM, lambda *_: (w.close(), sys.exit(0)))
    while True:
        time.sleep(1)


def ownership(w: Worqr) -> dict[str, list[str]]:
    return {
        x.id[:8]: sorted(p.task for p in x.processes)
        for x in w.overview().workers
        if x.alive and x.processes
    }


def settle(w: Worqr, expect_owners: int) -> dict[str, list[str]]:
    """Wait (bounded) until every connection has one owner among ``expect_owners`` workers."""
    for _ in range(500):
        owned = ownership(w)
        names = sorted(t for tasks in owned.values() for t in tasks)
        if names == CONNECTIONS and len(w.get_workers()) == expect_owners:
            return owned
        time.sleep(0.02)
    raise SystemExit(f"connections not settled: {ownership(w)}")


def connections(url: str, prefix: str) -> int:
    cmd = [sys.executable, __file__, "--owner", url, prefix]
    with Worqr(url, prefix=prefix) as w:
        w.enqueue("connections", CONNECTIONS)
        children = [subprocess.Popen(cmd) for _ in range(3)]
        try:
            before = settle(w, 3)
            print("owners:", before)
            busiest = max(w.overview().workers, key=lambda x: len(x.processes))
            pid = int(redis.Redis.from_url(url).hget(f"{prefix}-pids", busiest.id) or 0)
            os.kill(pid, signal.SIGKILL)
            print(f"SIGKILL owner {busiest.id[:8]} of {sorted(p.task for p in busiest.processes)}")
            after = settle(w, 2)
            print("owners after the takeover:", after)
        finally:
            for c in children:
                c.send_signal(signal.SIGTERM)
            for c in children:
                c.wait(10)
    return 0 if busiest.id[:8] not in after and all(len(t) <= 3 for t in after.values()) else 1


def main(url: str) -> int:
    prefix = f"persistent-example-{uuid.uuid4().hex[:8]}"
    try:
        return connections(url, prefix)
    finally:
        scrub(url, prefix)  # every key of that prefix: nothing left on your Redis


if __name__ == "__main__":
    if sys.argv[1:2] == ["--owner"]:
        owner(sys.argv[2], sys.argv[3])
    elif os.environ.get("REDIS_URL"):
        sys.exit(main(os.environ["REDIS_URL"]))
    else:
        with EmbeddedRedis() as server:
            sys.exit(main(server.url))
