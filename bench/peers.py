"""The configurations measured, and how bench/run.py runs them: each one through
bench/peer_driver.py, in a subprocess of the virtualenv that has the library (worqr_py's
own .venv for worqr_py: the same driver, the same method). The throwaway redis-servers.

A configuration is (library, variant, classes): ``"default"`` is the library's default
worker, ``"best"`` the best single-process configuration we know for it (for some libraries
the default is both). See README "Performance" for why each was chosen.
"""

from __future__ import annotations

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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import redis  # noqa: E402

import redisinfo  # noqa: E402

VENV = HERE / ".venv-peers"
R5 = VENV / "envs" / "redis5"  # arq and saq pin an older redis-py than taskiq-redis
VENVS: dict[str, Path] = {"saq": R5, "arq": R5}


@dataclass(frozen=True)
class Config:
    name: str
    variant: str
    classes: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"{self.name}:{self.variant}"


D, B, DB = ("default",), ("best",), ("default", "best")
WORQR = {"default": Config("worqr", "default", D), "best": Config("worqr", "prefetch10", B)}
WORQR_EXTRA = [Config("worqr", "async", ()), Config("worqr", "procs4", ())]
PEERS = [
    Config("rq", "default", D),
    Config("rq", "simple", B),
    Config("huey", "default", DB),
    Config("saq", "default", DB),
    Config("arq", "default", DB),
    Config("dramatiq", "default", D),
    Config("dramatiq", "p1t8", B),
    Config("celery", "default", D),
    Config("celery", "solo", B),
    Config("taskiq-list", "default", D),
    Config("taskiq-list", "w1", B),
    Config("taskiq-stream", "default", D),
    Config("taskiq-stream", "w1", B),
    Config("bullmq", "default", D),
    Config("bullmq", "c10", B),
]
NAMES = sorted({c.name for c in PEERS})


def python_for(name: str) -> Path:
    if name == "worqr":
        return Path(sys.executable)
    return VENVS.get(name, VENV) / "bin" / "python"


def driver_cmd(c: Config, url: str, *extra: str) -> list[str]:
    return [
        str(python_for(c.name)),
        str(HERE / "peer_driver.py"),
        c.name,
        "--variant",
        c.variant,
        "--url",
        url,
        *extra,
    ]


def _parse(out: str, err: str, code: int | None, c: Config) -> dict[str, Any]:
    for line in reversed(out.splitlines()):
        if line.startswith("BENCH_RESULT "):
            res: dict[str, Any] = json.loads(line[len("BENCH_RESULT ") :])
            if "error" in res:
                res.setdefault("skipped", f"failed: {res['error']}")
            return res
    tail = " | ".join(err.strip().splitlines()[-3:])
    return {"name": c.name, "variant": c.variant, "skipped": f"driver exited {code}: {tail}"}


def measure(c: Config, url: str, n: int, cap: float) -> dict[str, Any]:
    """One throughput measurement of configuration ``c`` (a dict; ``skipped`` if none)."""
    py = python_for(c.name)
    if not py.exists():
        return {
            "name": c.name,
            "variant": c.variant,
            "skipped": f"{py} missing: run setup_peers.sh",
        }
    print(f"[bench] {c.key} ...", file=sys.stderr, flush=True)
    cmd = driver_cmd(c, url, "--n", str(n), "--cap", str(cap))
    limit = cap + 240  # pre-fill, start-up allowance and stop
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired:
        return {"name": c.name, "variant": c.variant, "skipped": f"driver exceeded {limit:.0f} s"}
    res = _parse(p.stdout, p.stderr, p.returncode, c)
    rate = (res.get("process") or {}).get("per_s")
    print(f"[bench] {c.key}: {rate} tasks/s {res.get('skipped', '')}", file=sys.stderr, flush=True)
    return res


class CrashTest:
    """A SIGKILL test running in the background (its own database of the crash server)."""

    def __init__(self, c: Config, url: str, crash_max: float, work: Path) -> None:
        self.config, self.started = c, time.monotonic()
        self.out, self.err = (work / f"{c.key}.out").open("w+"), (work / f"{c.key}.err").open("w+")
        self.proc: subprocess.Popen[str] | None = None
        if python_for(c.name).exists():
            cmd = driver_cmd(c, url, "--crash", "--crash-max", str(crash_max))
            self.proc = subprocess.Popen(cmd, stdout=self.out, stderr=self.err, text=True)
        self.limit = crash_max + 120

    def waiting(self) -> bool:
        """Past its kill and its fresh worker's start-up (or finished)."""
        if self.proc is None or self.proc.poll() is not None:
            return True
        self.out.seek(0)
        return "CRASH_WAITING" in self.out.read()

    def result(self) -> dict[str, Any]:
        c = self.config
        if self.proc is None:
            return {"name": c.name, "variant": c.variant, "skipped": "no virtualenv"}
        try:
            self.proc.wait(max(1.0, self.limit - (time.monotonic() - self.started)))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.out.seek(0)
        self.err.seek(0)
        return _parse(self.out.read(), self.err.read(), self.proc.returncode, c)


def _free_port() -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port != redisinfo.FORBIDDEN_PORT:
            return port


@contextlib.contextmanager
def throwaway_server(databases: int = 16) -> Iterator[str]:
    """A redis-server of our own on a free port, no persistence; yields its URL (db 0)."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("redis-server is not on PATH")
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as tmp:
        args = [
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
            "--databases",
            str(databases),
        ]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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


def with_db(url: str, db: int) -> str:
    return url.rsplit("/", 1)[0] + f"/{db}"


def meta(url: str) -> dict[str, Any]:
    r = redis.Redis.from_url(url)
    server = r.info("server")
    r.close()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "loadavg_start": os.getloadavg(),
        "redis_server": server.get("redis_version"),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
