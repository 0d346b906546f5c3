"""What both drivers share that is not Redis logic: options, events, message routing.

``DriverBase`` holds the core, the two pyee emitters and the channel map; each flavour's
``machinery.py`` (asyncio source, generated sync) adds how calls are executed and how the
background jobs run, and its ``client.py`` the public API.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from pyee.base import EventEmitter
from redis.exceptions import (
    AuthenticationError,
    AuthorizationError,
    BusyLoadingError,
    NoPermissionError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..core import Core, Options, WorkerState
from ..core import validate as v
from ..core.calls import text
from ..core.model import Cleanup, CoreEvent, Dead, Failed, Lost, Reclaimed

log = logging.getLogger("worqr_py")
F = TypeVar("F", bound=Callable[..., Any])
W = TypeVar("W", bound="MasterAddress")
MESSAGE_TYPES = ("work", "cancel", "delete", "dead")
DONE_DOC = """Call ``handler(info)`` for every process finished on the queue, with ``info`` the
JSON of the ``done`` event as a dict: ``workerId``, ``task`` and ``result`` (None if none).
Done events have a channel of their own, subscribed only once such a handler exists, so
workers that never listen for them receive nothing."""

RETRYABLE = (RedisConnectionError, RedisTimeoutError, BusyLoadingError)
# ConnectionErrors in redis-py that waiting cannot cure: raised at once with the server's message
FATAL = (AuthenticationError, AuthorizationError)
# What the server refuses for who this client is (FATAL, or an ACL's NOPERM): a subscribe or
# a runner's join that meets one raises it at once instead of trying again
REFUSED = (*FATAL, NoPermissionError)


def jittered(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with full jitter: a random wait up to base * 2**attempt (at most
    cap), so many clients that lost Redis together do not come back in step."""
    return random.uniform(0, min(cap, base * 2**attempt))


MASTER_CHECK_S = 0.5  # behind Sentinel: how often to ask the sentinels which is the master


class MasterAddress:
    """Behind Sentinel: which master the sentinels name, asked every ``MASTER_CHECK_S`` by
    a thread or task of its own (the drivers' ``MasterWatch``: started on first use, ended
    on close or when its client is dropped; a sentinel that does not answer costs it its
    timeout, never a call). After a failover the master the sentinels replaced stays
    writable until they reconfigure it (seconds, for ``SENTINEL FAILOVER``): what a client
    writes there is acknowledged, then lost. So a connection of ours to any other address
    is handed back to the pool, which connects it to the master they name, before use
    (``elsewhere``): at most ``MASTER_CHECK_S`` of writes after a promotion can go to the
    old master. redis-py alone asks only on connecting, a connection error or READONLY, and
    a connection that reconnects by itself goes back to its old address."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self.address: tuple[str, int] | None = None

    @classmethod
    def of(cls: type[W], redis: Any) -> W | None:
        """A watch for a client of a Sentinel-managed master pool, else None."""
        pool = getattr(redis, "connection_pool", None)
        if getattr(pool, "is_master", False) and hasattr(pool, "get_master_address"):
            return cls(pool)
        return None

    def learn(self, answer: Any) -> None:
        """The sentinels' answer, ``(host, port)``."""
        host, port = answer
        self.address = (host, int(port))

    def elsewhere(self, conn: Any) -> bool:
        """Whether ``conn`` is connected to a master the sentinels no longer name."""
        address = self.address
        return address is not None and (conn.host, conn.port) != address


class Liveness:
    """Whether a subscriber connection still answers its health checks. redis-py PINGs an
    idle one (``health_check_interval``) when a read starts and moves its
    ``next_health_check`` on every reply; reads are kept within one interval, so on a live
    connection it moves at least every two. If it stays put for three, the connection is
    taken for dead: a peer gone without a reset would raise nothing for many minutes."""

    def __init__(self) -> None:
        self.seen: Any = None
        self.at = 0.0

    @staticmethod
    def bound(conn: Any, timeout: float) -> float:
        """The read's timeout: at most one health-check interval."""
        interval = getattr(conn, "health_check_interval", 0) or 0
        return min(timeout, interval) if interval else timeout

    def dead(self, conn: Any) -> bool:
        interval = getattr(conn, "health_check_interval", 0) or 0
        if not interval:
            return False
        now = time.monotonic()
        if conn.next_health_check != self.seen:
            self.seen, self.at = conn.next_health_check, now
            return False
        if now - self.at <= 3 * interval:
            return False
        self.seen = None  # the reconnection starts the count afresh
        return True


class RetryClock:
    """While Redis is unreachable: exponential backoff with full jitter (so many clients do
    not reconnect in step), for at most ``timeout`` seconds; then ``delay()`` is None."""

    def __init__(self, timeout: float) -> None:
        self.deadline = time.monotonic() + timeout
        self.attempt = 0

    def delay(self) -> float | None:
        left = self.deadline - time.monotonic()
        if left <= 0:
            return None
        self.attempt += 1
        return min(left, jittered(self.attempt, 0.025, 1.0))


def doc(source: Callable[..., Any] | str) -> Callable[[F], F]:
    """Give a driver method the docstring of the core operation it runs (or this text)."""

    def apply(f: F) -> F:
        f.__doc__ = source if isinstance(source, str) else source.__doc__
        return f

    return apply


class DriverBase:
    """State and event plumbing shared by the sync and asyncio drivers."""

    events: EventEmitter
    _handlers: EventEmitter
    _background: Any  # the flavour's Background (machinery.py)

    def __init__(
        self,
        options: Options,
        events: EventEmitter,
        handlers: EventEmitter,
        lock: AbstractContextManager[Any] | None,
    ) -> None:
        self.events = events
        self._handlers = handlers
        self._handlers.add_listener("error", self._error)
        self._core = Core(options, self._notify, lock=lock)
        self._lock: AbstractContextManager[Any] = lock or contextlib.nullcontext()
        self._channels: dict[str, str] = {}  # channel -> queue, for every subscribed queue
        self._refused: dict[Any, BaseException] = {}  # subscribe request -> fatal error
        self._logged: set[tuple[str, str]] = set()  # errors whose traceback was logged
        self._done: dict[str, str] = {}  # done channel -> queue
        # wake channel -> the runtime's callback: (queue) for a wake, (None) after the
        # subscriber reconnected (a wake may have been missed)
        self._wakes: dict[str, Callable[[str | None], None]] = {}
        # job waiting (drivers/_async/jobs.py): job-end channel -> queue, the channels whose
        # subscription was confirmed, and (queue, key) -> the events of its waiters
        self._job_channels: dict[str, str] = {}
        self._job_listened: set[str] = set()
        self._job_waiters: dict[tuple[str, str], set[Any]] = {}

    @property
    def worker_id(self) -> str | None:
        """This instance's current worker id, or None before ``start_worker()``."""
        return self._core.worker.id

    @property
    def alive(self) -> bool:
        """Whether this worker is started and, by its own monotonic clock, not failed.
        When False, the processes it held are no longer its own."""
        return self._checked()

    @property
    def trusted_until(self) -> float:
        """The ``time.monotonic()`` instant until which this worker may trust that its processes
        are its own (its last heartbeat plus ``heartbeat_ttl`` minus the margin), or 0.0 when
        it is not alive. Redis expires its heartbeat only after this instant."""
        return self._core.worker.deadline if self._checked() else 0.0

    def _checked(self) -> bool:
        """The clock check, failing the worker if it lapsed; from a thread that is not the
        client's (a plain handler of the asyncio client, in its thread) the failure is left to
        the event loop, where its events belong."""
        if self._background.is_home():
            return self._core._check()
        self._background.soon(self._core._check)
        return self._core._trusted()

    @property
    def processes(self) -> list[Any]:
        """The processes this live worker holds (dequeued, not yet finished or stopped)."""
        return list(self._core.worker.held.values())

    def _notify(self, event: CoreEvent) -> None:
        """Turn the core's typed events into the documented pyee events."""
        if isinstance(event, Cleanup):
            self._schedule_cleanup(event.worker)
        elif isinstance(event, Lost):
            self._emit("lost", event.process)
        elif isinstance(event, Failed):
            self._emit("failed", event.worker_id, event.reason)
        elif isinstance(event, Reclaimed):
            self._emit("reclaimed", event.worker_id, event.queue, event.count)
        elif isinstance(event, Dead):
            self._emit("dead", event.queue, event.task)
        else:
            self._emit("redis_restarted", event.old_run_id, event.new_run_id)

    def _schedule_cleanup(self, worker: WorkerState) -> None:
        raise NotImplementedError

    def _emit(self, event: str, *args: Any) -> None:
        try:
            if event != "error" or self.events.listeners("error"):
                self.events.emit(event, *args)
            else:
                self._log_error(args[0] if args else None)
        except Exception as exc:  # a user's event handler raised
            if event == "error":
                log.exception("worqr_py error handler raised")
            else:
                self._error(exc)

    @staticmethod
    def _handler_raised(exc: Exception) -> None:
        log.error("a worqr_py event handler raised", exc_info=exc)

    def _error(self, exc: BaseException) -> None:
        self._emit("error", exc)

    def _log_error(self, exc: Any) -> None:
        """Log a background error (when no ``error`` handler is set) with its type and
        message, and its traceback the first time that type and message are seen."""
        seen = (type(exc).__name__, str(exc))
        first = seen not in self._logged and len(self._logged) < 100
        self._logged.add(seen)
        log.error("worqr_py background error: %s: %s", *seen, exc_info=exc if first else None)

    def _refuse(self, waiting: dict[str, list[Any]], exc: BaseException) -> None:
        """A subscribe failed in a way retrying cannot cure (bad credentials): every caller
        waiting for a subscription gets that error at once."""
        for requests in waiting.values():
            for done in requests:
                self._refused[done] = exc
                done.set()
        waiting.clear()

    def _drop_handler(self, queue: str, handler: Callable[..., Any], done: bool = False) -> None:
        """Undo ``_add_handler``/``_add_done_handler`` after its subscribe failed."""
        keys = self._core.keys.queue(queue)
        self._handlers.remove_listener(f"{'d' if done else 'q'}:{queue}", handler)
        (self._done if done else self._channels).pop(keys.done if done else keys.events, None)

    def _add_handler(self, queue: str, handler: Callable[[str, str], Any]) -> bool:
        """Register a queue handler; True if the queue's channel still needs subscribing."""
        channel = self._core.channel(queue)
        return self._register(f"q:{queue}", handler, channel, queue, self._channels)

    def _add_done_handler(self, queue: str, handler: Callable[[dict[str, Any]], Any]) -> bool:
        """Register a done handler; True if the queue's done channel still needs subscribing."""
        channel = self._core.keys.queue(v.name(queue, "queue")).done
        return self._register(f"d:{queue}", handler, channel, queue, self._done)

    def _register(
        self,
        event: str,
        handler: Callable[..., Any],
        channel: str,
        queue: str,
        table: dict[str, str],
    ) -> bool:
        if not callable(handler):
            raise TypeError(f"handler must be callable, not {type(handler).__name__}")
        self._handlers.add_listener(event, handler)
        new = channel not in table
        table[channel] = queue
        return new

    def _remove_handler(self, queue: str, handler: Callable[[str, str], Any] | None) -> None:
        v.name(queue, "queue")
        if handler is None:
            self._handlers.remove_all_listeners(f"q:{queue}")
        else:
            self._handlers.remove_listener(f"q:{queue}", handler)

    def _dispatch(self, queue: str, kind: str, message: str) -> None:
        try:
            self._handlers.emit(f"q:{queue}", kind, message)
        except Exception as exc:
            self._error(exc)

    def _on_message(self, message: dict[str, Any]) -> str | None:
        """Route a pub/sub message to its queue's handlers; returns the channel a
        ``subscribe`` confirmation is for, else None."""
        channel = text(message.get("channel"))
        if message.get("type") == "subscribe":
            return channel
        wake = self._wakes.get(channel)
        if message.get("type") == "message" and wake is not None:
            try:
                wake(text(message["data"]))
            except Exception as exc:
                self._error(exc)
            return None
        if message.get("type") == "message" and channel in self._job_channels:
            ended = (self._job_channels[channel], text(message["data"]))
            with self._lock:
                waiting = list(self._job_waiters.get(ended, ()))
            for ready in waiting:
                ready.set()
            return None
        if message.get("type") == "message" and channel in self._done:
            try:
                self._handlers.emit(f"d:{self._done[channel]}", json.loads(text(message["data"])))
            except Exception as exc:
                self._error(exc)
            return None
        queue = self._channels.get(channel)
        if message.get("type") == "message" and queue is not None:
            kind, _, body = text(message.get("data")).partition(":")
            if kind in MESSAGE_TYPES:
                self._dispatch(queue, kind, body)
        return None

    def _wake_job_waiters(self) -> None:
        """Every job waiter reads its job again (or, on close, sees the close)."""
        with self._lock:
            waiting = [ready for waiters in self._job_waiters.values() for ready in waiters]
        for ready in waiting:
            ready.set()

    def _missed(self) -> None:
        """The subscriber reconnected: wakes and job ends may have been missed meanwhile."""
        self._wake_job_waiters()
        for wake in list(self._wakes.values()):
            try:
                wake(None)
            except Exception as exc:
                self._error(exc)

    def _announce(self, pending: list[tuple[str, int]]) -> None:
        """Tell this worker's own handlers about work already queued (after a (re)subscribe
        and on the fallback poll), since a pub/sub message may have been missed."""
        for queue, n in pending:
            if self._core.channel(queue) in self._channels:
                self._dispatch(queue, "work", str(n))

    def _pause(self) -> float:
        """How long the listener waits after a failure: jittered, so peers do not reconnect
        in step."""
        return random.uniform(0.05, min(1.0, self._core.options.poll_interval))
