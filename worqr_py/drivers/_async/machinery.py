"""The machinery of a client: running the core's steps on redis-py (with retries and NOSCRIPT
reloads), and the heartbeat, supervisor and pub/sub listener jobs. The client (client.py)
adds the public API on top.

This asyncio file is the source: ``_sync/machinery.py`` is generated from it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

from ...core import Process
from ...core.calls import Call, Op, Step
from ...core.model import WorkerState
from ...errors import WorqrError
from ..base import FATAL, REFUSED, RETRYABLE, DriverBase, RetryClock
from ..connect import HEALTH_CHECK_S
from .cluster_io import ClusterExecutor, ShardedPubSub, executor
from .primitives import Background, Event, Job, Semaphore, settled, start, state_lock
from .redis_io import Executor, PubSub

T = TypeVar("T")
JOB_READS = 4  # reads of job waiters in flight at once, per client: at most that many connections


class Machinery(DriverBase):
    """Executes operations and runs the background jobs of a client."""

    _redis: Any
    _sub: Any

    def _init_machinery(self) -> None:
        self._closing = Event()
        self._supervise = Event()  # set when this worker won the supervision turn
        self._executor: Executor | ClusterExecutor = executor(self._redis)
        self._core.sharded = isinstance(self._executor, ClusterExecutor)  # sharded pub/sub
        self._background = Background()
        self._beating: Job | None = None
        self._supervisor: Job | None = None
        self._listener: Job | None = None
        self._requests: deque[tuple[str, Event]] = deque()  # channels to subscribe
        self._leaving: deque[str] = deque()  # channels to unsubscribe
        self._pubsub: PubSub | ShardedPubSub | None = None  # the listener's, once it runs
        self._starting = state_lock()  # one listener, however many threads subscribe at once
        self._job_reads = Semaphore(JOB_READS)  # job waiters' reads in flight (connections)

    def _closed(self) -> bool:
        return self._closing.is_set()

    # ---- execution ----------------------------------------------------------------------
    async def _run(self, op: Op[T], retry: bool = True, until: float | None = None) -> T:
        try:
            step = next(op)
            while True:
                step = op.send(await self._retrying(step, retry, until))
        except StopIteration as stop:
            result: T = stop.value
            return result

    async def _retrying(self, step: Step, retry: bool, until: float | None = None) -> Any:
        """Run a step; while Redis is unreachable, again after a jittered backoff, for up to
        ``retry_timeout`` (or until ``until``, a caller's ``time.monotonic()`` deadline, if
        sooner; every step is safe to replay: see the README). Errors that waiting cannot
        cure (bad credentials) are raised at once."""
        clock = None
        while True:
            try:
                if isinstance(step, Call):
                    return await self._executor.call(step)
                replies = await self._executor.pipeline(step)
                for r in replies:
                    if isinstance(r, Exception):
                        raise r
                return replies
            except RETRYABLE as exc:
                if isinstance(exc, FATAL):
                    raise
                if clock is None:
                    window = self._core.options.retry_timeout if retry else 0
                    if until is not None:
                        window = min(window, until - time.monotonic())
                    clock = RetryClock(window)
                delay = clock.delay()
                if delay is None or await self._closing.wait(delay):
                    raise

    async def _taking(self, op: Op[list[Process]]) -> list[Process]:
        """Run a dequeue so that cancelling the caller cannot strand what it took: what it
        took then goes back to the front (give_back), not into this live worker's record
        unseen."""
        return await settled(lambda: self._run(op), self._give_back)

    async def _take(
        self, queue: str, count: int, finish: list[str], outcomes: dict[str, str]
    ) -> list[Process]:
        """The runtime's ``dequeue_many``: it also takes part in waking one worker per task
        (a short take makes this worker one the next task wakes by name), and ends the jobs
        it finishes as ``outcomes`` say."""
        op = self._core.dequeue(queue, count, finish, True, outcomes)
        return await self._taking(op)

    async def _finish(self, process_ids: list[str], outcomes: dict[str, str]) -> list[bool]:
        """The runtime's ``finish_processes``, ending jobs as ``outcomes`` say."""
        return await self._run(self._core.finish_processes(process_ids, None, outcomes))

    async def _wake_me(self, callback: Callable[[str | None], None], queues: list[str]) -> None:
        """Route this worker's wake channels to ``callback`` (the runtime's: a named wake
        carries the queue) and subscribe to them: one channel, or on a Redis Cluster one per
        queue of ``queues``. Those of a previous worker id of this client with the same
        callback are dropped."""
        channels = self._core.wake_channels(self._core.worker.id or "", queues)
        self._unwake(callback, keep=set(channels))
        new = [c for c in channels if c not in self._wakes]
        for channel in new:
            self._wakes[channel] = callback
        try:
            if new:
                await self._subscribe(*new)
        except BaseException:
            for channel in new:
                self._wakes.pop(channel, None)
            raise

    def _unwake(
        self, callback: Callable[[str | None], None], keep: frozenset[str] | set[str] = frozenset()
    ) -> None:
        """Stop routing wake channels (but ``keep``) to ``callback``, and unsubscribe them."""
        for old in [c for c, f in self._wakes.items() if f == callback and c not in keep]:
            del self._wakes[old]
            self._leaving.append(old)
        if self._leaving:
            self._wake_listener()

    def _give_back(self, procs: list[Process]) -> None:
        self._background.spawn(lambda: self._guard(self._core.give_back(procs)), "worqr-back")

    async def _guard(self, op: Op[Any], retry: bool = True) -> Any:
        try:
            return await self._run(op, retry)
        except Exception as exc:
            self._error(exc)
            return None

    # ---- background jobs ----------------------------------------------------------------
    def _schedule_cleanup(self, worker: WorkerState) -> None:
        """The Redis side of a failure, in the background; close() lets it finish."""
        work = lambda: self._guard(self._core.cleanup(worker))  # noqa: E731
        self._background.spawn(work, "worqr-cleanup", keep=True)

    def _start_jobs(self) -> None:
        """Heartbeats and supervision, once per client (they outlive a failed worker)."""
        self._background.bind()
        if self._beating is None or self._beating.done():
            self._beating = start(self._beat_loop, "worqr-heartbeat")
            self._supervisor = start(self._supervise_loop, "worqr-supervisor")

    async def _stop_jobs(self) -> None:
        self._closing.set()
        self._wake_job_waiters()  # each raises ClientClosed instead of waiting on
        self._supervise.set()  # wakes the supervisor, which sees the close and ends
        self._wake_listener()
        await self._background.close(5)
        for job in (self._beating, self._supervisor, self._listener):
            if job is not None:
                await job.stop(5)
        await self._executor.release()

    def _wake_listener(self) -> None:
        if self._pubsub is not None:
            self._pubsub.wake()

    async def _beat_loop(self) -> None:
        """Beat every interval until close. It outlives a failed worker (skipping its ticks),
        so a worker registered again is never left without heartbeats. The next beat is the
        retry; a won turn wakes the supervisor, so a long scan never delays a beat."""
        interval = self._core.options.heartbeat_interval
        due = time.monotonic()
        while not self._closing.is_set():
            due = max(due + interval, time.monotonic())
            if await self._closing.wait(due - time.monotonic()):
                return
            w = self._core.worker
            if w.id is None or w.failed is not None:
                continue
            if await self._guard(self._core.beat(), retry=False):
                self._supervise.set()

    async def _supervise_loop(self) -> None:
        """Scan for dead workers and promote due delayed tasks whenever this worker won the
        supervision turn."""
        while True:
            await self._supervise.wait()
            if self._closing.is_set():
                return
            self._supervise.clear()
            await self._guard(self._core.supervise(), retry=False)
            await self._guard(self._core.promote_due(), retry=False)

    async def _subscribe(self, *channels: str, within: float | None = None) -> None:
        """Have the listener subscribe to the channels (one SUBSCRIBE for all of them) and
        wait until it has: for ``retry_timeout`` (at least 10 s), on a Redis Cluster 10 s
        more (a subscribe sent to a master that went silent is re-placed once unanswered for
        a health-check interval, then waits for the failover like any call); or ``within``
        seconds, if less (a caller's deadline). Raises ``WorqrError`` when that time is up."""
        requests = [(channel, Event()) for channel in channels]
        self._requests.extend(requests)
        self._wake_listener()
        with self._starting:
            if self._listener is None:
                self._listener = start(self._listen, "worqr-listener")
        if self._listener.is_current():
            return
        wait = max(10.0, self._core.options.retry_timeout)
        if self._core.sharded:  # a silent master is taken for lost after a health interval
            wait += 2 * HEALTH_CHECK_S
        if within is not None:
            wait = min(wait, within)
        deadline = time.monotonic() + wait
        try:
            for channel, done in requests:
                if not await done.wait(max(0.0, deadline - time.monotonic())):
                    raise WorqrError(f"could not subscribe to {channel!r} within {wait:g} s")
                refused = self._refused.get(done)
                if refused is not None:
                    raise refused
        finally:
            for _, done in requests:
                self._refused.pop(done, None)

    def _new_pubsub(self) -> PubSub | ShardedPubSub:
        """The listener's subscriber: on a Redis Cluster, sharded (each queue's channels on
        its slot's master); else one connection of the subscriber client."""
        if isinstance(self._executor, ClusterExecutor):
            return ShardedPubSub(self._redis)
        return PubSub(self._sub.connection_pool)

    async def _listen(self) -> None:
        """Subscribe what is asked, route the messages, and poll for missed work every
        ``poll_interval``. While idle it sleeps in one blocking read until a message comes,
        a subscribe request or a close wakes it, or the poll is due: no timed wake-ups."""
        ps = self._pubsub = self._new_pubsub()
        waiting: dict[str, list[Event]] = {}
        pending: list[str] = []  # channels to subscribe (again, after a failure)
        poll = self._core.options.poll_interval
        next_poll = time.monotonic() + poll
        try:
            while not self._closing.is_set():
                while self._requests:
                    channel, done = self._requests.popleft()
                    waiting.setdefault(channel, []).append(done)
                    pending.append(channel)
                try:
                    # Unsubscribe first: a channel left and asked for again (a runner that
                    # stopped and started on the same worker id) ends up subscribed.
                    leaving = [self._leaving.popleft() for _ in range(len(self._leaving))]
                    if leaving:
                        await ps.unsubscribe(*leaving)  # type: ignore[no-untyped-call,unused-ignore]
                    if pending:
                        await ps.subscribe(*pending)
                        pending = []
                    message = await ps.next_message(next_poll - time.monotonic())
                except Exception as exc:  # Redis away (or worse): say so, pause, go on
                    if isinstance(exc, REFUSED):  # bad credentials, NOPERM: the callers hear it now
                        self._refuse(waiting, exc)
                        pending = []
                    self._error(exc)
                    await self._closing.wait(self._pause())
                    continue
                if message is not None:
                    for done in waiting.pop(self._on_message(message) or "", []):
                        done.set()
                if ps.reconnected:
                    self._missed()
                if ps.reconnected or time.monotonic() >= next_poll:
                    ps.reconnected = False
                    next_poll = time.monotonic() + poll
                    listened = sorted(set(self._channels.values()) & self._core.worker.queues)
                    if listened:
                        queued = await self._guard(self._core.pending_work(listened))
                        self._announce(queued or [])
                    if self._done:
                        await self._guard(self._core.listen_done(sorted(set(self._done.values()))))
        finally:
            await ps.aclose()  # type: ignore[no-untyped-call,unused-ignore]
