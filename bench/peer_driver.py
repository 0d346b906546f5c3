"""Measure ONE worker configuration of one task queue; run by bench/peers.py in the
virtualenv that has the library (worqr_py included: the same driver for all).

    python bench/peer_driver.py NAME --variant V --url redis://127.0.0.1:PORT/DB --n 5000
    python bench/peer_driver.py NAME --variant V --url ... --crash --crash-max 660

Prints one line ``BENCH_RESULT {json}`` on stdout. Throughput (the default mode), on an
emptied database (FLUSHDB of the database in ``--url`` only):

1. N tasks are enqueued with the library's own client (untimed pre-fill).
2. The worker command is spawned in a session of its own. Each task appends its completion
   time to a local stamp file; the driver watches that file's size (no Redis traffic of its
   own) until N stamps, ``--cap`` seconds, or the worker's exit.
3. ``per_s`` = (done - 1) / (last stamp - first stamp): first to last completion.
4. The counters' window opens when the first stamp is seen and closes after the last: worker
   CPU (its whole process tree, from /proc: ``proctree``), Redis CPU (INFO cpu), commands
   and round trips (``redisinfo``), each divided by the tasks completed inside the window.
   So start-up is excluded from every figure.
5. The worker's tree gets SIGTERM, then SIGKILL. ``--crash`` runs ``crash.py`` instead.
6. ``results*`` variants (bench/jobs.py) only: the app reads back the stored results of about
   100 of the completed tasks (``results``: how many checked, how many found and right).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.metadata
import json
import os
import shutil
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

import proctree  # noqa: E402
import redisinfo  # noqa: E402

APPS = {
    "worqr": "worqr_app",
    "rq": "rq_app",
    "huey": "huey_app",
    "saq": "saq_app",
    "dramatiq": "dramatiq_app",
    "taskiq-list": "taskiq_list_app",
    "taskiq-stream": "taskiq_stream_app",
    "celery": "celery_app",
    "arq": "arq_app",
    "bullmq": "bullmq_app",
}


def versions(app: Any) -> dict[str, str | None]:
    if hasattr(app, "VERSION"):
        return {app.__name__.split(".")[-1].removesuffix("_app"): app.VERSION}
    out: dict[str, str | None] = {}
    for dist in [app.DIST, *getattr(app, "EXTRA_DISTS", []), "redis", "hiredis"]:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out


def stamps(path: Path) -> list[tuple[float, int]]:
    """(completion time, task number) per record."""
    data = path.read_bytes().split(b"\n")
    return [(float(t), int(i)) for t, i in (rec.split() for rec in data if rec)]


def count(path: Path) -> int:
    from peerapps import STAMP_LEN

    return path.stat().st_size // STAMP_LEN


def spawn(
    app: Any, variant: str, work: Path, env: dict[str, str], log: str
) -> subprocess.Popen[bytes]:
    argv = app.VARIANTS[variant][1]
    local = Path(sys.executable).parent / argv[0]
    exe = str(local) if local.exists() else shutil.which(argv[0]) or argv[0]
    with (work / log).open("ab") as out:
        return subprocess.Popen(
            [exe, *argv[1:]],
            cwd=work,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the worker's tree; SIGKILL whatever is left after 5 s."""
    pids = proctree.tree(proc.pid)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    end = time.monotonic() + 5.0
    while time.monotonic() < end and proc.poll() is None:
        time.sleep(0.05)
    proctree.kill_tree(proc.pid)
    for pid in pids:
        if pid != proc.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


def log_tail(work: Path, log: str, lines: int = 12) -> list[str]:
    try:
        return (work / log).read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return []


def throughput(
    app: Any, variant: str, n: int, cap: float, url: str, work: Path, env: dict[str, str]
) -> dict[str, Any]:
    probe = redisinfo.raw_connection(url)
    own = redisinfo.calibrate(probe)
    stamp_file = Path(env["BENCH_STAMP_FILE"])
    stamp_file.write_bytes(b"")
    n = app.enqueue(n)
    spawn_t = time.time()
    proc = spawn(app, variant, work, env, "worker.log")
    deadline = time.perf_counter() + cap + 30  # start-up allowance before the first stamp
    died: int | None = None
    k0 = 0
    a = None
    cpu_a = cpu_b = 0.0
    try:
        while count(stamp_file) == 0 and time.perf_counter() < deadline:
            if proc.poll() is not None:
                died = proc.returncode
                break
            time.sleep(0.001)
        if died is None and count(stamp_file) > 0:
            k0 = count(stamp_file)
            cpu_a = proctree.cpu_seconds(proc.pid)
            a = redisinfo.snapshot(probe)
            deadline = time.perf_counter() + cap
            while count(stamp_file) < n and time.perf_counter() < deadline:
                if proc.poll() is not None:
                    died = proc.returncode
                    break
                time.sleep(0.01)
            b = redisinfo.snapshot(probe)
            cpu_b = proctree.cpu_seconds(proc.pid)
    finally:
        stop(proc)
        probe.close()
    st = sorted(t for t, _ in stamps(stamp_file))
    done = len(st)
    window = done - k0
    out: dict[str, Any] = {
        "variant": variant,
        "worker": app.VARIANTS[variant][0],
        "n": n,
        "done": done,
        "capped": done < n,
        "per_s": round((done - 1) / (st[-1] - st[0]), 1) if done > 1 and st[-1] > st[0] else None,
        "first_to_last_s": round(st[-1] - st[0], 4) if done else None,
        "spawn_to_first_s": round(st[0] - spawn_t, 3) if done else None,
        "window_tasks": window,
    }
    if a is not None and window > 0:
        d = redisinfo.delta(a, b, own)
        out["worker_cpu_us_per_task"] = round((cpu_b - cpu_a) * 1e6 / window, 1)
        out["worker_cpu_share"] = round((cpu_b - cpu_a) / d.seconds, 2) if d.seconds else None
        out.update(d.per_task(window))
    check = getattr(app, "check_results", None)
    if check is not None and done:  # results* variants: read back a sample of the results
        numbers = sorted(i for _, i in stamps(stamp_file))
        try:
            got = check(numbers[:: max(1, len(numbers) // 100)])
        except Exception as e:  # a failed read-back is reported, not a lost measurement
            got = {"error": f"{type(e).__name__}: {e}"}
        if got is not None:
            out["results"] = got
    if died is not None or done < n:
        out["worker_exit"] = died
        out["worker_log_tail"] = log_tail(work, "worker.log")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name", choices=sorted(APPS))
    ap.add_argument("--variant", default="default")
    ap.add_argument("--url", required=True, help="redis URL including the database")
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--cap", type=float, default=20.0, help="seconds of processing at most")
    ap.add_argument("--crash", action="store_true", help="the SIGKILL test instead")
    ap.add_argument(
        "--crash-max",
        type=float,
        default=660.0,
        help="SIGKILL test: wait 30 s + the documented reclaim time, at most this",
    )
    args = ap.parse_args()
    redisinfo.check_url(args.url)
    res: dict[str, Any] = {"name": args.name, "variant": args.variant}
    os.environ["BENCH_REDIS_URL"] = args.url
    os.environ["BENCH_VARIANT"] = args.variant  # peerapps.RESULTS: see peerapps/__init__.py
    with tempfile.TemporaryDirectory(prefix=f"bench-{args.name}-") as tmp:
        work = Path(tmp)
        os.environ["BENCH_STAMP_FILE"] = str(work / "stamps")
        try:
            app = importlib.import_module(f"peerapps.{APPS[args.name]}")
            res["versions"] = versions(app)
            res["label"] = app.VARIANTS[args.variant][0]
            res["reclaim"] = list(app.RECLAIM)
        except Exception as e:  # an import failure is a reason to skip, not a crash
            res["skipped"] = f"{type(e).__name__}: {e}"
            print("BENCH_RESULT " + json.dumps(res), flush=True)
            return
        db = redis.Redis.from_url(args.url)
        env = {**os.environ, "PYTHONPATH": str(HERE), "PYTHONUNBUFFERED": "1"}
        try:
            db.flushdb()
            if args.crash:
                import crash

                wait = min(30.0 + app.RECLAIM[0], args.crash_max)
                res["crash"] = crash.run(app, args.variant, wait, work, env)
                res["crash"]["documented_reclaim"] = list(app.RECLAIM)
            else:
                res["process"] = throughput(
                    app, args.variant, args.n, args.cap, args.url, work, env
                )
        except Exception as e:
            res["error"] = f"{type(e).__name__}: {e}"
            res["traceback"] = traceback.format_exc().splitlines()[-8:]
        finally:
            db.flushdb()
            db.close()
    print("BENCH_RESULT " + json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
