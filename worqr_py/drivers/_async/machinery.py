"""The machinery of the asyncio driver: running the core's steps on redis.asyncio (with
retries and NOSCRIPT reloads), and the heartbeat and pub/sub listener tasks. ``AsyncWorqr``
(aio.py) adds the public API on top.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

from redis.asyncio.client import PubSub
from redis.exceptions import NoScriptError, RedisError

from ...core import Process
from ...core.calls import Call, Op, Step
from ...core.model import WorkerState
from ...errors import WorqrError
from ..base import FATAL, RETRYABLE, DriverBase, RetryClock

T = TypeVar("T")


class _PubSub(PubSub):
    """A PubSub that remembers it reconnected (it has then resubscribed by itself)."""

    reconnected = False

    async def on_connect(self, connection: Any) -> None:
        await super().on_connect(connection)
        self.reconnected = True


class AsyncioDriver(DriverBase):
    """Executes operations and runs the background tasks of an asyncio client."""

    _redis: Any
    _sub: Any
    _closing: bool

    def _init_tasks(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._kept: set[asyncio.Task[Any]] = set()  # cleanups: close() awaits, never cancels
        self._loop: asyncio.AbstractEventLoop | None = None
        self._beating: asyncio.Task[None] | None = None
        self._supervisor: asyncio.Task[Any] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._requests: asyncio.Queue[tuple[str, asyncio.Event]] = asyncio.Queue()

    def _closed(self) -> bool:
        return self._closing

    # ---- execution ----------------------------------------------------------------------
    async def _run(self, op: Op[T], retry: bool = True) -> T:
        try:
            step = next(op)
            while True:
                step = op.send(await self._retrying(step, retry))
        except StopIteration as stop:
            result: T = stop.value
            return result

    async def _retrying(self, step: Step, retry: bool) -> Any:
        """Run a step; while Redis is unreachable, again after a jittered backoff, for up to
        ``retry_timeout`` (every step is safe to replay: see the README)."""
        clock = None
        while True:
            try:
                return await self._exec(step)
            except RETRYABLE as exc:
                if isinstance(exc, FATAL):
                    raise
                clock = clock or RetryClock(self._core.options.retry_timeout if retry else 0)
                delay = clock.delay()
                if delay is None or self._closing:
                    raise
                await asyncio.sleep(delay)

    async def _exec(self, step: Step) -> Any:
        if isinstance(step, Call):
            return await self._call(step)
        pipe = self._redis.pipeline(transaction=False)
        for c in step:
            pipe.execute_command(*(("EVALSHA", *self._script_args(c)) if c.script else c.args))
        replies = await pipe.execute(raise_on_error=False)
        replies = [
            await self._call(c) if self._is_noscript(r) else r
            for c, r in zip(step, replies, strict=True)
        ]
        for r in replies:
            if isinstance(r, Exception):
                raise r
        return replies

    async def _call(self, c: Call) -> Any:
        if c.script is None:
            return await self._redis.execute_command(*c.args)
        try:
            return await self._redis.evalsha(*self._script_args(c))
        except NoScriptError:
            await self._redis.script_load(c.script.source)
            return await self._redis.evalsha(*self._script_args(c))

    async def _settled(self, op: Op[list[Process]]) -> list[Process]:
        """Run a dequeue so that cancelling the caller cannot strand what it took: the call
        goes on, shielded; if the caller was cancelled meanwhile, what it took goes back to
        the front (give_back) instead of sitting in this live worker's record unseen."""
        call = asyncio.ensure_future(self._run(op))
        try:
            return await asyncio.shield(call)
        except asyncio.CancelledError:
            call.add_done_callback(self._give_back)
            raise

    def _give_back(self, call: asyncio.Future[list[Process]]) -> None:
        if not call.cancelled() and call.exception() is None and call.result():
            self._spawn(self._guard(self._core.give_back(call.result())))

    # ---- background tasks -------------------------------------------------------------------
    def _spawn(self, coro: Coroutine[Any, Any, Any], keep: bool = False) -> None:
        """Run ``coro`` as a task of this client's loop, from that loop or any thread.
        ``keep``: close() lets it finish (bounded) rather than cancel it half-way."""
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        loop = self._loop or running
        if loop is None:
            coro.close()
            return
        if running is not loop:
            asyncio.run_coroutine_threadsafe(self._spawned(coro, keep), loop)
            return
        tasks = self._kept if keep else self._tasks
        task = loop.create_task(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _spawned(self, coro: Coroutine[Any, Any, Any], keep: bool) -> None:
        self._spawn(coro, keep)

    def _schedule_cleanup(self, worker: WorkerState) -> None:
        self._spawn(self._guard(self._core.cleanup(worker)), keep=True)

    async def _guard(self, op: Op[Any], retry: bool = True) -> Any:
        try:
            return await self._run(op, retry)
        except Exception as exc:
            self._error(exc)
            return None

    async def _beat_loop(self) -> None:
        """Beat every interval until close. It outlives a failed worker (skipping its ticks),
        so a worker registered again is never left without heartbeats."""
        interval = self._core.options.heartbeat_interval
        due = time.monotonic()
        while True:
            due = max(due + interval, time.monotonic())
            await asyncio.sleep(due - time.monotonic())
            w = self._core.worker
            # the next beat is the retry; a won turn starts a scan, apart from the heartbeats
            if w.id is None or w.failed is not None:
                continue
            turn = await self._guard(self._core.beat(), retry=False)
            if turn and (self._supervisor is None or self._supervisor.done()):
                self._supervisor = asyncio.create_task(
                    self._guard(self._core.supervise(), retry=False), name="worqr-supervisor"
                )

    async def _subscribe(self, channel: str) -> None:
        done = asyncio.Event()
        self._requests.put_nowait((channel, done))
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen(), name="worqr-listener")
        if asyncio.current_task() is not self._listener:
            wait = max(10.0, self._core.options.retry_timeout)
            try:
                await asyncio.wait_for(done.wait(), wait)
            except asyncio.TimeoutError:
                raise WorqrError(f"could not subscribe to {channel!r} within {wait:g} s") from None
            refused = self._refused.pop(done, None)
            if refused is not None:
                raise refused

    async def _listen(self) -> None:
        ps = _PubSub(self._sub.connection_pool)
        waiting: dict[str, list[asyncio.Event]] = {}
        pending: list[str] = []  # channels to subscribe (again, after a failure)
        poll = self._core.options.poll_interval
        next_poll = time.monotonic() + poll
        try:
            while True:
                while not self._requests.empty() or not (pending or waiting or ps.channels):
                    channel, done = await self._requests.get()
                    waiting.setdefault(channel, []).append(done)
                    pending.append(channel)
                try:
                    if pending:
                        await ps.subscribe(*pending)
                        pending = []
                    message = await ps.get_message(timeout=0.05)
                except (RedisError, OSError) as exc:  # Redis away: say so, pause, go on
                    if isinstance(exc, FATAL):  # bad credentials: the callers hear it now
                        self._refuse(waiting, exc)
                        pending = []
                    self._error(exc)
                    await asyncio.sleep(self._pause())
                    continue
                if message is not None:
                    for done in waiting.pop(self._on_message(message) or "", []):
                        done.set()
                if ps.reconnected or time.monotonic() >= next_poll:
                    ps.reconnected = False
                    next_poll = time.monotonic() + poll
                    self._announce(await self._guard(self._core.pending_work()) or [])
                    if self._done:
                        await self._guard(self._core.listen_done(sorted(set(self._done.values()))))
        finally:
            await ps.aclose()  # type: ignore[no-untyped-call]
