"""worqr_py, driven like the peers: ``python -m peerapps.worqr_app VARIANT`` is the worker
(through the public API only: ``Worqr(url).run(...)`` / ``AsyncWorqr(url).run(...)``), and
``enqueue`` pre-fills the queue with ``Worqr.enqueue`` in lists of 1,000."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import worqr_py
from worqr_py import AsyncWorqr, Process, Worqr

from peerapps import URL, aslow, slow, stamp

VERSION = worqr_py.__version__
PREFIX, QUEUE = "bench", "bench"
PROCS = 4
_PY = ["python", "-m", "peerapps.worqr_app"]
VARIANTS = {
    "default": ("Worqr.run (defaults: concurrency 1, prefetch 1)", [*_PY, "default"]),
    "prefetch10": ("Worqr.run prefetch=10 (concurrency 1)", [*_PY, "prefetch10"]),
    "async": ("AsyncWorqr.run (defaults: concurrency 1, prefetch 1)", [*_PY, "async"]),
    "procs4": (f"{PROCS} processes of Worqr.run (defaults)", [*_PY, "procs4"]),
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


def enqueue(n: int) -> int:
    with Worqr(URL, prefix=PREFIX) as w:
        for s in range(0, n, 1000):
            w.enqueue(QUEUE, [str(i) for i in range(s, min(n, s + 1000))])
    return n


def main(variant: str) -> None:
    if variant == "default":
        Worqr(URL, prefix=PREFIX).run(QUEUE, handler)
    elif variant == "prefetch10":
        Worqr(URL, prefix=PREFIX).run(QUEUE, handler, prefetch=10)
    elif variant == "async":
        asyncio.run(AsyncWorqr(URL, prefix=PREFIX).run(QUEUE, ahandler))
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
