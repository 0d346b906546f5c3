"""The SIGKILL test of one worker configuration (``peer_driver.py NAME --crash``).

1. ``TASKS`` tasks numbered 0..19 are enqueued with the library's client; each sleeps
   ``SLEEP`` s, then stamps its number.
2. The configuration under test starts; ``SLEEP / 2`` s after its first task STARTED (each
   task appends a start record before its sleep), so that at least that task is mid-run, its
   whole process tree gets SIGKILL at once (``proctree.kill_tree``: a machine dying, no
   shutdown). The tasks started but not completed at that instant are "in flight"; a test
   with none in flight is reported as invalid, not as survived.
3. A fresh worker with the library's DEFAULT configuration starts, and the driver waits until
   every task number has been stamped at least once, or ``wait`` seconds after the kill.
4. survived = every task completed at least once; lost = how many never did; duplicates =
   completions beyond the first (at-least-once delivery is allowed to run a task twice).

The driver prints ``CRASH_WAITING`` once the fresh worker has had 3 s to start, so that
bench/run.py can start its timed measurements after the start-up bursts of these tests.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import peer_driver as pd
import proctree

TASKS = 20
SLEEP = 0.5


def run(app: Any, variant: str, wait: float, work: Path, env: dict[str, str]) -> dict[str, Any]:
    start_file = work / "starts"
    env = {**env, "BENCH_TASK_SLEEP": str(SLEEP), "BENCH_START_FILE": str(start_file)}
    stamp_file = Path(env["BENCH_STAMP_FILE"])
    stamp_file.write_bytes(b"")
    start_file.write_bytes(b"")
    app.enqueue(TASKS)
    out: dict[str, Any] = {
        "tasks": TASKS,
        "task_sleep_s": SLEEP,
        "wait_s": wait,
        "restart": app.VARIANTS["default"][0],
    }
    first = spawn_and_wait_first(app, variant, work, env, out, start_file)
    if first is None:
        print("CRASH_WAITING", flush=True)
        return out
    time.sleep(SLEEP / 2)
    # Kill while a task is in flight (started, not completed): on a loaded machine the
    # task seen starting may already be done by now; then wait for the next one to start.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done = {i for _, i in pd.stamps(stamp_file)}
        if {i for _, i in pd.stamps(start_file)} - done or len(done) >= TASKS:
            break
        time.sleep(0.002)
    killed = proctree.kill_tree(first.pid)
    t_kill = time.time()
    first.wait(5)
    # Read after the kill: nothing of the killed tree can start or complete a task any more.
    done = {i for _, i in pd.stamps(stamp_file)}
    started = {i for _, i in pd.stamps(start_file)}
    out["done_before_kill"] = len(done)
    out["in_flight_at_kill"] = len(started - done)
    out["killed_processes"] = len(killed)
    if not started - done:
        out["error"] = "invalid test: no task was in flight at the kill"
    fresh = pd.spawn(app, "default", work, env, "fresh.log")
    time.sleep(3)
    print("CRASH_WAITING", flush=True)
    seen: set[int] = set()
    try:
        while time.time() < t_kill + wait:
            seen = {i for _, i in pd.stamps(stamp_file)}
            if len(seen) >= TASKS:
                break
            time.sleep(0.2)
        recs = pd.stamps(stamp_file)
    finally:
        pd.stop(fresh)
    seen = {i for _, i in recs}
    out["completed"] = len(seen)
    out["lost"] = TASKS - len(seen)
    out["duplicates"] = len(recs) - len(seen)
    out["survived"] = len(seen) == TASKS and "error" not in out
    if out["survived"]:
        out["all_done_after_kill_s"] = round(max(t for t, _ in recs) - t_kill, 1)
    else:
        out["fresh_log_tail"] = pd.log_tail(work, "fresh.log", 5)
    return out


def spawn_and_wait_first(
    app: Any, variant: str, work: Path, env: dict[str, str], out: dict[str, Any], start_file: Path
) -> Any:
    """Start the configuration under test; return it once a task started (else None)."""
    proc = pd.spawn(app, variant, work, env, "worker.log")
    deadline = time.monotonic() + 60
    while pd.count(start_file) == 0:
        if proc.poll() is not None or time.monotonic() > deadline:
            out["error"] = "the worker under test started no task within 60 s"
            out["worker_log_tail"] = pd.log_tail(work, "worker.log")
            pd.stop(proc)
            return None
        time.sleep(0.005)
    return proc
