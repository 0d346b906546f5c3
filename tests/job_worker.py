"""Job functions for the job runtime tests, and a job worker in its own process (for the
SIGKILL and Ctrl-C tests): ``python -m tests.job_worker URL PREFIX QUEUE INTERVAL TTL
[ISOLATION [DRIVER]]`` runs ``run_jobs`` with ``FUNCTIONS`` until killed or signalled.
Module-level, so ``isolation="process"`` children import them.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from worqr_py import AsyncWorqr, Worqr
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


def nap_pid(path: str, seconds: float) -> str:
    """Writes its process id to ``path``, then sleeps ``seconds`` and returns."""
    Path(path).write_text(str(os.getpid()))
    time.sleep(seconds)
    return "rested"


def hold_grandchild(path: str) -> None:
    """Starts a process of its own (``sleep``), writes that one's id to ``path``, then
    blocks (until the process is killed)."""
    proc = subprocess.Popen(["sleep", "3600"])
    Path(path).write_text(str(proc.pid))
    time.sleep(3600)


def linger(path: str) -> str:
    """Writes its process id to ``path`` and returns at once, leaving a thread (not a
    daemon) that keeps its process running."""
    threading.Thread(target=time.sleep, args=(3600,)).start()
    Path(path).write_text(str(os.getpid()))
    return "returned"


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
_ALL += (aexits, hold_pid, nap_pid, hold_grandchild, linger)
FUNCTIONS = {f.__name__: f for f in (*_ALL, child_of_child)}


def spawn(
    url: str,
    prefix: str,
    queue: str,
    interval: float,
    ttl: float,
    isolation: str = "thread",
    driver: str = "sync",
) -> Any:
    """This module as a job worker process on ``queue`` (``run_jobs(FUNCTIONS, queue)``), its
    heartbeat every ``interval`` with ``ttl``: a worker a test can SIGKILL, or signal as a
    terminal does (it leads a process group of its own, as a shell's job does)."""
    root = Path(__file__).resolve().parent.parent
    args = [url, prefix, queue, str(interval), str(ttl), isolation, driver]
    cmd = [sys.executable, "-m", "tests.job_worker", *args]
    return subprocess.Popen(cmd, cwd=root, start_new_session=True)


def main() -> None:
    url, prefix, queue, interval, ttl = sys.argv[1:6]
    isolation = sys.argv[6] if len(sys.argv) > 6 else "thread"
    options: dict[str, Any] = {"heartbeat_interval": float(interval), "heartbeat_ttl": float(ttl)}
    if len(sys.argv) > 7 and sys.argv[7] == "async":
        aw = AsyncWorqr(url, prefix=prefix, **options)
        asyncio.run(aw.run_jobs(FUNCTIONS, queue, isolation=isolation))
        return
    w = Worqr(url, prefix=prefix, **options)
    w.run_jobs(FUNCTIONS, queue, isolation=isolation)


if __name__ == "__main__":
    main()
