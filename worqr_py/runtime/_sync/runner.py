# GENERATED from worqr_py/runtime/_async/runner.py by scripts/unasync.py: do not edit.
# Edit that file, then run: python scripts/unasync.py
"""``Worqr.run``: the worker runtime (``concurrency`` jobs each taking, handling and
acking tasks). This asyncio file is the source: ``_sync/runner.py`` (``Worqr.run``, on
threads) is generated from it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from ...core.keys import JOB_MARK
from ...core.model import Process
from ...drivers._sync.primitives import (
    Event,
    Job,
    Lock,
    handler_runner,
    run_job_call,
    signal_handlers,
    start,
    until_set,
    wait_all,
)
from ...drivers.base import REFUSED
from ...errors import WorkerFailed, WorqrError
from ..jobs import job_error, log_done
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
        self.run_one = self.run_job if self.jobs is not None else handler_runner(self.handler)
        self.joined_as: str | None = None  # the worker id whose join completed

    def run(self) -> None:
        self.w.events.on("failed", self.on_failed)
        self.check_limits(self.w._core.options.max_deliveries)
        jobs: list[Job] = []
        try:
            self.start()  # takes no work yet: a signal meanwhile acts as without run()
            # Signals are ours before any work is taken: a SIGTERM while a first task runs
            # stops gracefully, never by the default handler.
            with signal_handlers(self.on_signal):
                jobs = [start(self.loop, f"worqr-run-{i}") for i in range(self.concurrency)]
                jobs.append(start(self.fire_loop, "worqr-schedules"))
                until_set(self.stop)  # signals get through (sync: bounded waits)
                wait_all(jobs, self.grace, self.force)
        finally:  # also when run() itself is cancelled: no runner job outlives it
            self.request_stop(force=True)
            wait_all(jobs, 0, self.force)
            self.w.events.remove_listener("failed", self.on_failed)
            self.w._unwake(self.on_wake)
            if self.w.alive:
                self.w.fail_worker()  # what is still running goes back to the front now
            if self.jobs is not None:  # and is not run on here as well (isolation="process")
                self.jobs.children.kill_all()

    def start(self) -> None:
        """Register and join. A failure after registering (a lost heartbeat, a subscribe
        that timed out on a busy machine) goes through re-registration; one before it (Redis
        unreachable for ``retry_timeout``, bad credentials, an ACL's NOPERM) is raised."""
        try:
            self.join()
        except (WorqrError, RedisError) as exc:
            if self.w.worker_id is None or isinstance(exc, REFUSED):
                raise
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

    def on_wake(self, queue: str | None) -> None:
        """This worker was woken for a queue (None: the subscriber reconnected, so a wake
        may have been missed: every queue). Take from it, or, with no job free to take (or
        stopping), also pass the wake on to the next waiting worker."""
        if queue is not None and queue not in self.queue_set:
            return
        if queue is None:
            self.sweep()
        stopping = self.stop.is_set()
        if not stopping:
            self.mark(*(self.queues if queue is None else [queue]))
            self.wake.set()  # a job about to rest takes it; busy ones try it when free
        if stopping or not self.claim(queue):  # and the next waiting worker may take it
            self.pass_on(queue)

    def pass_on(self, queue: str | None) -> None:
        self.w._background.spawn(partial(self.pass_wake, queue), "worqr-pass-wake")

    def pass_wake(self, queue: str | None) -> None:
        """Pass a wake on (None: any missed on the queues that have tasks)."""
        core = self.w._core
        try:
            if queue is None:
                queues = [q for q, _ in self.w._run(core.pending_work(self.queues))]
            else:
                queues = [queue]
            self.w._run(core.pass_wake(queues), retry=False)
        except (WorqrError, RedisError) as exc:  # the poll and the reap still catch it
            self.unsettled(exc)

    def loop(self) -> None:
        core = self.w._core
        poll = core.options.poll_interval
        max_deliveries = core.options.max_deliveries
        done: dict[str, list[str]] = {}  # finished, to be acked with the next take
        unsettled: list[Callable[[], Any]] = []  # failed returns, tried again each turn
        go, seen = True, self.sweeps  # take now (at the start, and after each batch)
        try:
            while not self.stop.is_set():
                self.wake.clear()
                if unsettled:
                    self.resettle(unsettled)
                # A woken job takes only for a wake it keeps (one job per wake, not every
                # idle job), a sweep (queues marked by a join, rejoin, or reconnect), or a
                # failed worker (the take re-registers).
                go = go or self.unclaim() or seen != self.sweeps or not self.w.alive
                go = self.fire_due(core) or go  # a delayed task came due: take (promotes it)
                if not go:
                    if not self.wake.wait(self.until_due(core, poll)):
                        if not self.fire_due(core):
                            self.poll(poll)
                        go = True
                    continue
                go, seen = False, self.sweeps
                batch = self.take(done)
                if not batch:
                    self.flush(done)
                    continue
                passed = self.begin_batch()
                try:
                    for q in passed:
                        self.pass_on(q)
                    self.handle(batch, done, max_deliveries, unsettled)
                finally:
                    self.end_batch()
                go = True  # ack with the next take, which may find more
        finally:
            self.flush(done)
            self.resettle(unsettled)

    def fire_loop(self) -> None:
        """Fire the periodic schedules while this worker lives: enqueue what is due (each
        fire time once, whoever else fires), then sleep until the next fire time, or the
        poll interval (a schedule set meanwhile is seen by then, and fired late if due)."""
        core = self.w._core
        poll = core.options.poll_interval
        while not self.stop.is_set():
            wait = poll
            if self.joined():
                try:
                    wait = self.until_fire(self.w._run(core.fire_schedules()), poll)
                except Exception as exc:  # never the end of firing while this runner runs
                    self.fire_failed(exc)
                self.report_broken(core.broken_schedules)
            self.stop.wait(wait)

    def handle(
        self,
        batch: list[Process],
        done: dict[str, list[str]],
        max_deliveries: int | None,
        unsettled: list[Callable[[], Any]],
    ) -> None:
        """Run the handler on each process of a batch: finished ones go to ``done`` (acked
        with the next take), failed ones back at once: to the front, to the delayed set (a
        retry later) or to the dead-letter list (``failed`` says which). A process this
        worker no longer holds (it failed meanwhile: its processes were lost, and a peer
        returns them) is not started. ``SystemExit`` (``sys.exit()`` in a handler) fails the
        task like any exception, instead of ending the job that runs it."""
        core = self.w._core
        finished = done.setdefault(batch[0].queue, []) if batch else []  # a batch: one queue
        for p in batch:
            if self.stop.is_set():
                break  # prefetched, not started: fail_worker returns it to the front
            if p.id not in core.worker.held:  # read each time: a failure replaces it
                self.not_started(p)  # lost: another worker may be running it already
                continue
            try:
                outcome = self.run_one(p)
            except (Exception, SystemExit) as exc:
                how, wait = self.job_failed(p, exc, max_deliveries)
                if how == "fail":  # a job's last try: it ends failed, acked with the next take
                    finished.append(p.id)
                    self.outcomes[p.id] = "x:" + job_error(exc)
                    continue
                if how == "dead":
                    settle = partial(self.w.dead_letter_process, error=exc)
                elif how == "retry":
                    settle = partial(self.w._retry_process, delay=wait, error=exc)
                else:
                    settle = partial(self.w.stop_process, delay=wait or None, error=exc)
                if not self.guard(settle, p.id):  # BUSY, NOPERM...: tried again
                    unsettled.append(partial(settle, p.id))
            else:
                finished.append(p.id)
                if self.jobs is not None:
                    self.job_done(p, outcome)

    def run_job(self, p: Process) -> str | None:
        """Run a job: decode its call, call its function (``run_job_call``: timeouts and
        isolation), and return its outcome with the result serialized. A job task whose
        record is gone, or a stale copy (its record in another state), is just dropped."""
        assert self.jobs is not None
        core = self.w._core
        if not p.task.startswith(JOB_MARK):
            raise ValueError(f"a plain task on a job queue: {p.task[:100]!r}")
        if p.job is None:
            self.record_gone(p)
            return None
        call = core.parse_job(p.queue, p.task, p.job)
        self.calls[p.id] = call
        f, kwargs = self.jobs.prepare(call, p)
        self.jobs.retry_of(call)  # unreadable options fail the job now, not its failure
        timeout = self.jobs.timeout_of(call)
        started = time.monotonic()
        children = self.jobs.children
        result = run_job_call(f, call.args, kwargs, timeout, self.jobs.isolation, children)
        outcome = core.finished(result)
        log_done(call, p, started)
        return outcome

    def take(self, done: dict[str, list[str]]) -> list[Process]:
        """Ack the finished processes of a queue and take its next tasks: one round trip.
        Only the queues with work (``ready``) are tried, in turn. The acks leave ``done``
        only once that call succeeded."""
        if not self.w.alive:
            self.rejoin(WorkerFailed(f"worker {self.w.worker_id} failed"))
            return []
        for q, stamp in self.turns(done):
            try:
                batch = self.w._take(q, self.prefetch, done.get(q, []), self.outcomes)
            except (WorqrError, RedisError) as exc:
                self.recover(q, exc)
                return []
            self.acked(done.pop(q, []))
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
        self.mark(*[q for q, _ in pending if q in self.queue_set])

    def recover(self, queue: str, exc: BaseException) -> None:
        if self.w.alive:
            self.errors += 1
            self.stop.wait(self.take_failed(queue, exc, self.errors))
        else:
            self.rejoin(exc)

    def flush(self, done: dict[str, list[str]]) -> None:
        """Ack the finished processes; on an error they stay in ``done`` for the next try."""
        ids = [pid for pids in done.values() for pid in pids]
        if ids and self.guard(partial(self.w._finish, outcomes=self.outcomes), ids):
            done.clear()
            self.acked(ids)

    def resettle(self, unsettled: list[Callable[[], Any]]) -> None:
        """Try the returns that failed again, oldest first (each fenced: one that is no
        longer this worker's changes nothing); stop at the first that fails again."""
        while unsettled:
            if not self.guard(lambda _: unsettled[0](), None):
                return
            unsettled.pop(0)

    def guard(self, how: Callable[[Any], Any], arg: Any) -> bool:
        try:
            how(arg)
        except (WorqrError, RedisError) as exc:
            self.unsettled(exc)
            return False
        return True

    def join(self) -> None:
        """Register (unless alive), listen on the worker's wake channel, join the queues,
        wait for work on them (the next task on each wakes this worker by name), then mark
        those that have tasks: in this order, no task enqueued meanwhile goes unnoticed."""
        core = self.w._core
        self.w.start_worker()  # the live worker's id, if it is alive
        self.w._wake_me(self.on_wake, self.queues)
        for q in self.queues:
            if q not in core.worker.queues:
                self.w._run(core.start_work(q))
        self.w._run(core.wait_for_work(self.queues))  # also queues joined before run()
        self.mark(*[q for q, _ in self.w._run(core.pending_work(self.queues))])
        self.sweep()
        self.wake.set()
        self.joined_as = core.worker.id

    def joined(self) -> bool:
        """Alive and its join complete: every queue joined (a rejoin may have joined only
        some), the wake channel listened to, and waiting for work on every queue."""
        return self.w.alive and self.joined_as == self.w.worker_id

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
                self.sweep()
