"""A runtime worker in its own process, for the periodic-task tests: it runs ``run()`` on a
queue of its own (so it only fires the schedules) and prints its worker id once alive.

    python -m tests.periodic_agent URL PREFIX QUEUE INTERVAL TTL
"""

from __future__ import annotations

import sys
import threading

from worqr_py import Worqr


def main() -> None:
    url, prefix, queue, interval, ttl = sys.argv[1:6]
    w = Worqr(url, prefix=prefix, heartbeat_interval=float(interval), heartbeat_ttl=float(ttl))

    def announce() -> None:
        while not w.alive:
            threading.Event().wait(0.01)
        print(w.worker_id, flush=True)

    threading.Thread(target=announce, daemon=True).start()
    w.run(queue, lambda p: None, grace=1)


if __name__ == "__main__":
    main()
