"""The diagrams in diagrams/ are generated from a real Redis and must match the code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from worqr_py.core.keys import Keys
from worqr_py.tools.render import render

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
    assert snap[k.queue("jobs").tasks] == ("list", ["b"])
    assert snap[k.queue("jobs").processes(w.worker_id)] == ("hash", {"1": "a"})
    assert set(snap) == set(r.keys(f"*{prefix}*")) - {k.supervisor} | ({k.supervisor} & set(snap))
    picture = render(snap, {w.worker_id: "W1"})
    assert "worqr" not in picture or prefix in picture
    assert "| 1: a |" in picture and "W1" in picture and p.task == "a"


def test_snapshot_includes_dead_letters_unique_locks_and_done_listeners(
    make: Any, r: Any, prefix: str
) -> None:
    w = make(**FAST, max_deliveries=1)
    w.on_done("jobs", lambda event: None)  # sets the done-listener key
    w.start_worker()
    w.start_work("jobs")
    w.enqueue("jobs", "doomed")
    assert w.enqueue("jobs", "only-one", unique=True)
    doomed = w.dequeue("jobs")
    assert doomed.task == "doomed" and w.stop_process(doomed.id)  # 1 delivery: dead-lettered
    snap = w.snapshot()
    k = Keys(prefix).queue("jobs")
    assert snap[k.dead] == ("list", ["doomed"])
    assert snap[k.locks] == ("hash", {"only-one": "q"})
    assert snap[k.done_listeners][0] == "string"
    assert set(snap) == set(r.keys(f"*{prefix}*")) - {Keys(prefix).supervisor} | (
        {Keys(prefix).supervisor} & set(snap)
    )
    picture = render(snap)
    assert (
        f"{k.dead} : list" in picture
        and f"{k.locks} : hash" in picture
        and k.done_listeners in picture
    )
