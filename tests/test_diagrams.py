"""The diagrams in diagrams/ are generated from a real Redis and must match the code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from worqr_py.keys import Keys
from worqr_py.state import render

from .conftest import FAST

ROOT = Path(__file__).resolve().parent.parent


def test_committed_diagrams_match_a_fresh_generation() -> None:
    done = subprocess.run(
        [sys.executable, "diagrams/generate.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_snapshot_finds_every_key_from_the_registry(make: Any, r: Any, prefix: str) -> None:
    w = make(**FAST)
    w.start_worker()
    w.start_work("jobs")
    w.enqueue("jobs", ["a", "b"])
    p = w.dequeue("jobs")
    snap = w.snapshot()
    k = Keys(prefix)
    assert snap[k.queue("jobs").q] == ("list", ["b"])
    assert snap[k.queue("jobs").procs(w.worker_id)] == ("hash", {"1": "a"})
    assert set(snap) == set(r.keys(f"*{prefix}*")) - {k.supervisor} | ({k.supervisor} & set(snap))
    picture = render(snap, {w.worker_id: "W1"})
    assert "worqr" not in picture or prefix in picture
    assert "| 1: a |" in picture and "W1" in picture and p.task == "a"
