"""``AsyncWorqr.own``: persistent tasks, each owned by one live worker at a time. This
asyncio file is the source: ``_sync/owner.py`` (``Worqr.own``) is generated from it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from ...core.model import Process, Reason
from ...drivers._async.primitives import Lock, call_now, run_callback, settle_all
from ...drivers.base import jittered
from ...errors import WorqrError
from ..policy import OwnerBase, log

if TYPE_CHECKING:
    from ...drivers import AsyncWorqr


class AsyncOwner(OwnerBase):
    """Takes the queue's tasks when notified (up to ``limit``), calls ``on_acquire``, and
    ``on_lost`` when one stops being this worker's; re-registers after a failure that was
    not a deliberate ``fail_worker()``, once every ``on_lost`` has returned."""

    def __init__(self, w: AsyncWorqr, *args: Any) -> None:
        super().__init__(*args)
        self.w = w
        self.lock = Lock()
        self.rejoining = Lock()
        self.losing: set[Any] = set()  # on_lost coroutines still running (asyncio)

    async def start(self) -> None:
        self.w.events.on("lost", self.lost)
        self.w.events.on("failed", self.failed)
        await self.w.on(self.queue, self.on_event)
        await self.join()

    async def join(self) -> None:
        await self.w.start_worker()  # the live worker's id, if it is alive
        await self.w.start_work(self.queue)  # announces queued work: on_event acquires it

    def joined(self) -> bool:
        """Alive and working on the queue (a rejoin may have registered and not joined)."""
        return self.w.alive and self.queue in self.w._core.worker.queues

    def deliberately_failed(self) -> bool:
        """``fail_worker()`` was called (maybe while a rejoin was backing off): stay down."""
        return self.w._core.worker.failed is Reason.CALLED

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
                    await run_callback(self.on_acquire, p)
                except Exception:
                    log.exception("on_acquire failed for %r; giving it back", p.task)
                    await self.w.stop_process(p.id)

    def lost(self, p: Process) -> None:
        """Call on_lost now; the core tells every ``lost`` before ``failed``, and rejoin
        waits for any on_lost still running, so none overlaps the new id's acquisitions."""
        if p.queue == self.queue:
            pending = call_now(self.on_lost, p)
            if pending is not None:
                self.losing.add(pending)
                pending.add_done_callback(self.losing.discard)

    def failed(self, worker_id: str, reason: str) -> None:
        if reason is not Reason.CALLED and not self.w._closed():
            self.w._background.spawn(self.rejoin, "worqr-owner-rejoin")

    async def rejoin(self) -> None:
        """Wait until every on_lost of the failed worker has finished, then re-register (one
        rejoin at a time) and take over what is free."""
        await settle_all(self.losing)
        if self.rejoining.locked():
            return  # another rejoin is under way: one new id, not several
        async with self.rejoining:
            attempt = 0
            while not self.w._closed() and not self.deliberately_failed() and not self.joined():
                try:
                    await self.join()
                except (WorqrError, RedisError):
                    attempt += 1
                    if await self.w._closing.wait(jittered(attempt, 0.05, 5.0)):
                        return
