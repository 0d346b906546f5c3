"""The worker runtime behind ``Worqr.run`` and ``AsyncWorqr.run``: take work when notified,
call the handler with each :class:`Process`, finish it on success, return it to the FRONT on an
exception, and shut down gracefully on SIGTERM/SIGINT (a second signal: at once).

Both runners share the policy in ``RunnerBase``; they differ only in threads vs tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from . import validate as v
from .driver import jittered
from .errors import WorkerFailed, WorqrError
from .model import Process

if TYPE_CHECKING:
    from .aio import AsyncWorqr
    from .sync import Worqr

log = logging.getLogger("worqr_py.runtime")
SIGNALS = (signal.SIGTERM, signal.SIGINT)
Handler = Callable[[Process], Any]
RUN_DOC = """Run a worker on the queue(s) until SIGTERM/SIGINT or ``shutdown()``: take work when
notified (no busy polling; a fallback check every ``poll_interval``), call
``handler(process)`` in ``concurrency`` threads (asyncio: tasks; a plain-function handler runs
in a thread), finish the process when it returns (acked with the next take: one round trip per
task; ``prefetch`` tasks are taken at a time, held by this worker meanwhile), and put it back
at the FRONT of its queue (logged) when it raises. On the first signal it takes no new work
and gives in-flight handlers ``grace`` seconds, then ``fail_worker()`` returns what is left; a
second signal stops at once.
After a failure (heartbeat lost, Redis down) it re-registers with a new worker id, unless
``reregister=False``: then it stops."""
SHUTDOWN_DOC = """Ask ``run()`` to stop as on SIGTERM (``force=True``: as on a second signal)."""


class RunnerBase:
    """Options and the policy both runners share."""

    def __init__(
        self,
        queues: str | list[str],
        handler: Handler,
        concurrency: int,
        grace: float,
        reregister: bool,
        prefetch: int,
    ) -> None:
        names = [queues] if isinstance(queues, str) else queues
        if not isinstance(names, (list, tuple)) or not names:
            raise TypeError("queues must be a queue name or a non-empty list of names")
        self.queues = [v.name(q, "queues") for q in names]
        if not callable(handler):
            raise TypeError(f"handler must be callable, not {type(handler).__name__}")
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency must be an int of at least 1, got {concurrency!r}")
        self.handler = handler
        self.concurrency = concurrency
        self.grace = v.seconds(grace, "grace")
        self.reregister = bool(reregister)
        if isinstance(prefetch, bool) or not isinstance(prefetch, int) or prefetch < 1:
            raise ValueError(f"prefetch must be an int of at least 1, got {prefetch!r}")
        self.prefetch = prefetch
        self.signals = 0
        self.next = 0
        self.errors = 0  # takes that failed in a row while the worker stayed alive

    def order(self) -> list[str]:
        """The queues to try, starting one further each time (round robin)."""
        self.next = (self.next + 1) % len(self.queues)
        return self.queues[self.next :] + self.queues[: self.next]

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before re-registering again: exponential with full jitter."""
        return jittered(attempt, 0.05, 5.0)

    def signalled(self) -> None:
        self.signals += 1
        if self.signals == 1:
            log.warning("stopping: no new work; in-flight handlers get %.0f s", self.grace)
        else:
            log.warning("stopping now")

    def failed(self, p: Process, exc: BaseException, max_deliveries: int | None) -> None:
        """Log a handler's exception with what happens to the task (stop_process follows)."""
        if max_deliveries is not None and p.deliveries >= max_deliveries:
            outcome = f"dead-lettered after {p.deliveries} deliveries"
        else:
            outcome = f"returned to the front of {p.queue!r} (delivery {p.deliveries})"
        log.error("handler failed on %r: %s", p.task, outcome, exc_info=exc)

    @staticmethod
    def unsettled(exc: BaseException) -> None:
        log.warning(
            "could not settle (%s: %s); tried again on the next take, and if this worker "
            "fails first its tasks return to the front",
            type(exc).__name__,
            exc,
        )

    def take_failed(self, queue: str, exc: BaseException, attempt: int) -> float:
        """A take failed while this worker stayed alive (BUSY, READONLY, NOPERM...): log it;
        the finished processes are kept and acked by the next take. Returns the wait."""
        log.warning(
            "could not take work from %r (%s: %s); finished tasks are acked on the next try",
            queue,
            type(exc).__name__,
            exc,
        )
        return self.backoff(attempt)


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


class SyncRunner(RunnerBase):
    """``Worqr.run``: ``concurrency`` threads, each taking one task at a time."""

    def __init__(self, w: Worqr, *args: Any) -> None:
        super().__init__(*args)
        self.w = w
        self.wake, self.stop, self.force = threading.Event(), threading.Event(), threading.Event()
        self.rejoining = threading.Lock()

    def run(self) -> None:
        self.w.events.on("failed", self.on_failed)
        for q in self.queues:
            self.w.on(q, self.on_event)
        try:
            self.start()
            threads = [
                threading.Thread(target=self.loop, name=f"worqr-run-{i}", daemon=True)
                for i in range(self.concurrency)
            ]
            with signal_handlers(self.on_signal):
                for t in threads:
                    t.start()
                while not self.stop.wait(0.2):
                    pass
                deadline = time.monotonic() + self.grace
                for t in threads:
                    while t.is_alive() and not self.force.is_set() and time.monotonic() < deadline:
                        t.join(0.05)
            if self.w.alive:
                self.w.fail_worker()  # what is still running goes back to the front now
        finally:
            self.w.events.remove_listener("failed", self.on_failed)
            for q in self.queues:
                self.w.off(q, self.on_event)

    def start(self) -> None:
        """Register and join; a failure after registering goes through re-registration."""
        try:
            self.join()
        except WorkerFailed as exc:
            self.rejoin(exc)

    def request_stop(self, force: bool = False) -> None:
        self.stop.set()
        self.wake.set()
        if force:
            self.force.set()

    def on_signal(self) -> None:
        self.signalled()
        self.request_stop(force=self.signals > 1)

    def on_failed(self, *_: Any) -> None:
        self.wake.set()  # re-register promptly

    def on_event(self, kind: str, message: str) -> None:
        if kind == "work":
            self.wake.set()

    def loop(self) -> None:
        poll = self.w._core.options.poll_interval
        max_deliveries = self.w._core.options.max_deliveries
        done: dict[str, list[str]] = {}  # finished, to be acked with the next take
        while not self.stop.is_set():
            self.wake.clear()
            batch = self.take(done)
            if not batch:
                self.flush(done)
                self.wake.wait(poll)
                continue
            for p in batch:
                if self.stop.is_set():
                    break  # prefetched, not started: fail_worker returns it to the front
                try:
                    self.handler(p)
                except Exception as exc:
                    self.failed(p, exc, max_deliveries)
                    self.guard(self.w.stop_process, p.id)
                else:
                    done.setdefault(p.queue, []).append(p.id)
        self.flush(done)

    def take(self, done: dict[str, list[str]]) -> list[Process]:
        """Ack the finished processes of a queue and take its next tasks: one round trip.
        The acks leave ``done`` only once that call succeeded."""
        for q in self.order():
            try:
                batch = self.w.dequeue_many(q, self.prefetch, finish=done.get(q, []))
            except (WorqrError, RedisError) as exc:
                self.recover(q, exc)
                return []
            done.pop(q, None)
            self.errors = 0
            if batch:
                return batch
        return []

    def recover(self, queue: str, exc: BaseException) -> None:
        if self.w.alive:
            self.errors += 1
            self.stop.wait(self.take_failed(queue, exc, self.errors))
        else:
            self.rejoin(exc)

    def flush(self, done: dict[str, list[str]]) -> None:
        """Ack the finished processes; on an error they stay in ``done`` for the next try."""
        ids = [pid for pids in done.values() for pid in pids]
        if ids and self.guard(self.w.finish_processes, ids):
            done.clear()

    def guard(self, how: Callable[[Any], Any], arg: Any) -> bool:
        try:
            how(arg)
        except (WorqrError, RedisError) as exc:
            self.unsettled(exc)
            return False
        return True

    def join(self) -> None:
        self.w.start_worker()
        for q in self.queues:
            self.w.start_work(q)

    def rejoin(self, exc: BaseException) -> None:
        """After a failure (heartbeat lost, Redis down): register a new worker id and join
        the queues again, with backoff, until it works or the runner stops. One thread at a
        time: the others wait, then find the worker alive."""
        if not self.reregister:
            log.error("worker failed (%s); stopping (reregister=False)", exc)
            self.request_stop()
            return
        with self.rejoining:
            attempt, joined = 0, False
            while not self.stop.is_set() and not self.w.alive:
                if attempt == 0:
                    log.warning("worker failed (%s); re-registering", exc)
                try:
                    self.join()
                    joined = True
                except (WorqrError, RedisError) as again:
                    exc, attempt = again, attempt + 1
                    self.stop.wait(self.backoff(attempt))
            if joined:
                log.info("registered again as worker %s", self.w.worker_id)


class AsyncRunner(RunnerBase):
    """``AsyncWorqr.run``: ``concurrency`` tasks; a plain-function handler runs in a thread."""

    def __init__(self, w: AsyncWorqr, *args: Any) -> None:
        super().__init__(*args)
        self.w = w
        self.wake, self.stop = asyncio.Event(), asyncio.Event()
        self.rejoining = asyncio.Lock()
        self.tasks: list[asyncio.Task[None]] = []

    async def run(self) -> None:
        self.w.events.on("failed", self.on_failed)
        for q in self.queues:
            await self.w.on(q, self.on_event)
        loop = asyncio.get_running_loop()
        main = threading.current_thread() is threading.main_thread()
        try:
            await self.start()
            self.tasks = [asyncio.create_task(self.loop()) for _ in range(self.concurrency)]
            for s in SIGNALS if main else ():
                loop.add_signal_handler(s, self.on_signal)
            await self.stop.wait()
            _, pending = await asyncio.wait(self.tasks, timeout=self.grace)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        finally:
            for s in SIGNALS if main else ():
                loop.remove_signal_handler(s)
            self.w.events.remove_listener("failed", self.on_failed)
            for q in self.queues:
                self.w.off(q, self.on_event)
            if self.w.alive:
                await self.w.fail_worker()

    async def start(self) -> None:
        """Register and join; a failure after registering goes through re-registration."""
        try:
            await self.join()
        except WorkerFailed as exc:
            await self.rejoin(exc)

    def request_stop(self, force: bool = False) -> None:
        self.stop.set()
        self.wake.set()
        if force:
            for t in self.tasks:
                t.cancel()

    def on_signal(self) -> None:
        self.signalled()
        self.request_stop(force=self.signals > 1)

    def on_failed(self, *_: Any) -> None:
        self.wake.set()  # re-register promptly

    def on_event(self, kind: str, message: str) -> None:
        if kind == "work":
            self.wake.set()

    async def loop(self) -> None:
        poll = self.w._core.options.poll_interval
        max_deliveries = self.w._core.options.max_deliveries
        done: dict[str, list[str]] = {}  # finished, to be acked with the next take
        try:
            while not self.stop.is_set():
                self.wake.clear()
                batch = await self.take(done)
                if not batch:
                    await self.flush(done)
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self.wake.wait(), poll)
                    continue
                for p in batch:
                    if self.stop.is_set():
                        break  # prefetched, not started: fail_worker returns it to the front
                    try:
                        await self.call(p)
                    except Exception as exc:
                        self.failed(p, exc, max_deliveries)
                        await self.guard(self.w.stop_process, p.id)
                    else:
                        done.setdefault(p.queue, []).append(p.id)
        finally:
            await self.flush(done)

    async def call(self, p: Process) -> None:
        if asyncio.iscoroutinefunction(self.handler):
            await self.handler(p)
        else:  # a plain function must not block the loop (and its heartbeats)
            result = await asyncio.to_thread(self.handler, p)
            if asyncio.iscoroutine(result):
                await result

    async def take(self, done: dict[str, list[str]]) -> list[Process]:
        """Ack the finished processes of a queue and take its next tasks: one round trip.
        The acks leave ``done`` only once that call succeeded."""
        for q in self.order():
            try:
                batch = await self.w.dequeue_many(q, self.prefetch, finish=done.get(q, []))
            except (WorqrError, RedisError) as exc:
                await self.recover(q, exc)
                return []
            done.pop(q, None)
            self.errors = 0
            if batch:
                return batch
        return []

    async def recover(self, queue: str, exc: BaseException) -> None:
        if self.w.alive:
            self.errors += 1
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stop.wait(), self.take_failed(queue, exc, self.errors))
        else:
            await self.rejoin(exc)

    async def flush(self, done: dict[str, list[str]]) -> None:
        """Ack the finished processes; on an error they stay in ``done`` for the next try."""
        ids = [pid for pids in done.values() for pid in pids]
        if ids and await self.guard(self.w.finish_processes, ids):
            done.clear()

    async def guard(self, how: Callable[[Any], Any], arg: Any) -> bool:
        try:
            await how(arg)
        except (WorqrError, RedisError) as exc:
            self.unsettled(exc)
            return False
        return True

    async def join(self) -> None:
        await self.w.start_worker()
        for q in self.queues:
            await self.w.start_work(q)

    async def rejoin(self, exc: BaseException) -> None:
        """As SyncRunner.rejoin: one runner task re-registers, the others wait for it and
        then find the worker alive, so one process never holds several worker ids."""
        if not self.reregister:
            log.error("worker failed (%s); stopping (reregister=False)", exc)
            self.request_stop()
            return
        async with self.rejoining:
            attempt, joined = 0, False
            while not self.stop.is_set() and not self.w.alive:
                if attempt == 0:
                    log.warning("worker failed (%s); re-registering", exc)
                try:
                    await self.join()
                    joined = True
                except (WorqrError, RedisError) as again:
                    exc, attempt = again, attempt + 1
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self.stop.wait(), self.backoff(attempt))
            if joined:
                log.info("registered again as worker %s", self.w.worker_id)
