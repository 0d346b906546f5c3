"""``AsyncWorqr.own``: persistent tasks on asyncio."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from ...core.model import FAIL_CALLED, Process
from ...drivers.base import jittered
from ...errors import WorqrError
from ..policy import OwnerBase, log

if TYPE_CHECKING:
    from ...drivers import AsyncWorqr


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
