"""The thread primitives the sync driver and runtime are written against. Hand-written, as is
its asyncio twin ``drivers/_async/primitives.py`` (same names, same meaning); everything else in
``_sync/`` is generated from ``_async/`` by ``scripts/unasync.py``.

Each primitive says what it touches. None of them talks to Redis except ``Executor`` and
``PubSub``, which live apart in ``redis_io.py`` (also hand-written, twinned the same way).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Literal, TypeVar

from pyee.base import EventEmitter

from ...runtime.children import Children, call_in_process
from ...runtime.jobs import await_with_timeout, call_with_timeout

T = TypeVar("T")
Work = Callable[[], Any]
SIGNALS = (signal.SIGTERM, signal.SIGINT)
FLAVOUR: Literal["async", "sync"] = "sync"  # what drivers.connect builds clients for
Lock = threading.Lock
Semaphore = threading.BoundedSemaphore


class Event(threading.Event):
    """A flag to set, clear and wait for; ``wait(timeout)`` says whether it is set."""


def until_set(event: Event) -> None:
    """Wait until ``event`` is set. In the main thread in bounded waits, so a signal handler
    runs between them (a plain ``wait()`` cannot be interrupted on every platform); in any
    other thread (no signal handler runs there) in one wait, with no timed wake-ups."""
    if threading.current_thread() is not threading.main_thread():
        event.wait()
        return
    while not event.wait(0.2):
        pass


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


def bounded(value: T, seconds: float | None) -> T:
    """The asyncio twin awaits a call for at most ``seconds``; a thread cannot cut a call
    short, so here the call has run already (bounded by its own retry window and the
    socket timeout) and this is its value."""
    return value


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


def run_job_call(
    f: Callable[..., Any],
    args: list[Any],
    kwargs: dict[str, Any],
    timeout: float | None,
    isolation: str,
    children: Children | None = None,
) -> Any:
    """Call a job's function (runtime/jobs.py) in the runner thread, interrupted there at
    the timeout; a coroutine function in a loop of its own, cancelled; with
    ``isolation="process"`` in a child process, killed."""
    if isolation == "process":
        return call_in_process(f, args, kwargs, timeout, children)
    if asyncio.iscoroutinefunction(f):
        return asyncio.run(await_with_timeout(f(*args, **kwargs), timeout))
    result = call_with_timeout(f, args, kwargs, timeout)
    if asyncio.iscoroutine(result):
        result = asyncio.run(await_with_timeout(result, timeout))
    return result


def handler_runner(handler: Callable[..., Any]) -> Callable[..., Any]:
    """How the runtime runs ``handler``: called in the runner thread."""
    return handler


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


def state_lock() -> threading.Lock:
    """The lock for the core's worker state, which several threads share."""
    return threading.Lock()
