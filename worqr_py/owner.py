"""Persistent tasks, behind ``Worqr.own`` and ``AsyncWorqr.own``: long-lived tasks (a
connection, a subscription, a shard) that are never finished, each owned by exactly one live
worker at a time.

The owner takes tasks from the queue when notified, up to ``limit``, and calls
``on_acquire(process)``; it calls ``on_lost(process)`` when the task is no longer its own
(its worker failed, was reclaimed, or a fenced call found the process gone). After a failure
it registers a new worker id and takes over whatever is free again. Release a task with
``stop_process(id)`` (back to the queue for another owner) or end it with ``finish_process``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from . import validate as v
from .driver import jittered
from .errors import WorqrError
from .model import FAIL_CALLED, Process

if TYPE_CHECKING:
    from .aio import AsyncWorqr
    from .sync import Worqr

log = logging.getLogger("worqr_py.owner")
OWN_DOC = """Own the queue's tasks as persistent tasks: take them (up to ``limit`` at a time) when
notified and call ``on_acquire(process)``; never finish them. ``on_lost(process)`` is called
when one is no longer this worker's (the worker failed or was reclaimed), after which another
live worker takes it over; this worker then re-registers and takes what is free. Callbacks may
be coroutine functions with AsyncWorqr. Starts the worker. Returns at once."""
Callback = Callable[[Process], Any]


class OwnerBase:
    def __init__(
        self, queue: str, on_acquire: Callback, on_lost: Callback, limit: int | None
    ) -> None:
        self.queue = v.name(queue, "queue")
        for name, f in (("on_acquire", on_acquire), ("on_lost", on_lost)):
            if not callable(f):
                raise TypeError(f"{name} must be callable, not {type(f).__name__}")
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise ValueError(f"limit must be None or an int of at least 1, got {limit!r}")
        self.on_acquire, self.on_lost, self.limit = on_acquire, on_lost, limit

    def room(self, held: list[Process]) -> bool:
        return self.limit is None or sum(p.queue == self.queue for p in held) < self.limit


class SyncOwner(OwnerBase):
    def __init__(self, w: Worqr, *args: Any) -> None:
        super().__init__(*args)
        self.w = w
        self.lock = threading.Lock()
        self.rejoining = threading.Lock()

    def start(self) -> None:
        self.w.events.on("lost", self.lost)
        self.w.events.on("failed", self.failed)
        self.w.on(self.queue, self.on_event)
        self.join()

    def join(self) -> None:
        self.w.start_worker()
        self.w.start_work(self.queue)  # announces queued work: on_event acquires it

    def on_event(self, kind: str, message: str) -> None:
        if kind == "work":
            self.acquire()

    def acquire(self) -> None:
        with self.lock:
            while self.room(self.w.processes):
                try:
                    p = self.w.dequeue(self.queue)
                except (WorqrError, RedisError):
                    return
                if p is None:
                    return
                try:
                    self.on_acquire(p)
                except Exception:
                    log.exception("on_acquire failed for %r; giving it back", p.task)
                    self.w.stop_process(p.id)

    def lost(self, p: Process) -> None:
        if p.queue == self.queue:
            self.on_lost(p)

    def failed(self, worker_id: str, reason: str) -> None:
        """The core tells ``lost`` for every held process before ``failed``, and a sync
        handler runs to its end, so every on_lost has returned before the new id acquires."""
        if reason != FAIL_CALLED and not self.w._closed():
            threading.Thread(target=self.rejoin, name="worqr-owner-rejoin", daemon=True).start()

    def rejoin(self) -> None:
        if not self.rejoining.acquire(blocking=False):
            return  # another thread is re-registering: one new id, not several
        try:
            attempt = 0
            while not self.w._closed() and not self.w.alive:
                try:
                    self.join()
                except (WorqrError, RedisError):
                    attempt += 1
                    if self.w._closing.wait(jittered(attempt, 0.05, 5.0)):
                        return
        finally:
            self.rejoining.release()


class AsyncOwner(OwnerBase):
    def __init__(self, w: AsyncWorqr, *args: Any) -> None:
        super().__init__(*args)
        self.w = w
        self.lock = asyncio.Lock()
        self.rejoining = asyncio.Lock()
        self.losing: set[asyncio.Task[Any]] = set()  # on_lost calls not yet finished

    async def start(self) -> None:
        self.w.events.on("lost", self.lost)
        self.w.events.on("failed", self.failed)
        await self.w.on(self.queue, self.on_event)
        await self.join()

    async def join(self) -> None:
        await self.w.start_worker()
        await self.w.start_work(self.queue)

    async def on_event(self, kind: str, message: str) -> None:
        if kind == "work":
            await self.acquire()

    async def acquire(self) -> None:
        async with self.lock:
            while self.room(self.w.processes):
                try:
                    p = await self.w.dequeue(self.queue)
                except (WorqrError, RedisError):
                    return
                if p is None:
                    return
                try:
                    result = self.on_acquire(p)
                    if asyncio.iscoroutine(result):
                        await result
                except Exception:
                    log.exception("on_acquire failed for %r; giving it back", p.task)
                    await self.w.stop_process(p.id)

    def lost(self, p: Process) -> None:
        """Run on_lost now (a coroutine: as a task that rejoin waits for)."""
        if p.queue != self.queue:
            return
        result = self.on_lost(p)
        if asyncio.iscoroutine(result):
            task = asyncio.ensure_future(result)
            self.losing.add(task)
            task.add_done_callback(self.losing.discard)

    def failed(self, worker_id: str, reason: str) -> None:
        if reason != FAIL_CALLED and not self.w._closed():
            self.w._spawn(self.rejoin())

    async def rejoin(self) -> None:
        """Wait until every on_lost of the failed worker has finished, then re-register (one
        rejoin at a time) and take over what is free."""
        if self.losing:
            await asyncio.gather(*self.losing, return_exceptions=True)
        if self.rejoining.locked():
            return
        async with self.rejoining:
            attempt = 0
            while not self.w._closed() and not self.w.alive:
                try:
                    await self.join()
                except (WorqrError, RedisError):
                    attempt += 1
                    await asyncio.sleep(jittered(attempt, 0.05, 5.0))
