"""The machinery of the synchronous driver: running the core's steps on redis-py (with
retries and NOSCRIPT reloads), and the heartbeat and pub/sub listener threads. ``Worqr``
(sync.py) adds the public API on top.
"""

from __future__ import annotations

import queue as stdqueue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

from pyee.base import EventEmitter
from redis.client import PubSub
from redis.exceptions import NoScriptError, RedisError, ResponseError

from ...core.calls import Call, Op, Step
from ...core.model import WorkerState
from ...errors import WorqrError
from ..base import FATAL, RETRYABLE, DriverBase, RetryClock, log

T = TypeVar("T")


class _PubSub(PubSub):
    """A PubSub that remembers it reconnected (it has then resubscribed by itself)."""

    reconnected = False

    def on_connect(self, connection: Any) -> None:
        super().on_connect(connection)
        self.reconnected = True


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


class ThreadedDriver(DriverBase):
    """Executes operations and runs the background threads of a sync client."""

    _redis: Any
    _sub: Any

    def _init_threads(self) -> None:
        self._closing = threading.Event()
        self._beating: threading.Thread | None = None
        self._supervisor: threading.Thread | None = None
        self._supervise = threading.Event()  # set when this worker won the supervision turn
        self._listener: threading.Thread | None = None
        self._requests: stdqueue.SimpleQueue[tuple[str, threading.Event]] = stdqueue.SimpleQueue()
        # Connections for single calls, checked out of the pool once and kept here while idle:
        # one per call in flight at once (a thread pool of 8 callers holds at most 8), never
        # one per thread that ever called, so short-lived threads leak nothing.
        self._idle: deque[Any] = deque()

    @staticmethod
    def _handler_raised(exc: Exception) -> None:
        log.error("a worqr_py event handler raised", exc_info=exc)

    def _closed(self) -> bool:
        return self._closing.is_set()

    # ---- execution ----------------------------------------------------------------------
    def _run(self, op: Op[T], retry: bool = True) -> T:
        try:
            step = next(op)
            while True:
                step = op.send(self._retrying(step, retry))
        except StopIteration as stop:
            result: T = stop.value
            return result

    def _retrying(self, step: Step, retry: bool) -> Any:
        """Run a step; while Redis is unreachable, again after a jittered backoff, for up to
        ``retry_timeout`` (every step is safe to replay: see the README)."""
        clock = None
        while True:
            try:
                return self._exec(step)
            except RETRYABLE as exc:
                if isinstance(exc, FATAL):
                    raise
                clock = clock or RetryClock(self._core.options.retry_timeout if retry else 0)
                delay = clock.delay()
                if delay is None or self._closing.wait(delay):
                    raise

    def _exec(self, step: Step) -> Any:
        if isinstance(step, Call):
            return self._call(step)
        pipe = self._redis.pipeline(transaction=False)
        for c in step:
            pipe.execute_command(*(("EVALSHA", *self._script_args(c)) if c.script else c.args))
        replies = pipe.execute(raise_on_error=False)
        replies = [
            self._call(c) if self._is_noscript(r) else r for c, r in zip(step, replies, strict=True)
        ]
        for r in replies:
            if isinstance(r, Exception):
                raise r
        return replies

    def _call(self, c: Call) -> Any:
        """One call on an idle connection of our own, without the pool round trip of a
        redis-py command (the hot path: about a third faster per task). An error reply leaves
        the connection usable; anything else disconnects it and hands it back to the pool, so
        the next call gets a fresh one (behind Sentinel: to the current master)."""
        try:
            conn = self._idle.pop()
        except IndexError:
            conn = self._checkout()
        words = ("EVALSHA", *self._script_args(c)) if c.script else c.args
        try:
            try:
                conn.send_command(*words)
                reply = conn.read_response()
            except NoScriptError:
                assert c.script is not None
                self._redis.script_load(c.script.source)
                conn.send_command(*words)
                reply = conn.read_response()
        except ResponseError:
            self._idle.append(conn)
            raise
        except BaseException:
            conn.disconnect()
            self._redis.connection_pool.release(conn)
            raise
        self._idle.append(conn)
        return reply

    def _checkout(self) -> Any:
        pool = self._redis.connection_pool
        try:
            return pool.get_connection()
        except TypeError:  # redis-py 5 wants a command name
            return pool.get_connection("EVALSHA")

    def _release_idle(self) -> None:
        """Give our idle connections back to the pool (on close)."""
        while self._idle:
            self._redis.connection_pool.release(self._idle.pop())

    # ---- background threads ---------------------------------------------------------------
    def _thread(self, target: Callable[[], None], name: str) -> threading.Thread:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        return t

    def _schedule_cleanup(self, worker: WorkerState) -> None:
        self._thread(lambda: self._guard(self._core.cleanup(worker)), "worqr-cleanup")

    def _guard(self, op: Op[Any], retry: bool = True) -> Any:
        try:
            return self._run(op, retry)
        except Exception as exc:
            self._error(exc)
            return None

    def _beat_loop(self) -> None:
        """Beat every interval until close. It outlives a failed worker (skipping its ticks),
        so a worker registered again is never left without heartbeats."""
        interval = self._core.options.heartbeat_interval
        due = time.monotonic()
        while not self._closing.is_set():
            due = max(due + interval, time.monotonic())
            if self._closing.wait(due - time.monotonic()):
                return
            w = self._core.worker
            # the next beat is the retry; a won turn wakes the supervisor thread
            if w.id is not None and w.failed is None and self._guard(self._core.beat(), False):
                self._supervise.set()

    def _supervise_loop(self) -> None:
        """Scan for dead workers whenever the heartbeat thread won the turn: apart from the
        heartbeats, so reaping a thousand dead workers never delays this worker's own."""
        while True:
            self._supervise.wait()
            if self._closing.is_set():
                return
            self._supervise.clear()
            self._guard(self._core.supervise(), retry=False)

    def _subscribe(self, channel: str) -> None:
        done = threading.Event()
        self._requests.put((channel, done))
        if self._listener is None:
            self._listener = self._thread(self._listen, "worqr-listener")
        wait = max(10.0, self._core.options.retry_timeout)
        if threading.current_thread() is not self._listener and not done.wait(wait):
            raise WorqrError(f"could not subscribe to {channel!r} within {wait:g} s")
        refused = self._refused.pop(done, None)
        if refused is not None:
            raise refused

    def _listen(self) -> None:
        ps = _PubSub(self._sub.connection_pool)
        waiting: dict[str, list[threading.Event]] = {}
        pending: list[str] = []  # channels to subscribe (again, after a failure)
        poll = self._core.options.poll_interval
        next_poll = time.monotonic() + poll
        try:
            while not self._closing.is_set():
                while not self._requests.empty():
                    channel, done = self._requests.get()
                    waiting.setdefault(channel, []).append(done)
                    pending.append(channel)
                try:
                    if pending:
                        ps.subscribe(*pending)
                        pending = []
                    message = ps.get_message(timeout=0.05)
                except (RedisError, OSError) as exc:  # Redis away: say so, pause, go on
                    if isinstance(exc, FATAL):  # bad credentials: the callers hear it now
                        self._refuse(waiting, exc)
                        pending = []
                    self._error(exc)
                    self._closing.wait(self._pause())
                    continue
                if message is not None:
                    for done in waiting.pop(self._on_message(message) or "", []):
                        done.set()
                if ps.reconnected or time.monotonic() >= next_poll:
                    ps.reconnected = False
                    next_poll = time.monotonic() + poll
                    self._announce(self._guard(self._core.pending_work()) or [])
                    if self._done:
                        self._guard(self._core.listen_done(sorted(set(self._done.values()))))
        finally:
            ps.close()
