# GENERATED from worqr_py/drivers/_async/client.py by scripts/unasync.py: do not edit.
# Edit that file, then run: python scripts/unasync.py
"""The client: ``Worqr`` here, ``Worqr`` in the generated ``_sync/client.py``. Same
methods, arguments, results and errors in both; here they are coroutines (except ``off`` and
``shutdown``), and heartbeats, supervision and the pub/sub listener are asyncio tasks (in the
sync client: threads). This asyncio file is the source of the sync one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Literal, overload

import redis as redis_flavour

from ...core import Core, Options, Process
from ...core.jobs import Serializer
from ...core.model import DeadLetter, Delayed
from ...core.periodic import Schedule
from ...runtime._sync.owner import SyncOwner
from ...runtime._sync.runner import SyncRunner
from ...runtime.jobs import RUN_JOBS_DOC, Counters, JobPolicy, run_jobs_handler
from ...runtime.policy import OWN_DOC, RUN_DOC, SHUTDOWN_DOC
from ...runtime.retry import Retry
from ..base import DONE_DOC, doc
from ..connect import clients
from .primitives import FLAVOUR, cancel_handlers, emitter, state_lock
from .reading import ReadingApi


class Worqr(ReadingApi):
    """A reliable Redis work queue client (this is the sync client; the other flavour has
    the same API, and the sync one is thread-safe).

    ``Worqr(url)`` opens its own connections; ``Worqr(redis=r, subscriber=s)`` uses
    yours (``subscriber`` defaults to ``redis``; pub/sub takes its own connection from its
    pool). Options: ``prefix`` namespaces every key; a started worker refreshes its heartbeat
    every ``heartbeat_interval`` seconds with a ``heartbeat_ttl``-second expiry and checks its
    worked queues for missed work every ``poll_interval`` seconds. Worker-level events are
    emitted on ``self.events`` (pyee): ``failed(worker_id, reason)``, ``lost(process)``,
    ``reclaimed(worker_id, queue, count)``, ``dead(queue, task)`` (a task dead-lettered after
    ``max_deliveries``), ``redis_restarted(old_run_id, new_run_id)`` (Redis restarted: without
    persistence, its data is gone) and ``error(exception)``. Queue handlers of the asyncio
    client may be plain functions or coroutine functions. ``serializer`` (jobs' calls and
    results; JSON by default) is any object with ``dumps(obj) -> str`` and ``loads(str)``:
    submitters and workers of a queue must use the same.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        redis: redis_flavour.Redis | None = None,
        subscriber: redis_flavour.Redis | None = None,
        prefix: str = "worqr",
        heartbeat_interval: float = 1.0,
        heartbeat_ttl: float = 3.0,
        poll_interval: float = 5.0,
        max_deliveries: int | None = 5,
        retry_timeout: float = 10.0,
        serializer: Serializer | None = None,
    ) -> None:
        options = Options(
            prefix, heartbeat_interval, heartbeat_ttl, poll_interval, max_deliveries, retry_timeout
        )
        self._redis, self._sub, self._owned = clients(url, redis, subscriber, FLAVOUR)
        super().__init__(options, emitter(self._handler_raised), emitter(self._error), state_lock())
        self._init_machinery()
        if serializer is not None:
            if not callable(getattr(serializer, "dumps", None)) or not callable(
                getattr(serializer, "loads", None)
            ):
                raise TypeError("serializer must have dumps(obj) -> str and loads(str) methods")
            self._core.serializer = serializer
        self._runner: SyncRunner | None = None
        self._job_counters = Counters()

    # ---- lifecycle --------------------------------------------------------------------
    def init(self) -> Worqr:
        """Check the connection and load every Lua script (SCRIPT LOAD). Optional: scripts
        are also loaded on first use."""
        self._executor.load()
        return self

    def close(self) -> None:
        """Stop: a live worker is failed first (``fail_worker()``: its tasks go back to the
        front at once), a failure's cleanup under way may finish (bounded), then the
        background jobs end and owned connections close."""
        self._closing.set()
        try:
            if self._core.worker.id is not None and self._core.worker.failed is None:
                self.fail_worker()
        finally:
            cancel_handlers(self._handlers)
            self._stop_jobs()
            if self._owned:
                self._redis.close()
                if self._sub is not self._redis:  # a cluster's is the same client
                    self._sub.close()

    def __enter__(self) -> Worqr:
        return self.init()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ---- the API: each method runs one core operation ------------------------------------
    @overload
    def enqueue(
        self,
        queue: str,
        task: str | list[str],
        *,
        unique: Literal[False] = False,
        delay: float | timedelta | None = None,
        at: datetime | None = None,
    ) -> int: ...
    @overload
    def enqueue(
        self,
        queue: str,
        task: str,
        *,
        unique: Literal[True],
        delay: float | timedelta | None = None,
        at: datetime | None = None,
    ) -> bool: ...
    @doc(Core.enqueue)
    def enqueue(
        self,
        queue: str,
        task: str | list[str],
        *,
        unique: bool = False,
        delay: float | timedelta | None = None,
        at: datetime | None = None,
    ) -> int | bool:
        return self._run(self._core.enqueue(queue, task, unique, delay, at))

    @doc(Core.get_delayed)
    def get_delayed(self, queue: str, *, limit: int | None = None) -> list[Delayed]:
        return self._run(self._core.get_delayed(queue, limit=limit))

    @doc(Core.server_time)
    def server_time(self) -> float:
        return self._run(self._core.server_time())

    @doc(Core.count_delayed)
    def count_delayed(self, queue: str) -> int:
        return self._run(self._core.count_delayed(queue))

    @doc(Core.get_tasks)
    def get_tasks(self, queue: str, *, limit: int | None = None) -> list[str]:
        return self._run(self._core.get_tasks(queue, limit=limit))

    @doc(Core.peek_queue)
    def peek_queue(self, queue: str) -> str | None:
        return self._run(self._core.peek_queue(queue))

    @doc(Core.count_queue)
    def count_queue(self, queue: str) -> int:
        return self._run(self._core.count_queue(queue))

    @doc(Core.cancel_tasks)
    def cancel_tasks(self, queue: str, task: str) -> int:
        return self._run(self._core.cancel_tasks(queue, task))

    @doc(Core.delete_queue)
    def delete_queue(self, queue: str) -> None:
        return self._run(self._core.delete_queue(queue))

    @doc(Core.get_dead_tasks)
    def get_dead_tasks(self, queue: str) -> list[str]:
        return self._run(self._core.get_dead_tasks(queue))

    @doc(Core.schedule)
    def schedule(
        self,
        queue: str,
        task: str,
        *,
        every: float | timedelta | None = None,
        cron: str | None = None,
        name: str | None = None,
    ) -> bool:
        return self._run(self._core.schedule(queue, task, every, cron, name))

    @doc(Core.unschedule)
    def unschedule(self, queue: str, name: str) -> bool:
        return self._run(self._core.unschedule(queue, name))

    @doc(Core.get_schedules)
    def get_schedules(self, queue: str | None = None) -> list[Schedule]:
        return self._run(self._core.get_schedules(queue))

    @doc(Core.get_dead)
    def get_dead(self, queue: str, *, limit: int | None = None) -> list[DeadLetter]:
        return self._run(self._core.get_dead(queue, limit=limit))

    @doc(Core.requeue_dead)
    def requeue_dead(self, queue: str, task: str | None = None) -> int:
        return self._run(self._core.requeue_dead(queue, task))

    @doc(Core.purge_dead)
    def purge_dead(self, queue: str, task: str | None = None) -> int:
        return self._run(self._core.purge_dead(queue, task))

    @doc(Core.get_queues)
    def get_queues(self) -> list[str]:
        return self._run(self._core.get_queues())

    @doc(Core.get_workers)
    def get_workers(self) -> list[str]:
        return self._run(self._core.get_workers())

    @doc(Core.get_working_queues)
    def get_working_queues(self, worker_id: str | None = None) -> list[str]:
        return self._run(self._core.get_working_queues(worker_id))

    @doc(Core.get_matching_processes)
    def get_matching_processes(self, task: str, queue: str | None = None) -> list[Process]:
        return self._run(self._core.get_matching_processes(task, queue))

    @doc(Core.start_worker)
    def start_worker(self, permanent: bool = False) -> str:
        wid = self._run(self._core.start_worker(permanent))
        self._start_jobs()
        return wid

    @doc(Core.start_work)
    def start_work(self, queue: str) -> None:
        self._run(self._core.start_work(queue))
        self._announce(self._run(self._core.pending_work(queue)))

    @doc(Core.stop_work)
    def stop_work(self, queue: str) -> int:
        return self._run(self._core.stop_work(queue))

    @doc(Core.dequeue)
    def dequeue(self, queue: str) -> Process | None:
        procs = self._taking(self._core.dequeue(queue))
        return procs[0] if procs else None

    @doc(Core.dequeue)
    def dequeue_many(self, queue: str, count: int, *, finish: Sequence[str] = ()) -> list[Process]:
        return self._taking(self._core.dequeue(queue, count, finish))

    @doc(Core.finish_processes)
    def finish_processes(self, process_ids: Sequence[str], result: Any = None) -> list[bool]:
        return self._run(self._core.finish_processes(process_ids, result))

    @doc(Core.finish_process)
    def finish_process(self, process_id: str, result: Any = None) -> bool:
        return self._run(self._core.finish_process(process_id, result))

    @doc(Core.stop_process)
    def stop_process(
        self,
        process_id: str,
        *,
        delay: float | timedelta | None = None,
        error: BaseException | str | None = None,
    ) -> bool:
        return self._run(self._core.stop_process(process_id, delay, error))

    @doc(Core.dead_letter_process)
    def dead_letter_process(
        self, process_id: str, *, error: BaseException | str | None = None
    ) -> bool:
        return self._run(self._core.dead_letter_process(process_id, error))

    def _retry_process(self, process_id: str, *, delay: float, error: BaseException | None) -> bool:
        return self._run(self._core.retry_process(process_id, delay, error))

    @doc(Core.fail_worker)
    def fail_worker(self, worker_id: str | None = None) -> int:
        return self._run(self._core.fail_worker(worker_id))

    @doc(RUN_DOC)
    def run(
        self,
        queues: str | list[str],
        handler: Callable[[Process], Any],
        *,
        concurrency: int = 1,
        grace: float = 30.0,
        reregister: bool = True,
        prefetch: int = 1,
        retry: Retry | None = None,
    ) -> None:
        self._runner = SyncRunner(
            self, queues, handler, concurrency, grace, reregister, prefetch, retry
        )
        try:
            self._runner.run()
        finally:
            self._runner = None

    @doc(RUN_JOBS_DOC)
    def run_jobs(
        self,
        functions: Mapping[str, Callable[..., Any]],
        queues: str | list[str],
        *,
        concurrency: int = 1,
        grace: float = 30.0,
        reregister: bool = True,
        prefetch: int = 1,
        retry: Retry | None = None,
        timeout: float | None = None,
        isolation: str = "thread",
    ) -> None:
        jobs = JobPolicy(functions, timeout, isolation, retry)
        self._runner = SyncRunner(
            self, queues, run_jobs_handler, concurrency, grace, reregister, prefetch, retry, jobs
        )
        self._runner.counters = self._job_counters
        try:
            self._runner.run()
        finally:
            self._runner = None

    def job_counts(self) -> dict[tuple[str, str], dict[str, int]]:
        """Jobs this client's ``run_jobs`` ended or retried, per ``(queue, function)``:
        ``{"done", "failed", "retried", "timed_out"}`` (timed out ones also count as failed
        or retried). Since the client was made."""
        return self._job_counters.snapshot()

    @doc(SHUTDOWN_DOC)
    def shutdown(self, force: bool = False) -> None:
        if self._runner is not None:
            self._runner.request_stop(force)

    @doc(OWN_DOC)
    def own(
        self,
        queue: str,
        on_acquire: Callable[[Process], Any],
        on_lost: Callable[[Process], Any],
        *,
        limit: int | None = None,
    ) -> None:
        SyncOwner(self, queue, on_acquire, on_lost, limit).start()

    def on(self, queue: str, handler: Callable[[str, str], Any]) -> None:
        """Call ``handler(type, message)`` for the queue's events: ``work`` (message: how many
        new tasks), ``cancel`` (the task), ``delete`` ("") and ``dead`` (the task, moved to
        the dead-letter list after ``max_deliveries``). Subscribes to the queue's channel and,
        on a worked queue, announces the work already queued (in the calling thread). Handlers
        run on the listener (sync: its thread; asyncio: the event loop, and may be coroutine
        functions); an exception goes to the ``error`` event."""
        self._on_each({queue: handler})

    def _on_each(self, handlers: Mapping[str, Callable[[str, str], Any]]) -> None:
        """``on(queue, handler)`` for each queue, with one SUBSCRIBE and one announcement for
        them all (``run`` on a thousand queues joins in one go, not one wait per queue)."""
        new = [q for q, handler in handlers.items() if self._add_handler(q, handler)]
        if new:
            try:
                self._subscribe(*[self._core.channel(q) for q in new])
            except BaseException:
                for q in new:
                    self._drop_handler(q, handlers[q])
                raise
        joined = [q for q in handlers if q in self._core.worker.queues]
        if joined:
            self._announce(self._run(self._core.pending_work(joined)))

    @doc(DONE_DOC)
    def on_done(self, queue: str, handler: Callable[[dict[str, Any]], Any]) -> None:
        if self._add_done_handler(queue, handler):
            try:
                self._subscribe(self._core.keys.queue(queue).done)
            except BaseException:
                self._drop_handler(queue, handler, done=True)
                raise
            self._run(self._core.listen_done([queue]))

    def off(self, queue: str, handler: Callable[[str, str], Any] | None = None) -> None:
        """Remove one handler of the queue, or all of them."""
        self._remove_handler(queue, handler)
