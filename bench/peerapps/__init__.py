"""One small app per task queue, imported both by bench/peer_driver.py (to enqueue) and by
the library's own worker (to run the task), so the task names match.

Each app module defines:

* ``DIST``: the distribution whose version is reported (``VERSION`` instead, if not Python);
* a no-op task taking an int ``i``; its only work is :func:`stamp` (in the SIGKILL test
  only, :func:`slow` / :func:`aslow` first: a start record, then ``SLEEP`` seconds of sleep);
* ``enqueue(n) -> int``: enqueue tasks ``0..n-1`` with the library's own client (its batch
  API where it has one: this is the untimed pre-fill of the queue), returns ``n``;
* ``VARIANTS``: ``{name: (label, argv)}``; argv starts with the console script, found next
  to the interpreter (or on PATH); ``"default"`` is the library's default worker;
* ``RECLAIM``: ``(seconds, text)``: how long after a SIGKILL the library documents that a
  task held by the dead worker runs again (``0``: no such mechanism), and where that
  figure comes from. The SIGKILL test waits 30 s plus that (capped by ``--crash-max``).

Jobs with results (bench/jobs.py): an app that has them also defines ``results*`` variants
(``RESULTS`` is true when the driver runs one of those: ``BENCH_VARIANT``, set by the driver
for itself and the worker). Then ``enqueue`` submits ``add(i, 1)`` (stamps ``i``, returns
``i + 1``) instead of the no-op, the app is configured to store results in Redis, and
``check_results(numbers) -> {"checked", "stored"}`` reads back the stored result of those
task numbers (the driver calls it with a sample of the completed ones, after the worker has
stopped); it returns ``None`` outside a ``results*`` variant.

The apps read the server URL from ``BENCH_REDIS_URL``, the stamp file from
``BENCH_STAMP_FILE``, and in the SIGKILL test the start file from ``BENCH_START_FILE`` and
the task's sleep from ``BENCH_TASK_SLEEP`` (default 0: no start record, no sleep).
"""

from __future__ import annotations

import os
import time

URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:0/9")
SLEEP = float(os.environ.get("BENCH_TASK_SLEEP", "0") or 0)
VARIANT = os.environ.get("BENCH_VARIANT", "")
RESULTS = VARIANT.startswith("results")
STAMP_LEN = 31  # b"%020.6f %09d\n": completion time, task number

_fd: int | None = None


def stamp(i: int) -> None:
    """Append this task's completion time and number to the stamp file (one fixed-size
    record; O_APPEND keeps records whole across processes). This replaces a Redis counter so
    that the driver counts finished tasks without sending a single command."""
    global _fd
    if _fd is None:
        path = os.environ["BENCH_STAMP_FILE"]
        _fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(_fd, b"%020.6f %09d\n" % (time.time(), i))


def _started(i: int) -> None:
    fd = os.open(os.environ["BENCH_START_FILE"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, b"%020.6f %09d\n" % (time.time(), i))
    os.close(fd)


def slow(i: int) -> None:
    """The SIGKILL test's task body (sync tasks): record the start, sleep."""
    if SLEEP:
        _started(i)
        time.sleep(SLEEP)


async def aslow(i: int) -> None:
    """The SIGKILL test's task body (async tasks): record the start, sleep."""
    if SLEEP:
        import asyncio

        _started(i)
        await asyncio.sleep(SLEEP)
