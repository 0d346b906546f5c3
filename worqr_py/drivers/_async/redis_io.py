"""The asyncio driver's Redis I/O: ``Executor`` (the fast path every call and pipeline takes)
and ``PubSub`` (the listener's blocking read). Hand-written, as is its thread twin
``drivers/_sync/redis_io.py`` (same names, same meaning); ``primitives.py`` re-exports both.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from asyncio import CancelledError
from collections import deque
from contextvars import ContextVar
from typing import Any

from redis.asyncio import connection as redis_connection
from redis.asyncio.client import PubSub as _PubSub
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ...core import scripts
from ...core.calls import Call
from ..base import MASTER_CHECK_S, Liveness, MasterAddress
from ..wire import Pack, packer, words


class Settling:
    """A dequeue under way in one task (``settled``): a cancel of that task that comes while
    its request is in flight is noted here instead of raised, so the exchange finishes and
    what it took can be given back; ``settled`` raises the cancel then."""

    def __init__(self) -> None:
        self.task = asyncio.current_task()
        self.cancelled = False


HELD_S = 5.0  # how long a held cancel waits for its reply on a connection without timeout
# The read_response that reading from the parser stands in for: a connection class with its
# own (Sentinel's turns READONLY into a reconnect to the new master) is read through it.
_PLAIN_READ = redis_connection.Connection.read_response
SETTLING: ContextVar[Settling | None] = ContextVar("worqr_settling", default=None)


class Executor:
    """Calls and pipelines over connections of our own, checked out of the client's pool
    once and kept here while idle: one per call in flight at once, so a call costs no pool
    round trip. Commands are packed (by hiredis when installed), written to the connection's
    stream and their replies read from its parser, with one watchdog timer for every read in
    flight instead of a timeout per read. An error reply leaves the connection usable;
    anything else (a connection error, a timeout, a cancelled caller whose reply is still
    unread) discards it and every idle one, handing them back to the pool, which connects
    them afresh (behind Sentinel: to the current master)."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self.idle: deque[Any] = deque()
        self._pack: Pack | None = None
        self._inflight: dict[Any, float] = {}  # connection -> when its read times out
        self._expired: set[Any] = set()  # connections the watchdog cut
        self._timer: asyncio.TimerHandle | None = None
        self._master = MasterWatch.of(redis)  # behind Sentinel: which master it names

    async def call(self, c: Call) -> Any:
        """Run one call (EVALSHA, loading the script on NOSCRIPT) and return its reply."""
        conn = await self._connection()
        try:
            pack = self._pack or self._packer(conn)
            (reply,) = await self._exchange(conn, pack(conn, words(c)), 1)
            if isinstance(reply, NoScriptError):  # loaded on this connection: the retry meets it
                reply = await self._reload(conn, pack, c)
        except BaseException as exc:
            await self._failed(conn, exc)
            raise
        self.idle.append(conn)
        if isinstance(reply, Exception):  # an error reply: the connection stays usable
            raise reply
        return reply

    async def pipeline(self, calls: list[Call]) -> list[Any]:
        """Run the calls as one pipeline (one write, then every reply; no MULTI). Error
        replies come back in place, as exceptions; a call that met NOSCRIPT runs again on
        the same connection once its script is loaded, so after the calls that followed it
        (an operation that needs a script to run before a later call sends them in two
        round trips)."""
        conn = await self._connection()
        try:
            pack = self._pack or self._packer(conn)
            data = b"".join([pack(conn, words(c)) for c in calls])
            replies = await self._exchange(conn, data, len(calls))
            for i, c in enumerate(calls):
                if isinstance(replies[i], NoScriptError):
                    replies[i] = await self._reload(conn, pack, c)
        except BaseException as exc:
            await self._failed(conn, exc)
            raise
        self.idle.append(conn)
        return replies

    async def _reload(self, conn: Any, pack: Pack, c: Call) -> Any:
        """SCRIPT LOAD the call's script and run the call again, on this connection (one
        write): the call's reply, or the load's error."""
        assert c.script is not None
        load = pack(conn, ("SCRIPT", "LOAD", c.script.source))
        loaded, reply = await self._exchange(conn, load + pack(conn, words(c)), 2)
        return loaded if isinstance(loaded, ResponseError) else reply

    async def _failed(self, conn: Any, exc: BaseException) -> None:
        """Discard the connection; after a cancel noted mid-dequeue, no retry: the error
        becomes that cancel."""
        await self._drop(conn)
        settling = SETTLING.get()
        if settling is not None and settling.cancelled and not isinstance(exc, CancelledError):
            raise CancelledError from exc

    async def _exchange(self, conn: Any, data: bytes, n: int) -> list[Any]:
        """Write ``data`` (``n`` packed commands) and read the ``n`` replies, error replies
        in place. A cancel of a ``settled`` dequeue's task once the write is made is noted,
        not raised: the replies are still read."""
        if conn.health_check_interval:
            await conn.check_health()
        writer: Any = getattr(conn, "_writer", None)
        raw = (
            writer is not None
            and hasattr(conn, "_parser")
            and conn.__class__.read_response is _PLAIN_READ  # Sentinel's: READONLY reconnects
        )
        if raw:
            writer.write(data)
        else:
            await conn.send_packed_command(data, check_health=False)
        settling = SETTLING.get()
        if settling is not None and settling.task is not asyncio.current_task():
            settling = None  # a task started meanwhile inherited the context: not a dequeue
        replies: list[Any] = []
        parser = conn._parser if raw else None
        self._watch(conn, conn.socket_timeout)
        try:
            while len(replies) < n:
                try:
                    if parser is None:
                        replies.append(await self._read(conn))
                        continue
                    if not replies and writer.transport.get_write_buffer_size():
                        await writer.drain()  # a full buffer (a large pipeline)
                    replies.append(await parser.read_response())  # error replies returned
                except CancelledError:
                    if settling is None:
                        raise
                    settling.cancelled = True
                    if conn not in self._inflight:  # no socket timeout: hold the cancel, bounded
                        self._watch(conn, HELD_S)
        except (OSError, RedisConnectionError) as exc:
            if conn in self._expired:
                self._expired.discard(conn)
                raise RedisTimeoutError(f"Timeout reading from {conn}") from None
            if isinstance(exc, OSError):
                raise RedisConnectionError(f"Error while reading from {conn}: {exc}") from exc
            raise
        finally:
            self._inflight.pop(conn, None)
        if parser is not None and conn.health_check_interval:
            conn.next_health_check = asyncio.get_running_loop().time() + conn.health_check_interval
        return replies

    @staticmethod
    async def _read(conn: Any) -> Any:
        """One reply through the connection's own method (an error reply returned)."""
        try:
            return await conn.read_response(disconnect_on_error=False)
        except ResponseError as exc:
            return exc

    def _watch(self, conn: Any, timeout: float | None) -> None:
        """Time the read out after ``timeout`` seconds (None: never): one timer serves every
        read in flight (armed when none is, re-armed while reads are in flight)."""
        if not timeout:
            return
        loop = asyncio.get_running_loop()
        self._inflight[conn] = loop.time() + timeout
        if self._timer is None:
            self._timer = loop.call_at(self._inflight[conn], self._check)

    def _check(self) -> None:
        self._timer = None
        loop = asyncio.get_running_loop()
        for conn, deadline in list(self._inflight.items()):
            if deadline <= loop.time():
                del self._inflight[conn]
                self._expired.add(conn)
                writer = getattr(conn, "_writer", None)
                if writer is not None:
                    writer.transport.abort()  # the read in flight fails: a timeout
        if self._inflight:
            self._timer = loop.call_at(min(self._inflight.values()), self._check)

    def _packer(self, conn: Any) -> Pack:
        self._pack = packer(conn)
        return self._pack

    async def _connection(self) -> Any:
        """An idle connection of ours, else one from the pool. An idle one is checked as
        the pool checks the connections it hands out: one whose stream has seen the server
        close it while it sat here (its ``timeout``, CLIENT KILL, a proxy's idle cut) is
        connected afresh by its next write, instead of failing that call (a heartbeat is
        not retried). No I/O: the event loop has already read what came."""
        if not self.idle:
            return await self._checkout()
        conn = self.idle.pop()
        reader = getattr(conn, "_reader", None)
        if reader is not None and self._master is not None and self._master.left(conn):
            await conn.disconnect()  # the pool connects a connection it hands out to the
            await self.redis.connection_pool.release(conn)  # master the sentinels name
            return await self._checkout()  # (a reconnect by itself would not)
        if reader is not None and (reader.at_eof() or reader.exception() is not None):
            await conn.disconnect()
        return conn

    async def _checkout(self) -> Any:
        pool = self.redis.connection_pool
        try:
            return await pool.get_connection()
        except TypeError:  # redis-py 5 wants a command name
            return await pool.get_connection("EVALSHA")

    async def _drop(self, conn: Any) -> None:
        """Discard a connection that failed (and every idle one: they went to the same
        server) so that the retry takes a fresh one."""
        stale = [conn, *self.idle]
        self.idle.clear()
        for c in stale:
            self._expired.discard(c)
            with contextlib.suppress(Exception):
                await c.disconnect(nowait=True)
            with contextlib.suppress(Exception):
                await self.redis.connection_pool.release(c)

    async def load(self) -> None:
        """SCRIPT LOAD every script (one pipeline)."""
        pipe = self.redis.pipeline(transaction=False)
        for script in scripts.ALL:
            pipe.script_load(script.source)
        await pipe.execute()

    async def release(self) -> None:
        """Give the idle connections back to the pool (on close)."""
        if self._master is not None:
            await self._master.stop()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self.idle:
            await self.redis.connection_pool.release(self.idle.pop())


class MasterWatch(MasterAddress):
    """``MasterAddress`` kept by a task of its own."""

    def __init__(self, pool: Any) -> None:
        super().__init__(pool)
        self._stopped = False
        self._task: asyncio.Task[None] | None = None

    def left(self, conn: Any) -> bool:
        """``elsewhere``, once the watch runs (started here)."""
        if (self._task is None or self._task.done()) and not self._stopped:
            self._task = asyncio.ensure_future(MasterWatch._run(weakref.ref(self)))
        return self.elsewhere(conn)

    @staticmethod
    async def _run(me: weakref.ref[MasterWatch]) -> None:
        """Ask every ``MASTER_CHECK_S`` while the watch exists (a client dropped without
        ``close()`` does not keep it running) and is not stopped."""
        while True:
            watch = me()
            if watch is None or watch._stopped:
                return
            # no answer now: the last one stands; the calls fail over by themselves
            with contextlib.suppress(RedisError, OSError, ValueError, TypeError):
                watch.learn(await watch.pool.get_master_address())
            del watch
            await asyncio.sleep(MASTER_CHECK_S)

    async def stop(self) -> None:
        self._stopped = True
        task = self._task
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            await asyncio.wait([task], timeout=5)


class PubSub(_PubSub):
    """A PubSub that remembers it reconnected (it has then resubscribed by itself), and
    whose ``next_message`` blocks until a message comes, its timeout passes or ``wake()``
    is called, without ever abandoning a read half-done."""

    reconnected = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read: asyncio.Future[Any] | None = None
        self._waker: asyncio.Future[None] | None = None
        self._woken = False
        self._liveness = Liveness()

    async def on_connect(self, connection: Any) -> None:
        await super().on_connect(connection)
        self.reconnected = True

    async def next_message(self, timeout: float) -> Any:
        """The next message, or None once ``timeout`` seconds passed or ``wake()`` was
        called (then the read under way goes on, and the next call picks it up)."""
        if self._woken:
            self._woken = False
            return None
        conn = self.connection
        if conn is not None and self.subscribed and self._liveness.dead(conn):
            await self._abandon(conn)
            raise RedisConnectionError("the subscriber's health checks went unanswered")
        read = self._read
        if read is None and self.subscribed:
            bounded = Liveness.bound(conn, max(0.0, timeout))
            read = self._read = asyncio.ensure_future(self.get_message(timeout=bounded))
        self._waker = asyncio.get_running_loop().create_future()
        try:
            waiting = [self._waker] if read is None else [read, self._waker]
            await asyncio.wait(
                waiting,
                timeout=None if read is not None else timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            self._waker = None
            self._woken = False
        if read is None or not read.done():
            return None
        self._read = None
        return read.result()

    def wake(self) -> None:
        """Have ``next_message`` return now (or the next one at once): there is a subscribe
        request, or a close."""
        self._woken = True
        if self._waker is not None and not self._waker.done():
            self._waker.set_result(None)

    async def _abandon(self, conn: Any) -> None:
        """Drop a dead connection (the read under way with it): the next read reconnects."""
        await self._stop_read()
        await conn.disconnect(nowait=True)

    async def _stop_read(self) -> None:
        if self._read is not None:
            self._read.cancel()
            await asyncio.wait([self._read], timeout=5)
            self._read = None

    async def aclose(self) -> None:  # type: ignore[override,unused-ignore]
        """Stop the read under way, then close as redis-py does."""
        await self._stop_read()
        await super().aclose()  # type: ignore[no-untyped-call,unused-ignore]
