"""The thread primitives the sync driver and runtime are written against. Hand-written, as is
its asyncio twin ``drivers/_async/primitives.py`` (same names, same meaning); everything else in
``_sync/`` is generated from ``_async/`` by ``scripts/unasync.py``.

Each primitive says what it touches. None of them talks to Redis except ``Executor``, which
keeps the sync driver's fast path: single calls go over connections of our own, without the
pool round trip of a redis-py command.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Literal, TypeVar

from pyee.base import EventEmitter
from redis.client import PubSub as _PubSub
from redis.exceptions import NoScriptError, ResponseError

from ...core.calls import Call

T = TypeVar("T")
Work = Callable[[], Any]
SIGNALS = (signal.SIGTERM, signal.SIGINT)
FLAVOUR: Literal["async", "sync"] = "sync"  # what drivers.connect builds clients for
Lock = threading.Lock


class Event(threading.Event):
    """A flag to set, clear and wait for; ``wait(timeout)`` says whether it is set."""


def sleep(seconds: float) -> None:
    time.sleep(seconds)


class Job:
    """A background activity: a daemon thread."""

    def __init__(self, work: Work, name: str) -> None:
        self.thread = threading.Thread(target=work, name=name, daemon=True)
        self.thread.start()

    def done(self) -> bool:
        return not self.thread.is_alive()

    def is_current(self) -> bool:
        return threading.current_thread() is self.thread

    def stop(self, timeout: float) -> None:
        """Wait, at most ``timeout`` seconds, for it to end (it ends by itself on close)."""
        if not self.is_current():
            self.thread.join(timeout)


def start(work: Work, name: str) -> Job:
    """Start ``work()`` in the background (a daemon thread)."""
    return Job(work, name)


def wait_all(jobs: list[Job], grace: float, force: Event) -> None:
    """Wait until the jobs end, ``grace`` seconds pass or ``force`` is set (a thread cannot
    be cancelled: what still runs then is abandoned, and its tasks are returned)."""
    deadline = time.monotonic() + grace
    for j in jobs:
        while not j.done() and not force.is_set() and time.monotonic() < deadline:
            j.thread.join(0.05)


class Background:
    """The short-lived jobs of one client (cleanups, rejoins, give-backs), each a thread.
    ``close`` waits, bounded, for the kept ones (cleanups)."""

    def __init__(self) -> None:
        self._kept: set[threading.Thread] = set()

    def bind(self) -> None:
        """Nothing to remember: threads can start from anywhere."""

    def is_home(self) -> bool:
        """Threads share the client: every caller is at home."""
        return True

    def soon(self, f: Callable[[], Any]) -> None:
        f()

    def spawn(self, work: Work, name: str, keep: bool = False) -> None:
        t = threading.Thread(target=work, name=name, daemon=True)
        if keep:
            self._kept = {k for k in self._kept if k.is_alive()} | {t}
        t.start()

    def close(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for t in list(self._kept):
            if t is not threading.current_thread():
                t.join(max(0.0, deadline - time.monotonic()))


def settled(call: Callable[[], list[T]], give_back: Callable[[list[T]], None]) -> list[T]:
    """A blocking call cannot be abandoned half-way: just make it."""
    return call()


def run_callback(f: Callable[..., Any], *args: Any) -> Any:
    """Call a user callback."""
    return f(*args)


def call_now(f: Callable[..., Any], *args: Any) -> Any:
    """Call a user callback now; it has returned when this does, so nothing is pending
    (None)."""
    f(*args)
    return None


def settle_all(pending: Iterable[Any]) -> None:
    """Nothing to wait for: ``call_now`` returned after its callback did."""


def run_handler(handler: Callable[..., Any], *args: Any) -> None:
    """Run a runtime handler in this (runner) thread."""
    handler(*args)


@contextlib.contextmanager
def signal_handlers(on_signal: Callable[[], None]) -> Iterator[None]:
    """Route SIGTERM/SIGINT to ``on_signal`` while running in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, lambda *_: on_signal()) for s in SIGNALS}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


class Emitter(EventEmitter):
    """A pyee EventEmitter on which a raising handler does not stop the others: its
    exception goes to ``on_error`` (as AsyncIOEventEmitter sends it to ``error``)."""

    def __init__(self, on_error: Callable[[Exception], None]) -> None:
        super().__init__()
        self._on_error = on_error

    def _emit_run(
        self, f: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        try:
            f(*args, **kwargs)
        except Exception as exc:
            self._on_error(exc)


def emitter(on_error: Callable[[Exception], None]) -> Emitter:
    """A pyee emitter whose raising handlers report to ``on_error``."""
    return Emitter(on_error)


def cancel_handlers(handlers: Any) -> None:
    """Handlers run in the threads that emit: nothing to cancel."""


class PubSub(_PubSub):
    """A PubSub that remembers it reconnected (it has then resubscribed by itself)."""

    reconnected = False

    def on_connect(self, connection: Any) -> None:
        super().on_connect(connection)
        self.reconnected = True


class Executor:
    """Single calls over connections of our own, checked out of the pool once and kept here
    while idle: one per call in flight at once (a thread pool of 8 callers holds at most 8),
    never one per thread that ever called, so short-lived threads leak nothing. An error reply
    leaves the connection usable; anything else disconnects it and every idle one and hands
    them back to the pool, so the retry gets a fresh one (behind Sentinel: to the current
    master)."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self.idle: deque[Any] = deque()

    def call(self, c: Call) -> Any:
        try:
            conn = self.idle.pop()
        except IndexError:
            conn = self._checkout()
        words = ("EVALSHA", c.script.sha, c.nkeys, *c.args) if c.script else c.args
        try:
            try:
                conn.send_command(*words)
                reply = conn.read_response()
            except NoScriptError:  # loaded over the same connection: the retry meets it there
                assert c.script is not None
                conn.send_command("SCRIPT", "LOAD", c.script.source)
                conn.read_response()
                conn.send_command(*words)
                reply = conn.read_response()
        except ResponseError:
            self.idle.append(conn)
            raise
        except BaseException:
            # every idle connection went to the same server: drop them all, so the retry
            # takes a fresh one (behind Sentinel: to the new master) instead of failing
            # once per stale connection
            self._discard(conn)
            for stale in self._drain():
                self._discard(stale)
            raise
        self.idle.append(conn)
        return reply

    def _discard(self, conn: Any) -> None:
        """Disconnect it and hand it back to the pool, which connects it afresh."""
        conn.disconnect()
        self.redis.connection_pool.release(conn)

    def _checkout(self) -> Any:
        pool = self.redis.connection_pool
        try:
            return pool.get_connection()
        except TypeError:  # redis-py 5 wants a command name
            return pool.get_connection("EVALSHA")

    def _drain(self) -> list[Any]:
        """Take every idle connection (other threads may take some meanwhile)."""
        taken = []
        while True:
            try:
                taken.append(self.idle.pop())
            except IndexError:
                return taken

    def release(self) -> None:
        """Give the idle connections back to the pool (on close)."""
        for conn in self._drain():
            self.redis.connection_pool.release(conn)


def state_lock() -> threading.Lock:
    """The lock for the core's worker state, which several threads share."""
    return threading.Lock()
