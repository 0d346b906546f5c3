"""The asyncio primitives the driver and the runtime are written against. Hand-written, as
is its thread twin ``drivers/_sync/primitives.py`` (same names, same meaning); everything else
in ``_sync/`` is generated from ``_async/`` by ``scripts/unasync.py``.

Each primitive says what it touches. None of them talks to Redis except ``Executor`` and
``PubSub``, which live apart in ``redis_io.py`` (also hand-written, twinned the same way).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator
from typing import Any, Literal, TypeVar

from pyee.asyncio import AsyncIOEventEmitter

from ...runtime.children import Children, call_in_process
from ...runtime.jobs import await_with_timeout, call_with_timeout
from .redis_io import SETTLING, Settling

T = TypeVar("T")
Work = Callable[[], Coroutine[Any, Any, Any]]
SIGNALS = (signal.SIGTERM, signal.SIGINT)
FLAVOUR: Literal["async", "sync"] = "async"  # what drivers.connect builds clients for
Lock = asyncio.Lock
Semaphore = asyncio.Semaphore


class Event:
    """A flag to set, clear and wait for; ``wait(timeout)`` says whether it was set: it is,
    or ``set()`` woke this wait (someone may have cleared it since), as with
    ``threading.Event``. A timed wait is one future and one timer, not the task
    ``asyncio.wait_for`` makes per wait."""

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future[bool]] = []

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, []
        for f in waiters:
            if not f.done():
                f.set_result(True)

    def clear(self) -> None:
        self._set = False

    def is_set(self) -> bool:
        return self._set

    async def wait(self, timeout: float | None = None) -> bool:
        if self._set or (timeout is not None and timeout <= 0):
            return self._set
        loop = asyncio.get_running_loop()
        f: asyncio.Future[bool] = loop.create_future()
        self._waiters.append(f)
        timer = None if timeout is None else loop.call_later(timeout, _expire, f)
        try:
            woken = await f
        finally:
            if timer is not None:
                timer.cancel()
            if f in self._waiters:
                self._waiters.remove(f)
        return self._set or woken


def _expire(f: asyncio.Future[bool]) -> None:
    if not f.done():
        f.set_result(False)


async def until_set(event: Event) -> None:
    """Wait until ``event`` is set (the loop's own signal handlers get through meanwhile)."""
    await event.wait()


async def sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


class Job:
    """A background activity: an asyncio task of the running loop."""

    def __init__(self, work: Work, name: str) -> None:
        self.task = asyncio.get_running_loop().create_task(work(), name=name)

    def done(self) -> bool:
        return self.task.done()

    def is_current(self) -> bool:
        return asyncio.current_task() is self.task

    async def stop(self, timeout: float) -> None:
        """End it (cancel) and wait for that, at most ``timeout`` seconds."""
        if not self.is_current():
            self.task.cancel()
            await asyncio.wait([self.task], timeout=timeout)


def start(work: Work, name: str) -> Job:
    """Start ``work()`` in the background (an asyncio task)."""
    return Job(work, name)


async def wait_all(jobs: list[Job], grace: float, force: Event) -> None:
    """Wait until the jobs end, ``grace`` seconds pass or ``force`` is set; then cancel what
    is left (a coroutine handler is cancelled at its next await)."""
    deadline = asyncio.get_running_loop().time() + grace
    pending = {j.task for j in jobs}
    while pending and not force.is_set():
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            break
        _, pending = await asyncio.wait(pending, timeout=min(left, 0.05))
    for t in pending:
        t.cancel()
    if pending:
        await asyncio.wait(pending, timeout=5)


class Background:
    """The short-lived jobs of one client (cleanups, rejoins, give-backs), startable from
    its loop or from any thread. ``close`` lets the kept ones (cleanups) finish, bounded, and
    cancels the rest."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._kept: set[asyncio.Task[Any]] = set()
        self._other: set[asyncio.Task[Any]] = set()

    def bind(self) -> None:
        """Remember the running loop (jobs started from other threads run on it)."""
        self._loop = asyncio.get_running_loop()

    def is_home(self) -> bool:
        """Is the caller on this client's loop (or is there none yet)?"""
        try:
            return self._loop is None or asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    def soon(self, f: Callable[[], Any]) -> None:
        """Call ``f`` on this client's loop, from any thread."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(f)

    def spawn(self, work: Work, name: str, keep: bool = False) -> None:
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        loop = self._loop or running
        if loop is None:
            return
        if running is not loop:
            loop.call_soon_threadsafe(self.spawn, work, name, keep)
            return
        tasks = self._kept if keep else self._other
        task = loop.create_task(work(), name=name)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def close(self, timeout: float) -> None:
        if self._kept:
            await asyncio.wait(list(self._kept), timeout=timeout)
        others = [t for t in self._other if t is not asyncio.current_task()]
        for t in others:
            t.cancel()
        if others:
            await asyncio.wait(others, timeout=timeout)


async def bounded(call: Awaitable[T], seconds: float | None) -> T:
    """Await ``call``, cancelled after ``seconds`` (None: no bound) with ``TimeoutError``.
    (The thread twin cannot cut a call short: it takes the call's value.)"""
    if seconds is None:
        return await call
    try:
        return await asyncio.wait_for(call, seconds)
    except asyncio.TimeoutError:  # not the builtin TimeoutError before Python 3.11
        raise TimeoutError(f"no answer within {seconds:g} s") from None


async def settled(
    call: Callable[[], Awaitable[list[T]]], give_back: Callable[[list[T]], None]
) -> list[T]:
    """Run ``call`` so that cancelling the caller cannot strand what it took: a cancel that
    comes while its request is in flight is held (``Settling``) until the reply is read, then
    what it took goes to ``give_back`` and the cancel is raised. No task of its own."""
    settling = Settling()
    token = SETTLING.set(settling)
    try:
        result = await call()
    finally:
        SETTLING.reset(token)
    if settling.cancelled:
        if result:
            give_back(result)
        raise asyncio.CancelledError
    return result


async def run_callback(f: Callable[..., Any], *args: Any) -> Any:
    """Call a user callback, awaiting it if it is a coroutine."""
    result = f(*args)
    if asyncio.iscoroutine(result):
        result = await result
    return result


def call_now(f: Callable[..., Any], *args: Any) -> asyncio.Future[Any] | None:
    """Call a user callback now; a coroutine becomes a task, returned so it can be awaited."""
    result = f(*args)
    return asyncio.ensure_future(result) if asyncio.iscoroutine(result) else None


async def settle_all(pending: Iterable[asyncio.Future[Any]]) -> None:
    """Wait for the callbacks ``call_now`` started (their errors are theirs)."""
    waiting = list(pending)
    if waiting:
        await asyncio.gather(*waiting, return_exceptions=True)


async def run_job_call(
    f: Callable[..., Any],
    args: list[Any],
    kwargs: dict[str, Any],
    timeout: float | None,
    isolation: str,
    children: Children | None = None,
) -> Any:
    """Call a job's function (runtime/jobs.py): a coroutine function on the loop, cancelled
    at the timeout; a plain one in a thread, interrupted there; with ``isolation="process"``
    in a child process, killed."""
    if isolation == "process":
        return await asyncio.to_thread(call_in_process, f, args, kwargs, timeout, children)
    if asyncio.iscoroutinefunction(f):
        return await await_with_timeout(f(*args, **kwargs), timeout)
    result = await asyncio.to_thread(call_with_timeout, f, args, kwargs, timeout)
    if asyncio.iscoroutine(result):
        result = await await_with_timeout(result, timeout)
    return result


def handler_runner(handler: Callable[..., Any]) -> Callable[..., Awaitable[None]]:
    """How the runtime runs ``handler`` (decided once, not per task): a coroutine function
    on the loop, a plain function in a thread, so it cannot block the loop (and its
    heartbeats); a coroutine it returns is awaited."""
    if asyncio.iscoroutinefunction(handler):
        return handler

    async def in_thread(*args: Any) -> None:
        result = await asyncio.to_thread(handler, *args)
        if asyncio.iscoroutine(result):
            await result

    return in_thread


@contextlib.contextmanager
def signal_handlers(on_signal: Callable[[], None]) -> Iterator[None]:
    """Route SIGTERM/SIGINT to ``on_signal`` while the loop runs in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    for s in SIGNALS:
        loop.add_signal_handler(s, on_signal)
    try:
        yield
    finally:
        for s in SIGNALS:
            loop.remove_signal_handler(s)


def emitter(on_error: Callable[[Exception], None]) -> AsyncIOEventEmitter:
    """A pyee emitter whose coroutine handlers run as tasks; errors go to ``error``."""
    return AsyncIOEventEmitter()


def cancel_handlers(handlers: Any) -> None:
    """Cancel the coroutine handlers still running (on close)."""
    handlers.cancel()


def state_lock() -> contextlib.AbstractContextManager[Any]:
    """No real lock for the core's worker state: asyncio runs it on one thread."""
    return contextlib.nullcontext()
