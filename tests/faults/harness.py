"""The fault suite's harness: agent processes on a Redis under test, a ledger on another."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import redis

from ..support import RedisServer, wait_for

ROOT = Path(__file__).resolve().parents[2]


class Fleet:
    """Agents (worker processes) on the Redis under test, and the ledger of what they did."""

    def __init__(self, sut: RedisServer, ledger: RedisServer, prefix: str, **cfg: Any) -> None:
        self.sut, self.prefix = sut, prefix
        self.ledger = redis.Redis(port=ledger.port, decode_responses=True)
        self.key = f"{prefix}-ledger"
        self.cfg = {
            "url": sut.url,
            "prefix": prefix,
            "ledger_url": ledger.url,
            "ledger": self.key,
            **cfg,
        }
        self.procs: list[subprocess.Popen[bytes]] = []
        self.killed: set[int] = set()  # pids we SIGKILLed or SIGSTOPped past the TTL
        self.stderr: Any = subprocess.DEVNULL

    def spawn(self, n: int = 1, **cfg: Any) -> list[subprocess.Popen[bytes]]:
        arg = json.dumps({**self.cfg, **cfg})
        new = [
            subprocess.Popen(
                [sys.executable, "-m", "tests.faults.agent", arg], cwd=ROOT, stderr=self.stderr
            )
            for _ in range(n)
        ]
        self.procs += new
        return new

    def alive(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.procs if p.poll() is None]

    def kill(self, p: subprocess.Popen[bytes]) -> None:
        self.killed.add(p.pid)
        p.send_signal(signal.SIGKILL)
        p.wait()

    def signal(self, p: subprocess.Popen[bytes], sig: int) -> None:
        os.kill(p.pid, sig)

    def done(self) -> Counter[str]:
        return Counter({t: int(n) for t, n in self.ledger.hgetall(f"{self.key}:done").items()})

    def events(self) -> list[list[str]]:
        return [e.split(" ", 3) for e in self.ledger.lrange(f"{self.key}:events", 0, -1)]

    def pid_of(self) -> dict[str, int]:
        return {w: int(p) for w, p in self.ledger.hgetall(f"{self.key}:pids").items()}

    def started_by(self) -> dict[str, list[str]]:
        """task -> the worker ids that started it, in order."""
        out: dict[str, list[str]] = {}
        for e in self.events():
            if e[0] == "start":
                out.setdefault(e[2], []).append(e[1])
        return out

    def wait_done(self, tasks: list[str], timeout: float) -> Counter[str]:
        wait_for(
            lambda: set(self.done()) >= set(tasks),
            timeout=timeout,
            what="every task done",
            every=0.05,
        )
        return self.done()

    def stop(self) -> None:
        for p in self.alive():
            p.send_signal(signal.SIGCONT)
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
