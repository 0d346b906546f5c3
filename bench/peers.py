"""Peer benchmark: Python task queues on Redis, next to a bare redis-py "ceiling".

Standalone (starts its own throwaway redis-server on a free port, never 6379):

    bash bench/setup_peers.sh
    bench/.venv-peers/bin/python bench/peers.py --n 2000 --json /tmp/peers.json

From another script (e.g. bench/run.py), against a server it started:

    sys.path.insert(0, "bench"); import peers
    peers.measure_ceiling(url, n)            # this interpreter's redis-py
    peers.measure_peers(url, n, ["rq", ...])  # each peer in a subprocess of its venv

Each peer runs in ``bench/peer_driver.py`` under the virtualenv that has it installed
(see setup_peers.sh), so importing this module needs only redis-py.  The method for
commands and round trips per task is in ``bench/redisinfo.py``; the phases and timing
in ``bench/peer_driver.py``.  Peers use database ``db`` (default 9) of the server and
FLUSHDB it between phases; the ceiling only touches keys under ``bench:ceiling``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import redis  # noqa: E402

import redisinfo  # noqa: E402
from ceiling import measure_ceiling  # noqa: E402
from report import LEGEND, render  # noqa: E402

__all__ = ["ALL_PEERS", "measure_ceiling", "measure_peers", "run_all", "throwaway_server"]

VENV = HERE / ".venv-peers"
# peer -> virtualenv holding it (arq and saq pin an older redis-py than taskiq-redis).
PEER_VENVS: dict[str, Path] = {
    **dict.fromkeys(["rq", "huey", "dramatiq", "taskiq-list", "taskiq-stream", "celery"], VENV),
    **dict.fromkeys(["saq", "arq"], VENV / "envs" / "redis5"),
}
ALL_PEERS = ["rq", "huey", "saq", "dramatiq", "taskiq-list", "taskiq-stream", "celery", "arq"]


def with_db(url: str, db: int) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{db}"))


def measure_peers(
    url: str,
    n: int,
    names: list[str] | None = None,
    *,
    cap: float = 30.0,
    variant: str = "c1",
    db: int = 9,
) -> list[dict[str, Any]]:
    """Measure each named peer (default: all) against ``url``; one dict per peer.

    A peer that cannot run comes back as ``{"name": ..., "skipped": reason}``.
    """
    redisinfo.check_url(url)
    out: list[dict[str, Any]] = []
    for name in names or ALL_PEERS:
        print(f"[peers] {name} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        res = _run_driver(name, with_db(url, db), n, cap, variant)
        res["wall_s"] = round(time.perf_counter() - t0, 1)
        if res.get("skipped"):
            print(f"[peers] {name} SKIPPED: {res['skipped']}", file=sys.stderr, flush=True)
        out.append(res)
    return out


def _run_driver(name: str, url: str, n: int, cap: float, variant: str) -> dict[str, Any]:
    venv = PEER_VENVS.get(name)
    if venv is None:
        return {"name": name, "skipped": f"unknown peer (known: {', '.join(ALL_PEERS)})"}
    py = venv / "bin" / "python"
    if not py.exists():
        return {"name": name, "skipped": f"{py} missing: run bash bench/setup_peers.sh"}
    cmd = [
        str(py),
        str(HERE / "peer_driver.py"),
        name,
        "--url",
        url,
        "--n",
        str(n),
        "--cap",
        str(cap),
        "--variant",
        variant,
    ]
    # Bound: 3 capped windows + untimed enqueue (<=120 s) + kill and start-up slack.
    limit = 3 * cap + 200
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired:
        return {"name": name, "skipped": f"driver exceeded {limit:.0f} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("BENCH_RESULT "):
            res: dict[str, Any] = json.loads(line[len("BENCH_RESULT ") :])
            if "error" in res and "process" not in res:
                res.setdefault("skipped", f"failed: {res['error']}")
            return res
    tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
    return {"name": name, "skipped": f"driver exited {proc.returncode}: {tail}"}


def _free_port() -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port != redisinfo.FORBIDDEN_PORT:
            return port


@contextlib.contextmanager
def throwaway_server() -> Iterator[str]:
    """A redis-server of our own on a free port, no persistence; yields its URL."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("redis-server is not on PATH")
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as tmp:
        proc = subprocess.Popen(
            [
                exe,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                tmp,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"redis://127.0.0.1:{port}/0"
        try:
            r = redis.Redis.from_url(url)
            deadline = time.monotonic() + 10
            while True:
                try:
                    r.ping()
                    break
                except redis.ConnectionError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise
                    time.sleep(0.05)
            r.close()
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def meta(url: str, n: int, cap: float, variant: str) -> dict[str, Any]:
    r = redis.Redis.from_url(url)
    server = r.info("server")
    r.close()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "redis_server": server.get("redis_version"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "n": n,
        "cap_s": cap,
        "variant": variant,
    }


def run_all(
    url: str,
    n: int,
    names: list[str] | None,
    cap: float = 30.0,
    variant: str = "c1",
    ceiling: bool = True,
) -> dict[str, Any]:
    """Everything this module measures, as the dict written by ``--json``."""
    result: dict[str, Any] = {"meta": meta(url, n, cap, variant), "method": LEGEND}
    if ceiling:
        print("[peers] ceiling ...", file=sys.stderr, flush=True)
        result["ceiling"] = measure_ceiling(url, n, cap)
    result["peers"] = measure_peers(url, n, names, cap=cap, variant=variant)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Benchmark Python task queues on Redis.")
    ap.add_argument("--n", type=int, default=5000, help="tasks per measurement")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument(
        "--names", default=",".join(ALL_PEERS), help="comma-separated peers (default: all)"
    )
    ap.add_argument("--cap", type=float, default=30.0, help="seconds per measurement")
    ap.add_argument(
        "--variant", default="c1", help="worker variant: c1 (concurrency 1, default) or default"
    )
    ap.add_argument("--url", help="use this server instead of starting one (not :6379)")
    ap.add_argument("--no-ceiling", action="store_true")
    args = ap.parse_args(argv)
    names = [x.strip() for x in args.names.split(",") if x.strip()]
    t0 = time.perf_counter()
    ctx: contextlib.AbstractContextManager[str] = (
        contextlib.nullcontext(args.url) if args.url else throwaway_server()
    )
    with ctx as url:
        redisinfo.check_url(url)
        result = run_all(url, args.n, names, args.cap, args.variant, not args.no_ceiling)
    result["meta"]["wall_s"] = round(time.perf_counter() - t0, 1)
    print(render(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nJSON written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
