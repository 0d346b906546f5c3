"""One small app per peer task queue, imported both by bench/peer_driver.py (to enqueue)
and by the peer's own worker CLI (to run the task), so the task names match.

Each app module defines:

* ``DIST``: the distribution whose version is reported;
* ``noop(i)``: the no-op task taking an int; its only work is :func:`stamp`;
* ``enqueue(n, batch, clock, warmup) -> int``: enqueue ``n`` tasks, one by one when
  ``batch == 1``, else through the library's batch API in batches of ``batch`` (only if
  ``HAS_BATCH``).  It calls ``clock.start()`` once set up (connections open, one warm-up
  task sent when ``warmup``), stops early when ``clock.expired()``, calls ``clock.stop()``
  and returns how many tasks it enqueued;
* ``VARIANTS``: ``{"c1": (label, argv), ...}``; argv starts with the console script
  name, found next to the interpreter; ``c1`` runs one worker doing one job at a time;
* ``CRASH``: what happens to a running job when its worker gets SIGKILL (from the
  reference crash test in shared/reference/peer-benchmarks.md and the docs, not
  measured here); ``NOTES``: anything else a reader of the table needs.

The apps read the server URL from ``BENCH_REDIS_URL`` and the stamp file from
``BENCH_STAMP_FILE``.
"""

from __future__ import annotations

import os
import time
from typing import Protocol

URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:0/9")
STAMP_LEN = 21  # b"%020.6f\n"

_fd: int | None = None


def stamp() -> None:
    """Append this job's completion time to the stamp file (one fixed-size record).

    This replaces a Redis counter so that the driver can count finished jobs without
    sending a single command; O_APPEND keeps records whole across processes.
    """
    global _fd
    if _fd is None:
        path = os.environ["BENCH_STAMP_FILE"]
        _fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(_fd, b"%020.6f\n" % time.time())


class Clock(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def expired(self) -> bool: ...
