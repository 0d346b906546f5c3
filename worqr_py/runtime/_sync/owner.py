"""``Worqr.own``: persistent tasks on threads."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from ...core.model import FAIL_CALLED, Process
from ...drivers.base import jittered
from ...errors import WorqrError
from ..policy import OwnerBase, log

if TYPE_CHECKING:
    from ...drivers import Worqr


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
