"""``worqr demo``: several worker processes share a queue, one is SIGKILLed mid-task, a peer
reclaims its tasks, and every task finishes. Uses the Redis at the URL if one answers, else a
throwaway embedded redis-server (chosen by ``embedded.redis_binary``), stopped at the end.

``work`` is the demo's handler, run by each worker process through ``worqr worker``: it takes
``$WORQR_DEMO_MS`` milliseconds, then records the task in a ledger hash, so the summary can
count duplicates (a task recorded twice) honestly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from functools import cache

import redis
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..core.keys import split_process_id
from ..core.model import Process
from ..core.redact import redact_url
from ..drivers._sync.client import Worqr
from .embedded import EmbeddedRedis

INTERVAL, TTL = 0.25, 1.0


@cache
def _ledger() -> redis.Redis:
    return redis.Redis.from_url(os.environ["WORQR_DEMO_URL"])


def work(process: Process) -> None:
    """The demo handler: pretend to work, then record that this task was done (and, once,
    which OS process this worker is, so the demo can SIGKILL it)."""
    ledger = os.environ["WORQR_DEMO_LEDGER"]
    _register(ledger, process.id)
    time.sleep(int(os.environ.get("WORQR_DEMO_MS", "20")) / 1000)
    _ledger().hincrby(ledger, process.task, 1)


def _register(ledger: str, pid: str) -> None:
    parts = split_process_id(pid)
    if parts and parts[1] not in _seen:
        _seen.add(parts[1])
        _ledger().hset(f"{ledger}:pids", parts[1], os.getpid())


_seen: set[str] = set()


def _reachable(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except (redis.RedisError, ValueError):
        return False


def run_demo(url: str, count: int, nworkers: int, ms: int, console: Console) -> int:
    server = None
    if not _reachable(url):
        server = EmbeddedRedis().start()
        console.print(
            f"No Redis at {redact_url(url)}: "
            f"started a throwaway redis-server on port {server.port}."
        )
        url = server.url
    try:
        return _demo(url, count, max(2, nworkers), ms, console)
    finally:
        if server is not None:
            server.stop()


def _demo(url: str, count: int, nworkers: int, ms: int, console: Console) -> int:
    prefix, ledger = f"demo-{uuid.uuid4().hex[:8]}", f"demo-ledger-{uuid.uuid4().hex[:8]}"
    r = redis.Redis.from_url(url, decode_responses=True)
    env = {
        **os.environ,
        "WORQR_DEMO_URL": url,
        "REDIS_URL": url,  # not --url: a password in argv would show in `ps`
        "WORQR_DEMO_LEDGER": ledger,
        "WORQR_DEMO_MS": str(ms),
    }
    cmd = [
        sys.executable,
        "-m",
        "worqr_py",
        "--prefix",
        prefix,
        "worker",
        "worqr_py.tools.demo:work",
        "-q",
        "demo",
        "-c",
        "2",
        "--grace",
        "5",
        "--heartbeat-interval",
        str(INTERVAL),
        "--heartbeat-ttl",
        str(TTL),
    ]
    watcher = Worqr(url, prefix=prefix)
    procs: list[subprocess.Popen[bytes]] = []
    started = time.monotonic()
    try:
        watcher.enqueue("demo", [f"task-{i:04d}" for i in range(count)])
        procs = [subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL) for _ in range(nworkers)]
        console.print(
            f"{count} tasks, {nworkers} worker processes (heartbeat {INTERVAL}s, ttl {TTL}s)"
        )
        reclaimed, recovery = 0, None
        victim: tuple[str, int, float] | None = None
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as bar:
            job = bar.add_task("done", total=count)
            deadline = time.monotonic() + 60 + count * ms / 1000
            run_id = r.info("server")["run_id"]
            while time.monotonic() < deadline:
                done = r.hlen(ledger)
                if (now := r.info("server")["run_id"]) != run_id:
                    run_id = now
                    bar.console.print(
                        "[bold red]Redis restarted: without persistence its queued tasks are "
                        "lost[/]"
                    )
                if done >= count and (victim is None or recovery is not None):
                    break
                bar.update(job, completed=done)
                if victim is None and done >= count // 3:
                    victim = _kill_busiest(watcher, r, ledger, procs, bar.console)
                elif victim and recovery is None and victim[0] not in watcher.get_workers():
                    reclaimed, recovery = victim[1], time.monotonic() - victim[2]
                    bar.console.print(
                        f"a peer reclaimed {reclaimed} task(s) of {victim[0][:8]}, "
                        f"{recovery:.2f}s after the SIGKILL"
                    )
                time.sleep(0.05)
            bar.update(job, completed=r.hlen(ledger))
        counts = [int(n) for n in r.hvals(ledger)]
        twice = sum(n > 1 for n in counts)
        elapsed = time.monotonic() - started
        console.print(
            f"summary: done {len(counts)}/{count}, reclaimed {reclaimed}, "
            f"duplicates {twice}, time {elapsed:.1f}s"
            + (f", recovery {recovery:.2f}s" if recovery is not None else "")
        )
        return 0 if len(counts) == count else 1
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        watcher.delete_queue("demo")
        watcher.close()
        r.delete(ledger, f"{ledger}:pids")


def _kill_busiest(
    w: Worqr, r: redis.Redis, ledger: str, procs: list[subprocess.Popen[bytes]], console: Console
) -> tuple[str, int, float] | None:
    """SIGKILL the worker process holding the most tasks; returns (worker id, held, when)."""
    pids = r.hgetall(f"{ledger}:pids")
    busy = sorted(
        (x for x in w.overview().workers if x.processes and x.id in pids),
        key=lambda x: len(x.processes),
    )
    if not busy:
        return None
    target = busy[-1]
    for p in procs:
        if p.poll() is None and str(p.pid) == pids[target.id]:
            p.send_signal(signal.SIGKILL)
            console.print(
                f"SIGKILL worker {target.id[:8]} (pid {p.pid}) holding "
                f"{len(target.processes)} task(s)"
            )
            return target.id, len(target.processes), time.monotonic()
    return None
