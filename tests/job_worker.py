"""Job functions for the job runtime tests, and a job worker in its own process (for the
SIGKILL test): ``python -m tests.job_worker URL PREFIX QUEUE INTERVAL TTL`` runs ``run_jobs``
with ``FUNCTIONS`` until killed. Module-level, so ``isolation="process"`` children import them.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from worqr_py import Worqr
from worqr_py.runtime.jobs import JobContext


def add(a: int, b: int) -> int:
    return a + b


def greet(name: str, *, punctuation: str = "!", job: JobContext) -> dict[str, Any]:
    return {"text": f"hello {name}{punctuation}", "id": job.id, "attempt": job.attempt}


def spin(n: int) -> int:
    """A CPU loop in Python: only a timeout ends it."""
    while True:
        n += 1


async def nap(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "rested"


def boom(message: str) -> None:
    raise ValueError(message)


def unserializable() -> object:
    return object()


def hold(*, job: JobContext) -> str:
    """Blocks on its first attempt (until the process is killed); returns on the next."""
    if job.attempt == 1:
        time.sleep(3600)
    return f"done on attempt {job.attempt}"


def pid() -> int:
    return os.getpid()


def hold_pid(path: str) -> None:
    """Writes its process id to ``path``, then blocks (until the process is killed)."""
    Path(path).write_text(str(os.getpid()))
    time.sleep(3600)


async def upstream_timeout() -> None:
    """A coroutine whose own TimeoutError is its error, not a job timeout."""
    raise TimeoutError("upstream did not answer")


def stubborn(n: int) -> int:
    """A CPU loop that swallows every Exception: the timeout must still end it."""
    while True:
        try:
            n += 1
        except Exception:
            continue


def exits(code: int) -> None:
    """``sys.exit`` in a job (argparse does it on bad arguments): a failure of the job."""
    sys.exit(code)


async def aexits(code: int) -> None:
    raise SystemExit(code)


def child_of_child() -> int:
    """Starts a process of its own: allowed in a process-isolated job (not a daemon)."""
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(target=os.getpid)
    proc.start()
    proc.join(30)
    return proc.exitcode if proc.exitcode is not None else -1


_ALL = (add, greet, spin, nap, boom, unserializable, hold, pid, upstream_timeout, stubborn, exits)
_ALL += (aexits, hold_pid)
FUNCTIONS = {f.__name__: f for f in (*_ALL, child_of_child)}


def spawn(url: str, prefix: str, queue: str, interval: float, ttl: float) -> Any:
    """This module as a job worker process on ``queue`` (``run_jobs(FUNCTIONS, queue)``), its
    heartbeat every ``interval`` with ``ttl``: a worker a test can SIGKILL."""
    root = Path(__file__).resolve().parent.parent
    args = [url, prefix, queue, str(interval), str(ttl)]
    return subprocess.Popen([sys.executable, "-m", "tests.job_worker", *args], cwd=root)


def main() -> None:
    url, prefix, queue, interval, ttl = sys.argv[1:6]
    w = Worqr(url, prefix=prefix, heartbeat_interval=float(interval), heartbeat_ttl=float(ttl))
    w.run_jobs(FUNCTIONS, queue)


if __name__ == "__main__":
    main()
