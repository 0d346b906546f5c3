# GENERATED from worqr_py/runtime/_async/owner.py by scripts/unasync.py: do not edit.
# Edit that file, then run: python scripts/unasync.py
"""``Worqr.own``: persistent tasks, each owned by one live worker at a time. This
asyncio file is the source: ``_sync/owner.py`` (``Worqr.own``) is generated from it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from ...core.model import Process, Reason
from ...drivers._sync.primitives import Lock, call_now, run_callback, settle_all
from ...drivers.base import jittered
from ...errors import WorqrError
from ..policy import OwnerBase, log

if TYPE_CHECKING:
    from ...drivers import Worqr


class SyncOwner(OwnerBase):
    """Takes the queue's tasks when notified (up to ``limit``), calls ``on_acquire``, and
    ``on_lost`` when one stops being this worker's; re-registers after a failure that was
    not a deliberate ``fail_worker()``, once every ``on_lost`` has returned."""

    def __init__(self, w: Worqr, *args: Any) -> None:
        super().__init__(*args)
        self.w = w
        self.lock = Lock()
        self.rejoining = Lock()
        self.losing: set[Any] = set()  # on_lost coroutines still running (threads)

    def start(self) -> None:
        self.w.events.on("lost", self.lost)
        self.w.events.on("failed", self.failed)
        self.w.on(self.queue, self.on_event)
        self.join()

    def join(self) -> None:
        self.w.start_worker()  # the live worker's id, if it is alive
        self.w.start_work(self.queue)  # announces queued work: on_event acquires it

    def joined(self) -> bool:
        """Alive and working on the queue (a rejoin may have registered and not joined)."""
        return self.w.alive and self.queue in self.w._core.worker.queues

    def deliberately_failed(self) -> bool:
        """``fail_worker()`` was called (maybe while a rejoin was backing off): stay down."""
        return self.w._core.worker.failed is Reason.CALLED

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
                    run_callback(self.on_acquire, p)
                except Exception:
                    log.exception("on_acquire failed for %r; giving it back", p.task)
                    self.w.stop_process(p.id)

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

    def rejoin(self) -> None:
        """Wait until every on_lost of the failed worker has finished, then re-register (one
        rejoin at a time) and take over what is free."""
        settle_all(self.losing)
        if self.rejoining.locked():
            return  # another rejoin is under way: one new id, not several
        with self.rejoining:
            attempt = 0
            while not self.w._closed() and not self.deliberately_failed() and not self.joined():
                try:
                    self.join()
                except (WorqrError, RedisError):
                    attempt += 1
                    if self.w._closing.wait(jittered(attempt, 0.05, 5.0)):
                        return
