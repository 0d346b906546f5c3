"""BullMQ (Node.js, ioredis): the worker and the producer are bench/node/*.mjs. BullMQ keeps
completed jobs with their return value (``returnvalue`` in the job's hash) by default: in the
``results*`` variants the worker returns ``i + 1``."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from peerapps import RESULTS, URL

NODE_DIR = Path(__file__).resolve().parent.parent / "node"
VERSION = json.loads((NODE_DIR / "node_modules/bullmq/package.json").read_text())["version"]
_WORKER = str(NODE_DIR / "worker.mjs")
VARIANTS = {
    "default": ("BullMQ Worker (default: concurrency 1)", ["node", _WORKER, "1"]),
    "c10": ("BullMQ Worker concurrency 10", ["node", _WORKER, "10"]),
    "results": ("BullMQ Worker (default: concurrency 1)", ["node", _WORKER, "1"]),
    "results-c10": ("BullMQ Worker concurrency 10", ["node", _WORKER, "10"]),
}
RECLAIM = (
    90,
    "the lock (lockDuration 30 s) expires; the stalled check, every 30 s, marks the job on one "
    "pass and moves it back on the next",
)


def enqueue(n: int) -> int:
    out = subprocess.run(
        ["node", str(NODE_DIR / "enqueue.mjs"), str(n)],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ,
        timeout=120,
    )
    return int(out.stdout.split()[-1])


def check_results(numbers: list[int]) -> dict[str, int] | None:
    """results*: how many of these task numbers' jobs have the returnvalue i + 1 (addBulk
    into an empty queue numbers the jobs 1..n in order: job i + 1 must hold ``{"i": i}``)."""
    if not RESULTS:
        return None
    import redis

    r = redis.Redis.from_url(URL)
    ok = 0
    for i in numbers:
        data, value = r.hmget(f"bull:bench:{i + 1}", ["data", "returnvalue"])
        ok += bool(data and json.loads(data) == {"i": i} and value and json.loads(value) == i + 1)
    r.close()
    return {"checked": len(numbers), "stored": ok}
