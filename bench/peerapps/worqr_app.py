"""worqr_py, driven like the peers: ``python -m peerapps.worqr_app VARIANT`` is the worker
(through the public API only: ``Worqr(url).run(...)`` / ``AsyncWorqr(url).run(...)``), and
``enqueue`` pre-fills the queue with ``Worqr.enqueue`` in lists of 1,000. The ``results*``
variants (bench/jobs.py) are jobs instead: ``Worqr.submit(QUEUE, "add", i, 1)`` one by one
(there is no batch submit), run by ``Worqr.run_jobs``, which stores each result (JSON) in the
script call that acks the job."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import worqr_py
from worqr_py import AsyncWorqr, Process, Worqr

from peerapps import RESULTS, URL, aslow, slow, stamp

VERSION = worqr_py.__version__
PREFIX, QUEUE = "bench", "bench"
PROCS = 4
_PY = ["python", "-m", "peerapps.worqr_app"]
VARIANTS = {
    "default": ("Worqr.run (defaults: concurrency 1, prefetch 1)", [*_PY, "default"]),
    "prefetch10": ("Worqr.run prefetch=10 (concurrency 1)", [*_PY, "prefetch10"]),
    "async": ("AsyncWorqr.run (defaults: concurrency 1, prefetch 1)", [*_PY, "async"]),
    "procs4": (f"{PROCS} processes of Worqr.run (defaults)", [*_PY, "procs4"]),
    "results": ("Worqr.run_jobs (defaults: concurrency 1, prefetch 1)", [*_PY, "results"]),
    "results-prefetch10": (
        "Worqr.run_jobs prefetch=10 (concurrency 1)",
        [*_PY, "results-prefetch10"],
    ),
}
RECLAIM = (4, "a live peer reclaims after heartbeat_ttl 3 s + heartbeat_interval 1 s")


def handler(p: Process) -> None:
    i = int(p.task)
    slow(i)
    stamp(i)


async def ahandler(p: Process) -> None:
    i = int(p.task)
    await aslow(i)
    stamp(i)


def add(a: int, b: int) -> int:
    """The job of the ``results*`` variants: its return value is the stored result."""
    slow(a)
    stamp(a)
    return a + b


JOB_IDS: list[str] = []  # results*: the id of the job of task number i (this process only)


def enqueue(n: int) -> int:
    with Worqr(URL, prefix=PREFIX) as w:
        if RESULTS:
            JOB_IDS[:] = [w.submit(QUEUE, "add", i, 1).id for i in range(n)]
            return n
        for s in range(0, n, 1000):
            w.enqueue(QUEUE, [str(i) for i in range(s, min(n, s + 1000))])
    return n


def check_results(numbers: list[int]) -> dict[str, int] | None:
    """results*: how many of these task numbers' jobs are finished with result i + 1."""
    if not RESULTS:
        return None
    with Worqr(URL, prefix=PREFIX) as w:
        infos = [(i, w.get_job(JOB_IDS[i])) for i in numbers]
    ok = sum(1 for i, j in infos if j and j.status == "finished" and j.result == i + 1)
    return {"checked": len(numbers), "stored": ok}


def main(variant: str) -> None:
    if variant == "default":
        Worqr(URL, prefix=PREFIX).run(QUEUE, handler)
    elif variant == "prefetch10":
        Worqr(URL, prefix=PREFIX).run(QUEUE, handler, prefetch=10)
    elif variant == "async":
        asyncio.run(AsyncWorqr(URL, prefix=PREFIX).run(QUEUE, ahandler))
    elif variant in ("results", "results-prefetch10"):
        prefetch = 10 if variant == "results-prefetch10" else 1
        Worqr(URL, prefix=PREFIX).run_jobs({"add": add}, QUEUE, prefetch=prefetch)
    elif variant == "procs4":  # children stay in this process group: killed with it
        kids = [
            subprocess.Popen([sys.executable, "-m", "peerapps.worqr_app", "default"])
            for _ in range(PROCS)
        ]
        for k in kids:
            k.wait()
    else:
        raise SystemExit(f"unknown variant {variant!r}")


if __name__ == "__main__":
    main(sys.argv[1])
