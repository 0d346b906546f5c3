# GENERATED from worqr_py/runtime/_async/runner.py by scripts/unasync.py: do not edit.
# Edit that file, then run: python scripts/unasync.py
"""``Worqr.run``: the worker runtime (``concurrency`` jobs each taking, handling and
acking tasks). This asyncio file is the source: ``_sync/runner.py`` (``Worqr.run``, on
threads) is generated from it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from ...core.model import Process
from ...drivers._sync.primitives import (
    Event,
    Job,
    Lock,
    run_handler,
    signal_handlers,
    start,
    wait_all,
)
from ...errors import WorkerFailed, WorqrError
from ..policy import RunnerBase, log

if TYPE_CHECKING:
    from ...drivers import Worqr


class SyncRunner(RunnerBase):
    """``run``: ``concurrency`` jobs, each taking ``prefetch`` tasks at a time."""

    def __init__(self, w: Worqr, *args: Any) -> None:
        super().__init__(*args)
        self.w = w
        self.wake, self.stop, self.force = Event(), Event(), Event()
        self.rejoining = Lock()
        # one handler per queue, remembering it: a ``work`` event marks that queue ready
        self.listeners = {q: partial(self.on_event, q) for q in self.queues}

    def run(self) -> None:
        self.w.events.on("failed", self.on_failed)
        jobs: list[Job] = []
        try:
            self.w._on_each(self.listeners)  # one SUBSCRIBE for all the queues
            self.start()
            jobs = [start(self.loop, f"worqr-run-{i}") for i in range(self.concurrency)]
            with signal_handlers(self.on_signal):
                while not self.stop.wait(0.2):  # a bounded wait: signals get through
                    pass
                wait_all(jobs, self.grace, self.force)
        finally:  # also when run() itself is cancelled: no runner job outlives it
            self.request_stop(force=True)
            wait_all(jobs, 0, self.force)
            self.w.events.remove_listener("failed", self.on_failed)
            for q, listener in self.listeners.items():
                self.w.off(q, listener)
            if self.w.alive:
                self.w.fail_worker()  # what is still running goes back to the front now

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

    def on_event(self, queue: str, kind: str, message: str) -> None:
        if kind == "work":  # new tasks, or queued ones announced by start_work/on/the poll
            self.mark(queue)
            self.wake.set()

    def loop(self) -> None:
        poll = self.w._core.options.poll_interval
        max_deliveries = self.w._core.options.max_deliveries
        done: dict[str, list[str]] = {}  # finished, to be acked with the next take
        try:
            while not self.stop.is_set():
                self.wake.clear()
                batch = self.take(done)
                if not batch:
                    self.flush(done)
                    if not self.wake.wait(poll):
                        self.poll(poll)
                    continue
                for p in batch:
                    if self.stop.is_set():
                        break  # prefetched, not started: fail_worker returns it to the front
                    try:
                        run_handler(self.handler, p)
                    except Exception as exc:
                        self.failed(p, exc, max_deliveries)
                        self.guard(self.w.stop_process, p.id)
                    else:
                        done.setdefault(p.queue, []).append(p.id)
        finally:
            self.flush(done)

    def take(self, done: dict[str, list[str]]) -> list[Process]:
        """Ack the finished processes of a queue and take its next tasks: one round trip.
        Only the queues with work (``ready``) are tried, in turn. The acks leave ``done``
        only once that call succeeded."""
        if not self.w.alive:
            self.rejoin(WorkerFailed(f"worker {self.w.worker_id} failed"))
            return []
        for q, stamp in self.turns(done):
            try:
                batch = self.w.dequeue_many(q, self.prefetch, finish=done.get(q, []))
            except (WorqrError, RedisError) as exc:
                self.recover(q, exc)
                return []
            done.pop(q, None)
            self.errors = 0
            self.taken(q, stamp, len(batch))
            if batch:
                return batch
        return []

    def poll(self, interval: float) -> None:
        """Idle for ``interval``: ask Redis which of the queues have tasks (one round trip
        for all of them, whose notifications may have been lost) and mark those ready."""
        if not self.poll_due(interval) or not self.w.alive:
            return
        try:
            pending = self.w._run(self.w._core.pending_work())
        except (WorqrError, RedisError) as exc:
            self.poll_failed(exc)
            return
        self.mark(*[q for q, _ in pending if q in self.listeners])

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
        self.w.start_worker()  # the live worker's id, if it is alive
        for q in self.queues:
            if q not in self.w._core.worker.queues:
                self.w.start_work(q)

    def joined(self) -> bool:
        """Alive and working on every queue (a rejoin may have joined only some)."""
        return self.w.alive and set(self.queues) <= self.w._core.worker.queues

    def rejoin(self, exc: BaseException) -> None:
        """After a failure (heartbeat lost, Redis down): register a new worker id and join
        the queues again, with backoff, until it works or the runner stops. One job at a
        time: the others wait, then find the worker alive, so one process never holds
        several worker ids."""
        if not self.reregister:
            log.error("worker failed (%s); stopping (reregister=False)", exc)
            self.request_stop()
            return
        with self.rejoining:
            attempt, joined = 0, False
            while not self.stop.is_set() and not self.joined():
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
                self.mark(*self.queues)  # what was announced meanwhile may have been missed
