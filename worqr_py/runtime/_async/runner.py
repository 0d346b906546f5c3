"""``AsyncWorqr.run``: the worker runtime on asyncio tasks."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from ...core.model import Process
from ...errors import WorkerFailed, WorqrError
from ..policy import SIGNALS, RunnerBase, log

if TYPE_CHECKING:
    from ...drivers import AsyncWorqr


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
