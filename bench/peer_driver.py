"""Measure ONE peer task queue; run by bench/peers.py inside the peers' virtualenv.

    python bench/peer_driver.py NAME --url redis://127.0.0.1:PORT/9 --n 5000 [--cap 30]

Prints one line ``BENCH_RESULT {json}`` on stdout.  Phases, each on an emptied database
(FLUSHDB of the database in ``--url`` only, outside any measured window):

1. enqueue one by one: N tasks after one warm-up task; tasks/s, commands and round trips.
2. batched enqueue (if the library has a batch API): N tasks in batches of ``--batch``.
3. processing: N tasks are enqueued (not timed), then the worker CLI is spawned as a
   subprocess in its own session; each task appends a timestamp to a local stamp file,
   and the driver watches that file's size (no Redis traffic of ours) until N stamps or
   ``--cap`` seconds.  ``per_s`` = (done - 1) / (last stamp - first stamp), i.e. from the
   first job's end to the last job's end; ``spawn_to_done_s`` = worker spawn -> last
   stamp, which includes the worker's start-up.  Commands/round trips cover spawn ->
   last stamp (+50 ms grace), so they include the worker's start-up and idle polling,
   divided by the jobs done.  The worker's process group gets SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.metadata
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import redis  # noqa: E402

import redisinfo  # noqa: E402

APPS = {
    "rq": "rq_app",
    "huey": "huey_app",
    "saq": "saq_app",
    "dramatiq": "dramatiq_app",
    "taskiq-list": "taskiq_list_app",
    "taskiq-stream": "taskiq_stream_app",
    "celery": "celery_app",
    "arq": "arq_app",
}


class WindowClock:
    """Times one enqueue window and takes the Redis snapshots around it."""

    def __init__(self, probe: redis.Redis, own: redisinfo.Overhead, cap: float) -> None:
        self.probe, self.own, self.cap = probe, own, cap
        self.a: redisinfo.Snapshot | None = None
        self.delta: redisinfo.Delta | None = None
        self.deadline = float("inf")

    def start(self) -> None:
        self.a = redisinfo.snapshot(self.probe)
        self.deadline = time.perf_counter() + self.cap

    def expired(self) -> bool:
        return time.perf_counter() > self.deadline

    def stop(self) -> None:
        assert self.a is not None
        self.delta = redisinfo.delta(self.a, redisinfo.snapshot(self.probe), self.own)


class NoClock:
    def __init__(self, cap: float) -> None:
        self.deadline = time.perf_counter() + cap

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def expired(self) -> bool:
        return time.perf_counter() > self.deadline


def canary(r: redis.Redis, count: int = 1000, cap: float = 2.0) -> float:
    """PING round trips/s just before this peer runs: how fast loopback is right now."""
    t0 = time.perf_counter()
    done = 0
    while done < count and time.perf_counter() - t0 < cap:
        r.ping()
        done += 1
    return round(done / (time.perf_counter() - t0), 1)


def versions(app: Any) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for dist in [app.DIST, *getattr(app, "EXTRA_DISTS", []), "redis", "hiredis"]:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out


def enqueue_phase(
    app: Any, n: int, batch: int, probe: redis.Redis, own: redisinfo.Overhead, cap: float
) -> dict[str, Any]:
    clock = WindowClock(probe, own, cap)
    done = app.enqueue(n, batch, clock, True)
    assert clock.delta is not None
    secs = clock.delta.seconds
    return {
        "n": n,
        "done": done,
        "capped": done < n,
        "batch_size": batch,
        "seconds": round(secs, 4),
        "per_s": round(done / secs, 1) if done else None,
        **clock.delta.per_task(done),
    }


def stamps(path: Path) -> list[float]:
    data = path.read_bytes()
    return [float(x) for x in data.split()]


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the worker's process group, SIGKILL it if it is still there after 5 s."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        end = time.monotonic() + 5.0
        while time.monotonic() < end:
            proc.poll()  # reap the leader, or the group never looks empty
            try:
                os.killpg(proc.pid, 0)  # children may outlive the leader
            except ProcessLookupError:
                return
            time.sleep(0.1)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


def process_phase(
    app: Any,
    name: str,
    n: int,
    variant: str,
    probe: redis.Redis,
    own: redisinfo.Overhead,
    cap: float,
    work: Path,
    env: dict[str, str],
) -> dict[str, Any]:
    from peerapps import STAMP_LEN  # after main() has set BENCH_REDIS_URL

    label, argv = app.VARIANTS[variant]
    stamp_file = Path(env["BENCH_STAMP_FILE"])
    stamp_file.write_bytes(b"")
    enq = app.enqueue(n, 50 if app.HAS_BATCH else 1, NoClock(120.0), False)
    exe = Path(sys.executable).parent / argv[0]
    log = (work / f"{name}-worker.log").open("wb")
    a = redisinfo.snapshot(probe)
    spawn = time.time()
    proc = subprocess.Popen(
        [str(exe), *argv[1:]],
        cwd=work,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.perf_counter() + cap
    died = None
    try:
        while True:
            time.sleep(0.02)
            count = stamp_file.stat().st_size // STAMP_LEN
            if count >= enq or time.perf_counter() > deadline:
                break
            if proc.poll() is not None:
                died = proc.returncode
                break
        time.sleep(0.05)
        d = redisinfo.delta(a, redisinfo.snapshot(probe), own)
        st = sorted(stamps(stamp_file))  # the jobs that the snapshot window covers
    finally:
        kill_group(proc)
        log.close()
    done = len(st)
    out: dict[str, Any] = {
        "variant": variant,
        "worker": label,
        "n": enq,
        "done": done,
        "capped": done < enq,
        "per_s": round((done - 1) / (st[-1] - st[0]), 1) if done > 1 and st[-1] > st[0] else None,
        "rate_method": "(done-1)/(last stamp - first stamp)",
        "first_to_last_s": round(st[-1] - st[0], 4) if done else None,
        "spawn_to_first_s": round(st[0] - spawn, 4) if done else None,
        "spawn_to_done_s": round(st[-1] - spawn, 4) if done == enq and done else None,
        "window_s": round(d.seconds, 4),
        **d.per_task(done),
    }
    if died is not None or done == 0:
        tail = (work / f"{name}-worker.log").read_text(errors="replace").splitlines()[-15:]
        out["worker_exit"] = died
        out["worker_log_tail"] = tail
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name", choices=sorted(APPS))
    ap.add_argument("--url", required=True, help="redis URL including the database")
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--cap", type=float, default=30.0, help="seconds per measurement")
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--variant", default="c1")
    args = ap.parse_args()
    redisinfo.check_url(args.url)
    res: dict[str, Any] = {"name": args.name, "python": sys.version.split()[0]}
    os.environ["BENCH_REDIS_URL"] = args.url
    with tempfile.TemporaryDirectory(prefix=f"bench-{args.name}-") as tmp:
        work = Path(tmp)
        os.environ["BENCH_STAMP_FILE"] = str(work / "stamps")
        try:
            app = importlib.import_module(f"peerapps.{APPS[args.name]}")
        except Exception as e:  # an import failure is a reason to skip, not a crash
            res["skipped"] = f"import failed: {type(e).__name__}: {e}"
            print("BENCH_RESULT " + json.dumps(res), flush=True)
            return
        res.update(
            versions=versions(app),
            version=versions(app)[app.DIST],
            crash=app.CRASH,
            notes=app.NOTES,
        )
        if args.variant not in app.VARIANTS:
            res["skipped"] = f"no worker variant {args.variant!r} for {args.name}"
            print("BENCH_RESULT " + json.dumps(res), flush=True)
            return
        db = redis.Redis.from_url(args.url)
        probe = redisinfo.raw_connection(args.url)
        own = redisinfo.calibrate(probe)
        env = {**os.environ, "PYTHONPATH": str(HERE), "PYTHONUNBUFFERED": "1"}
        try:
            db.flushdb()
            res["canary_ping_per_s"] = canary(probe)
            res["enqueue"] = enqueue_phase(app, args.n, 1, probe, own, args.cap)
            db.flushdb()
            if app.HAS_BATCH:
                res["batch"] = enqueue_phase(app, args.n, args.batch, probe, own, args.cap)
                db.flushdb()
            res["process"] = process_phase(
                app, args.name, args.n, args.variant, probe, own, args.cap, work, env
            )
        except Exception as e:
            res["error"] = f"{type(e).__name__}: {e}"
            res["traceback"] = traceback.format_exc().splitlines()[-8:]
        finally:
            db.flushdb()
    print("BENCH_RESULT " + json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
