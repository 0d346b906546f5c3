"""BullMQ (Node.js, ioredis): the worker and the producer are bench/node/*.mjs."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

NODE_DIR = Path(__file__).resolve().parent.parent / "node"
VERSION = json.loads((NODE_DIR / "node_modules/bullmq/package.json").read_text())["version"]
_WORKER = str(NODE_DIR / "worker.mjs")
VARIANTS = {
    "default": ("BullMQ Worker (default: concurrency 1)", ["node", _WORKER, "1"]),
    "c10": ("BullMQ Worker concurrency 10", ["node", _WORKER, "10"]),
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
