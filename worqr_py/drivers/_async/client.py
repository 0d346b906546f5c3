"""The client: ``AsyncWorqr`` here, ``Worqr`` in the generated ``_sync/client.py``. Same
methods, arguments, results and errors in both; here they are coroutines (except ``off`` and
``shutdown``), and heartbeats, supervision and the pub/sub listener are asyncio tasks (in the
sync client: threads). This asyncio file is the source of the sync one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Literal, overload

import redis.asyncio as redis_flavour

from ...core import Core, Options, Process
from ...core.jobs import Serializer
from ...core.model import DeadLetter, Delayed
from ...core.periodic import Schedule
from ...runtime._async.owner import AsyncOwner
from ...runtime._async.runner import AsyncRunner
from ...runtime.jobs import RUN_JOBS_DOC, Counters, JobPolicy, run_jobs_handler
from ...runtime.policy import OWN_DOC, RUN_DOC, SHUTDOWN_DOC
from ...runtime.retry import Retry
from ..base import DONE_DOC, doc
from ..connect import clients
from .primitives import FLAVOUR, cancel_handlers, emitter, state_lock
from .reading import AsyncReadingApi


class AsyncWorqr(AsyncReadingApi):
    """A reliable Redis work queue client (this is the asyncio client; the other flavour has
    the same API, and the sync one is thread-safe).

    ``AsyncWorqr(url)`` opens its own connections; ``AsyncWorqr(redis=r, subscriber=s)`` uses
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
        self._runner: AsyncRunner | None = None
        self._job_counters = Counters()

    # ---- lifecycle --------------------------------------------------------------------
    async def init(self) -> AsyncWorqr:
        """Check the connection and load every Lua script (SCRIPT LOAD). Optional: scripts
        are also loaded on first use."""
        await self._executor.load()
        return self

    async def close(self) -> None:
        """Stop: a live worker is failed first (``fail_worker()``: its tasks go back to the
        front at once), a failure's cleanup under way may finish (bounded), then the
        background jobs end and owned connections close."""
        self._closing.set()
        try:
            if self._core.worker.id is not None and self._core.worker.failed is None:
                await self.fail_worker()
        finally:
            cancel_handlers(self._handlers)
            await self._stop_jobs()
            if self._owned:
                await self._redis.aclose()
                if self._sub is not self._redis:  # a cluster's is the same client
                    await self._sub.aclose()

    async def __aenter__(self) -> AsyncWorqr:
        return await self.init()

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # ---- the API: each method runs one core operation ------------------------------------
    @overload
    async def enqueue(
        self,
        queue: str,
        task: str | list[str],
        *,
        unique: Literal[False] = False,
        delay: float | timedelta | None = None,
        at: datetime | None = None,
    ) -> int: ...
    @overload
    async def enqueue(
        self,
        queue: str,
        task: str,
        *,
        unique: Literal[True],
        delay: float | timedelta | None = None,
        at: datetime | None = None,
    ) -> bool: ...
    @doc(Core.enqueue)
    async def enqueue(
        self,
        queue: str,
        task: str | list[str],
        *,
        unique: bool = False,
        delay: float | timedelta | None = None,
        at: datetime | None = None,
    ) -> int | bool:
        return await self._run(self._core.enqueue(queue, task, unique, delay, at))

    @doc(Core.get_delayed)
    async def get_delayed(self, queue: str, *, limit: int | None = None) -> list[Delayed]:
        return await self._run(self._core.get_delayed(queue, limit=limit))

    @doc(Core.server_time)
    async def server_time(self) -> float:
        return await self._run(self._core.server_time())

    @doc(Core.count_delayed)
    async def count_delayed(self, queue: str) -> int:
        return await self._run(self._core.count_delayed(queue))

    @doc(Core.get_tasks)
    async def get_tasks(self, queue: str, *, limit: int | None = None) -> list[str]:
        return await self._run(self._core.get_tasks(queue, limit=limit))

    @doc(Core.peek_queue)
    async def peek_queue(self, queue: str) -> str | None:
        return await self._run(self._core.peek_queue(queue))

    @doc(Core.count_queue)
    async def count_queue(self, queue: str) -> int:
        return await self._run(self._core.count_queue(queue))

    @doc(Core.cancel_tasks)
    async def cancel_tasks(self, queue: str, task: str) -> int:
        return await self._run(self._core.cancel_tasks(queue, task))

    @doc(Core.delete_queue)
    async def delete_queue(self, queue: str) -> None:
        return await self._run(self._core.delete_queue(queue))

    @doc(Core.get_dead_tasks)
    async def get_dead_tasks(self, queue: str) -> list[str]:
        return await self._run(self._core.get_dead_tasks(queue))

    @doc(Core.schedule)
    async def schedule(
        self,
        queue: str,
        task: str,
        *,
        every: float | timedelta | None = None,
        cron: str | None = None,
        name: str | None = None,
    ) -> bool:
        return await self._run(self._core.schedule(queue, task, every, cron, name))

    @doc(Core.unschedule)
    async def unschedule(self, queue: str, name: str) -> bool:
        return await self._run(self._core.unschedule(queue, name))

    @doc(Core.get_schedules)
    async def get_schedules(self, queue: str | None = None) -> list[Schedule]:
        return await self._run(self._core.get_schedules(queue))

    @doc(Core.get_dead)
    async def get_dead(self, queue: str, *, limit: int | None = None) -> list[DeadLetter]:
        return await self._run(self._core.get_dead(queue, limit=limit))

    @doc(Core.requeue_dead)
    async def requeue_dead(self, queue: str, task: str | None = None) -> int:
        return await self._run(self._core.requeue_dead(queue, task))

    @doc(Core.purge_dead)
    async def purge_dead(self, queue: str, task: str | None = None) -> int:
        return await self._run(self._core.purge_dead(queue, task))

    @doc(Core.get_queues)
    async def get_queues(self) -> list[str]:
        return await self._run(self._core.get_queues())

    @doc(Core.get_workers)
    async def get_workers(self) -> list[str]:
        return await self._run(self._core.get_workers())

    @doc(Core.get_working_queues)
    async def get_working_queues(self, worker_id: str | None = None) -> list[str]:
        return await self._run(self._core.get_working_queues(worker_id))

    @doc(Core.get_matching_processes)
    async def get_matching_processes(self, task: str, queue: str | None = None) -> list[Process]:
        return await self._run(self._core.get_matching_processes(task, queue))

    @doc(Core.start_worker)
    async def start_worker(self, permanent: bool = False) -> str:
        wid = await self._run(self._core.start_worker(permanent))
        self._start_jobs()
        return wid

    @doc(Core.start_work)
    async def start_work(self, queue: str) -> None:
        await self._run(self._core.start_work(queue))
        self._announce(await self._run(self._core.pending_work(queue)))

    @doc(Core.stop_work)
    async def stop_work(self, queue: str) -> int:
        return await self._run(self._core.stop_work(queue))

    @doc(Core.dequeue)
    async def dequeue(self, queue: str) -> Process | None:
        procs = await self._taking(self._core.dequeue(queue))
        return procs[0] if procs else None

    @doc(Core.dequeue)
    async def dequeue_many(
        self, queue: str, count: int, *, finish: Sequence[str] = ()
    ) -> list[Process]:
        return await self._taking(self._core.dequeue(queue, count, finish))

    @doc(Core.finish_processes)
    async def finish_processes(self, process_ids: Sequence[str], result: Any = None) -> list[bool]:
        return await self._run(self._core.finish_processes(process_ids, result))

    @doc(Core.finish_process)
    async def finish_process(self, process_id: str, result: Any = None) -> bool:
        return await self._run(self._core.finish_process(process_id, result))

    @doc(Core.stop_process)
    async def stop_process(
        self,
        process_id: str,
        *,
        delay: float | timedelta | None = None,
        error: BaseException | str | None = None,
    ) -> bool:
        return await self._run(self._core.stop_process(process_id, delay, error))

    @doc(Core.dead_letter_process)
    async def dead_letter_process(
        self, process_id: str, *, error: BaseException | str | None = None
    ) -> bool:
        return await self._run(self._core.dead_letter_process(process_id, error))

    async def _retry_process(
        self, process_id: str, *, delay: float, error: BaseException | None
    ) -> bool:
        return await self._run(self._core.retry_process(process_id, delay, error))

    @doc(Core.fail_worker)
    async def fail_worker(self, worker_id: str | None = None) -> int:
        return await self._run(self._core.fail_worker(worker_id))

    @doc(RUN_DOC)
    async def run(
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
        self._runner = AsyncRunner(
            self, queues, handler, concurrency, grace, reregister, prefetch, retry
        )
        try:
            await self._runner.run()
        finally:
            self._runner = None

    @doc(RUN_JOBS_DOC)
    async def run_jobs(
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
        self._runner = AsyncRunner(
            self, queues, run_jobs_handler, concurrency, grace, reregister, prefetch, retry, jobs
        )
        self._runner.counters = self._job_counters
        try:
            await self._runner.run()
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
    async def own(
        self,
        queue: str,
        on_acquire: Callable[[Process], Any],
        on_lost: Callable[[Process], Any],
        *,
        limit: int | None = None,
    ) -> None:
        await AsyncOwner(self, queue, on_acquire, on_lost, limit).start()

    async def on(self, queue: str, handler: Callable[[str, str], Any]) -> None:
        """Call ``handler(type, message)`` for the queue's events: ``work`` (message: how many
        new tasks), ``cancel`` (the task), ``delete`` ("") and ``dead`` (the task, moved to
        the dead-letter list after ``max_deliveries``). Subscribes to the queue's channel and,
        on a worked queue, announces the work already queued (in the calling thread). Handlers
        run on the listener (sync: its thread; asyncio: the event loop, and may be coroutine
        functions); an exception goes to the ``error`` event."""
        await self._on_each({queue: handler})

    async def _on_each(self, handlers: Mapping[str, Callable[[str, str], Any]]) -> None:
        """``on(queue, handler)`` for each queue, with one SUBSCRIBE and one announcement for
        them all (``run`` on a thousand queues joins in one go, not one wait per queue)."""
        new = [q for q, handler in handlers.items() if self._add_handler(q, handler)]
        if new:
            try:
                await self._subscribe(*[self._core.channel(q) for q in new])
            except BaseException:
                for q in new:
                    self._drop_handler(q, handlers[q])
                raise
        joined = [q for q in handlers if q in self._core.worker.queues]
        if joined:
            self._announce(await self._run(self._core.pending_work(joined)))

    @doc(DONE_DOC)
    async def on_done(self, queue: str, handler: Callable[[dict[str, Any]], Any]) -> None:
        if self._add_done_handler(queue, handler):
            try:
                await self._subscribe(self._core.keys.queue(queue).done)
            except BaseException:
                self._drop_handler(queue, handler, done=True)
                raise
            await self._run(self._core.listen_done([queue]))

    def off(self, queue: str, handler: Callable[[str, str], Any] | None = None) -> None:
        """Remove one handler of the queue, or all of them."""
        self._remove_handler(queue, handler)
