"""The worker runtime behind ``Worqr.run`` and ``AsyncWorqr.run``: take work when notified,
call the handler with each :class:`Process`, finish it on success, return it to the FRONT on an
exception, and shut down gracefully on SIGTERM/SIGINT (a second signal: at once).

Both runners and both owners share the policy here (``RunnerBase``, ``OwnerBase``); the
asyncio ones in ``_async/`` are the source of the sync ones in ``_sync/``.
"""

from __future__ import annotations

import collections
import itertools
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from ..core import validate as v
from ..core.jobs import JobCall
from ..core.keys import JOB_MARK
from ..core.model import Process
from ..drivers.base import jittered
from ..errors import JobTimeout, WorqrError
from .jobs import Counters, JobPolicy
from .retry import Retry, RetryLater

if TYPE_CHECKING:
    from ..core import Core

log = logging.getLogger("worqr_py.runtime")
Handler = Callable[[Process], Any]
RUN_DOC = """Run a worker on the queue(s) until SIGTERM/SIGINT or ``shutdown()``: take work when
notified, only from the queues that have work, in turn (no busy polling; when idle, one
check of all the queues every ``poll_interval``), call ``handler(process)`` in
``concurrency`` threads (asyncio: tasks; a plain-function handler runs in a thread), finish
the process when it returns (acked with the next take: one round trip per task; ``prefetch``
tasks are taken at a time, held by this worker meanwhile), and put it back at the FRONT of
its queue (logged) when it raises, or, with ``retry=Retry(...)``, into its queue's delayed
set for a retry after a backoff, and after the last retry into the dead-letter list with
the exception recorded beside it (``get_dead``). A handler may ``raise
RetryLater(seconds)``. On the first signal it takes no new work and gives in-flight
handlers ``grace`` seconds, then ``fail_worker()`` returns what is left; a second signal
stops at once.
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
        retry: Retry | None = None,
        jobs: JobPolicy | None = None,
    ) -> None:
        names = [queues] if isinstance(queues, str) else queues
        if not isinstance(names, (list, tuple)) or not names:
            raise TypeError("queues must be a queue name or a non-empty list of names")
        self.queues = [v.name(q, "queues") for q in names]
        self.queue_set = frozenset(self.queues)
        if not callable(handler):
            raise TypeError(f"handler must be callable, not {type(handler).__name__}")
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency must be an int of at least 1, got {concurrency!r}")
        self.handler = handler
        self.concurrency = concurrency
        self.grace = v.seconds(grace, "grace")
        self.reregister = v.flag(reregister, "reregister")
        if isinstance(prefetch, bool) or not isinstance(prefetch, int) or prefetch < 1:
            raise ValueError(f"prefetch must be an int of at least 1, got {prefetch!r}")
        self.prefetch = prefetch
        if retry is not None and not isinstance(retry, Retry):
            raise TypeError(f"retry must be a Retry or None, not {type(retry).__name__}")
        self.retry = retry
        # run_jobs: the job policy; each job's outcome until acked, its decoded call while
        # it runs, and the counters (the client's: they outlive a run)
        self.jobs = jobs
        self.outcomes: dict[str, str] = {}
        self.calls: dict[str, JobCall] = {}
        self.counters = Counters()
        self.signals = 0
        self.broken: set[str] = set()  # schedules reported as not evaluable
        self.errors = 0  # takes that failed in a row while the worker stayed alive
        # The queues known or suspected to have work, in the order they take turns, each with
        # the stamp of its latest mark; a take tries only these, so taking work costs what
        # the queues with work cost, not what the joined queues cost. Shared by the jobs and
        # the listener (sync: threads), hence the lock, never held across a call.
        self.ready: dict[str, int] = {}
        self.stamps = itertools.count(1)
        self.ready_lock = threading.Lock()
        self.polled = -math.inf  # when a job last asked Redis which queues have work
        self.busy_jobs = 0  # jobs running a batch; the others take a wake by name at once
        self.claims: collections.deque[str | None] = collections.deque()  # wakes kept
        self.sweeps = 0  # bumped when every idle job should take once (queues marked)

    def begin_batch(self) -> list[str | None]:
        """A job starts running a batch: count it busy, and return the kept wakes that no
        free job is left for now (a wake kept while this job's take was already under way),
        newest first, to be passed on. ``end_batch`` when the batch is done."""
        with self.ready_lock:
            self.busy_jobs += 1
            out = []
            while self.claims and self.busy_jobs + len(self.claims) > self.concurrency:
                out.append(self.claims.pop())
            return out

    def end_batch(self) -> None:
        """A job finished running its batch (``begin_batch``)."""
        with self.ready_lock:
            self.busy_jobs -= 1

    def claim(self, queue: str | None) -> bool:
        """Keep a wake by name if a job is free to take it (waiting, or between a take and
        its wait: it sees the wake before it waits) that no other kept wake has already;
        else the caller passes it on, so one free job does not sit on several wakes while
        other runners wait."""
        with self.ready_lock:
            if self.busy_jobs + len(self.claims) >= self.concurrency:
                return False
            self.claims.append(queue)
            return True

    def unclaim(self) -> bool:
        """A woken job takes the oldest kept wake, if any: whether it got one."""
        with self.ready_lock:
            if self.claims:
                self.claims.popleft()
                return True
            return False

    def sweep(self) -> None:
        """Every idle job should take once (queues were marked for all of them)."""
        with self.ready_lock:
            self.sweeps += 1

    def mark(self, *queues: str) -> None:
        """These queues have (or may have) work: a new one joins the back of the turns, one
        already there keeps its place (and gets a new stamp)."""
        with self.ready_lock:
            for q in queues:
                self.ready[q] = next(self.stamps)

    def turns(self, done: dict[str, list[str]]) -> list[tuple[str, int | None]]:
        """The queues a take tries, in order, with their stamps: first the queues holding
        finished processes of ours that are not ready (their acks ride on that dequeue, so
        they never wait for the queue's next task), then the ready queues, round robin."""
        with self.ready_lock:
            late: list[tuple[str, int | None]] = [
                (q, None) for q, ids in done.items() if ids and q not in self.ready
            ]
            return late + list(self.ready.items())

    def taken(self, queue: str, stamp: int | None, count: int) -> None:
        """A dequeue from ``queue`` returned ``count`` tasks. A full batch sends the queue to
        the back of the turns (no queue with work starves); a short one means it is empty
        now, so it leaves them, unless a ``work`` event marked it since the take began."""
        with self.ready_lock:
            now = self.ready.pop(queue, None)
            if count >= self.prefetch or (now is not None and now != stamp):
                self.ready[queue] = now if now is not None else next(self.stamps)

    def until_due(self, core: Core, interval: float) -> float:
        """How long an idle job waits: ``interval`` (the safety poll), or less, until the
        earliest delayed task of its queues is due (as the core learned it from each dequeue
        reply and poll)."""
        return max(0.0, min(interval, core.due_in(self.queue_set)))

    def fire_due(self, core: Core) -> bool:
        """Mark the queues whose earliest delayed task is due now (their dequeue promotes
        it). Whether any was."""
        fired = core.pop_due(self.queue_set)
        if fired:
            self.mark(*fired)
        return bool(fired)

    def poll_due(self, interval: float) -> bool:
        """Whether this idle job should ask Redis which queues have work: not when another
        job of this runner just did."""
        with self.ready_lock:
            now = time.monotonic()
            if now - self.polled < interval / 2:
                return False
            self.polled = now
            return True

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before re-registering again: exponential with full jitter."""
        return jittered(attempt, 0.05, 5.0)

    def check_limits(self, max_deliveries: int | None) -> None:
        """Warn when a crash can dead-letter a task before its retries are used up: a peer
        that reclaims a dead worker's task counts it against ``max_deliveries`` (it cannot
        know this runner's policy)."""
        retry = self.retry
        if retry is not None and max_deliveries is not None and max_deliveries <= retry.max + 1:
            log.warning(
                "max_deliveries=%d is not above Retry(max=%d) + 1: a task whose worker "
                "crashes on delivery %d or later is dead-lettered before its retries are "
                "used up; raise max_deliveries (or set None) to leave the count to the policy",
                max_deliveries,
                retry.max,
                max_deliveries,
            )

    def signalled(self) -> None:
        self.signals += 1
        if self.signals == 1:
            log.info("stopping: no new work; in-flight handlers get %.0f s", self.grace)
        else:
            log.warning("stopping now")

    def failed(
        self, p: Process, exc: BaseException, max_deliveries: int | None
    ) -> tuple[str, float]:
        """What becomes of a task whose handler raised ``exc`` (logged), as ``(how, wait)``:
        with a ``Retry`` policy, ``("retry", seconds)`` (its backoff, or a ``RetryLater``'s
        own wait; ``max_deliveries`` does not apply) until try ``max + 1`` failed, then
        ``("dead", 0)``. Without one: ``("later", seconds)`` for a ``RetryLater``, else
        ``("front", 0)``, both dead-lettered by the return once ``max_deliveries`` is reached."""
        if self.retry is not None:
            if p.deliveries > self.retry.max:
                how, wait = "dead", 0.0
            elif isinstance(exc, RetryLater):
                how, wait = "retry", exc.seconds
            else:
                how, wait = "retry", self.retry.delay(p.deliveries)
        elif isinstance(exc, RetryLater):
            how, wait = "later", exc.seconds
        else:
            how, wait = "front", 0.0
        capped = how in ("later", "front") and max_deliveries is not None
        if how == "dead" or (capped and p.deliveries >= (max_deliveries or 0)):
            outcome = f"dead-lettered after {p.deliveries} deliveries"
        elif how == "front":
            outcome = f"returned to the front of {p.queue!r} (delivery {p.deliveries})"
        else:
            outcome = f"tried again in {wait:.3g} s (delivery {p.deliveries})"
        if isinstance(exc, RetryLater) and not outcome.startswith("dead"):
            log.info("handler asked to retry %r: %s", p.task, outcome)
        else:
            log.error("handler failed on %r: %s", p.task, outcome, exc_info=exc)
        return how, wait

    def job_failed(
        self, p: Process, exc: BaseException, max_deliveries: int | None
    ) -> tuple[str, float]:
        """``failed`` for a job of ``run_jobs`` (``JobPolicy.failed``: "retry", "later" or
        "fail"), counted; for a plain task (``run``, or a plain task on a job queue) as
        ``failed``."""
        if self.jobs is None or not p.task.startswith(JOB_MARK):
            return self.failed(p, exc, max_deliveries)
        call = self.calls.pop(p.id, None)
        how, wait = self.jobs.failed(p, call, exc)
        name = call.function if call is not None else "?"
        self.counters.add(p.queue, name, "failed" if how == "fail" else "retried")
        if isinstance(exc, JobTimeout):
            self.counters.add(p.queue, name, "timed_out")
        return how, wait

    def job_done(self, p: Process, outcome: str | None) -> None:
        """A job returned (``outcome``: its settle outcome; None: it had no record)."""
        call = self.calls.pop(p.id, None)
        if outcome is not None:
            self.outcomes[p.id] = outcome
        self.counters.add(p.queue, call.function if call is not None else "?", "done")

    def acked(self, pids: list[str]) -> None:
        """These finishes reached Redis: their outcomes are no longer needed."""
        if not self.outcomes:  # none kept (plain tasks)
            return
        for pid in pids:
            self.outcomes.pop(pid, None)

    @staticmethod
    def not_started(p: Process) -> None:
        """A prefetched process was lost before its handler started (the worker failed):
        it is not run here (``lost`` told of it; a peer returns it to its queue)."""
        log.warning("not starting %s on %r: this worker no longer holds it", p.id, p.queue)

    @staticmethod
    def record_gone(p: Process) -> None:
        log.warning(
            "job %s: no record, or a stale copy (expired, its queue deleted, or a newer job "
            "of that id): dropped",
            p.task[1:],
        )

    @staticmethod
    def unsettled(exc: BaseException) -> None:
        log.warning(
            "could not settle (%s: %s); tried again on the next take, and if this worker "
            "fails first its tasks return to the front",
            type(exc).__name__,
            exc,
        )

    @staticmethod
    def until_fire(next_in: float, poll: float) -> float:
        """How long the schedule job sleeps: until the next fire time (a ms late, so the
        server's clock has reached it), at most ``poll``."""
        return max(0.001, min(poll, next_in + 0.001))

    @staticmethod
    def fire_failed(exc: BaseException) -> None:
        log.warning(
            "could not fire the periodic schedules (%s: %s); trying again on the next poll",
            type(exc).__name__,
            exc,
            exc_info=not isinstance(exc, (WorqrError, RedisError)),
        )

    def report_broken(self, broken: tuple[str, ...]) -> None:
        """Log, once each, the schedules this runner cannot evaluate (the others fire)."""
        for name in set(broken) - self.broken:
            log.error(
                "cannot evaluate the periodic schedule %s (set by another version?): "
                "skipped; the others fire",
                name,
            )
        self.broken = set(broken)

    @staticmethod
    def poll_failed(exc: BaseException) -> None:
        log.warning(
            "could not check the queues for work (%s: %s); trying again on the next poll",
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
