"""A worker in its own process, for crash tests: it takes up to N tasks from a queue, prints
one JSON line with their process ids, then holds them until killed, or, on a line on stdin,
tries to finish them and prints what finish_process answered.

    python -m tests.proc_worker URL PREFIX QUEUE N INTERVAL TTL
"""

from __future__ import annotations

import json
import sys

from worqr_py import Worqr


def main() -> None:
    url, prefix, queue, n, interval, ttl = sys.argv[1:7]
    w = Worqr(url, prefix=prefix, heartbeat_interval=float(interval), heartbeat_ttl=float(ttl))
    wid = w.start_worker()
    w.start_work(queue)
    procs = w.dequeue_many(queue, int(n))
    print(
        json.dumps({"worker": wid, "ids": [p.id for p in procs], "tasks": [p.task for p in procs]}),
        flush=True,
    )
    sys.stdin.readline()
    print(
        json.dumps({"finished": [w.finish_process(p.id) for p in procs], "alive": w.alive}),
        flush=True,
    )


if __name__ == "__main__":
    main()
