"""The sync driver's Redis I/O: ``Executor`` (the fast path of single calls, and pipelines)
and ``PubSub`` (the listener's blocking read). Hand-written, as is its asyncio twin
``drivers/_async/redis_io.py`` (same names, same meaning).
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import threading
import time
import weakref
from collections import deque
from typing import Any

from redis import connection as redis_connection
from redis.client import PubSub as _PubSub
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ...core import scripts
from ...core.calls import Call, command
from ..base import MASTER_CHECK_S, Liveness, MasterAddress
from ..wire import Pack, packer, words

_HiredisParser: Any
NOT_ENOUGH_DATA: Any  # what the hiredis reader redis-py made returns for a partial reply
try:
    from redis._parsers.hiredis import NOT_ENOUGH_DATA, _HiredisParser
except ImportError:  # another layout: every read goes through read_response
    _HiredisParser = NOT_ENOUGH_DATA = None
# The read_response that _read stands in for: a connection class with its own (Sentinel's
# turns READONLY into a reconnect to the new master) is read through it.
_PLAIN_READ = redis_connection.Connection.read_response
# The clock of redis-py's health checks: time.time in 5.x, time.monotonic since 6.
_HEALTH_CLOCK = (
    time.time if getattr(redis_connection, "time", None) is time.time else time.monotonic
)


class Executor:
    """Single calls over connections of our own, checked out of the pool once and kept here
    while idle: one per call in flight at once (a thread pool of 8 callers holds at most 8),
    never one per thread that ever called, so short-lived threads leak nothing. An error reply
    leaves the connection usable; anything else disconnects it and every idle one and hands
    them back to the pool, so the retry gets a fresh one (behind Sentinel: to the current
    master). An idle connection is checked before use as the pool checks one it hands out
    (one the server closed meanwhile is connected afresh). In a child process after
    ``fork`` the idle connections are the parent's sockets: they are forgotten, untouched,
    as redis-py's pool forgets the parent's, so the two processes never read each other's
    replies."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self.idle: deque[Any] = deque()
        self._pack: Pack | None = None  # ``packer``'s choice, made on first use
        self._pid = os.getpid()  # the process whose connections ``idle`` holds
        self._master = MasterWatch.of(redis)  # behind Sentinel: which master it names

    def call(self, c: Call) -> Any:
        """Run one call (EVALSHA, loading the script on NOSCRIPT) and return its reply:
        ``_exchange`` for one call, unrolled (the hot path: one call per take)."""
        conn = self._connection()
        try:
            data = (self._pack or self._packer(conn))(conn, words(c))
        except BaseException:  # nothing was sent: the connection is as good as before
            self.idle.append(conn)
            raise
        try:
            conn.send_packed_command([data])
            reply = _read(conn)
            if isinstance(reply, NoScriptError):
                reply = self._reload(conn, c)
        except BaseException:
            self._discard_all(conn)
            raise
        self.idle.append(conn)
        if isinstance(reply, Exception):  # an error reply: the connection stays usable
            raise reply
        return reply

    def pipeline(self, calls: list[Call]) -> list[Any]:
        """Run the calls as one pipeline (one write, then every reply; no MULTI). Error
        replies come back in place, as exceptions; a call that met NOSCRIPT runs again on
        the same connection once its script is loaded, so after the calls that followed it
        (an operation that needs a script to run before a later call sends them in two
        round trips)."""
        return self._exchange(calls)

    def _exchange(self, calls: list[Call]) -> list[Any]:
        """Send the calls in one write over an idle connection of ours and read every reply,
        error replies in place (a NOSCRIPT one: the script is loaded and the call run again).
        Anything but an error reply (a connection error, a timeout) discards the connection
        and every idle one: they went to the same server, so the retry takes a fresh one
        (behind Sentinel: to the new master) instead of failing once per stale one."""
        conn = self._connection()
        try:
            data = self._packed(conn, calls)
        except BaseException:  # nothing was sent: the connection is as good as before
            self.idle.append(conn)
            raise
        try:
            conn.send_packed_command(data)
            replies = [_read(conn) for _ in calls]
            for i, c in enumerate(calls):
                if isinstance(replies[i], NoScriptError):
                    replies[i] = self._reload(conn, c)
        except BaseException:
            self._discard_all(conn)
            raise
        self.idle.append(conn)
        return replies

    def _reload(self, conn: Any, c: Call) -> Any:
        """SCRIPT LOAD the call's script and run the call again, on this connection (one
        write): the call's reply, or the load's error."""
        assert c.script is not None
        load = command("SCRIPT", "LOAD", c.script.source)
        conn.send_packed_command(self._packed(conn, [load, c]))
        loaded, reply = _read(conn), _read(conn)
        return loaded if isinstance(loaded, ResponseError) else reply

    def _discard_all(self, conn: Any) -> None:
        """A call failed on ``conn`` (not an error reply): discard it and every idle one."""
        self._discard(conn)
        for stale in self._drain():
            self._discard(stale)

    def load(self) -> None:
        """SCRIPT LOAD every script (one pipeline)."""
        pipe = self.redis.pipeline(transaction=False)
        for script in scripts.ALL:
            pipe.script_load(script.source)
        pipe.execute()

    def _discard(self, conn: Any) -> None:
        """Disconnect it and hand it back to the pool, which connects it afresh."""
        conn.disconnect()
        self.redis.connection_pool.release(conn)

    def _packed(self, conn: Any, calls: list[Call]) -> list[bytes]:
        """The calls as one bytes, packed as ``packer`` chose (hiredis where it gives
        redis-py's bytes, else the connection's own packer), as the asyncio twin packs."""
        pack = self._pack or self._packer(conn)
        return [b"".join([pack(conn, words(c)) for c in calls])]

    def _packer(self, conn: Any) -> Pack:
        self._pack = packer(conn)
        return self._pack

    def _connection(self) -> Any:
        """An idle connection of ours, else one from the pool. An idle one is checked as
        the pool checks the connections it hands out: one with something to read has been
        closed by the server while it sat here (its ``timeout``, CLIENT KILL, a proxy's idle
        cut) and is connected afresh by its next write, instead of failing that call (a
        heartbeat is not retried). One ``poll`` with no wait."""
        if self._pid != os.getpid():
            self._forked()
        try:
            conn = self.idle.pop()
        except IndexError:
            conn = self._checkout()
        sock = conn._sock
        if sock is not None and self._master is not None and self._master.left(conn):
            self._discard(conn)  # the pool connects a connection it hands out to the master
            return self._checkout()  # the sentinels name (a reconnect by itself would not)
        if sock is not None and _closed(conn, sock):
            conn.disconnect()
        return conn

    def _forked(self) -> None:
        """In a child after ``fork``: forget the parent's idle connections (never use,
        disconnect or release them: the parent still reads from those sockets)."""
        self.idle = deque()
        self._pid = os.getpid()

    def _checkout(self) -> Any:
        pool = self.redis.connection_pool
        try:
            return pool.get_connection()
        except TypeError:  # redis-py 5 wants a command name
            return pool.get_connection("EVALSHA")

    def _drain(self) -> list[Any]:
        """Take every idle connection (other threads may take some meanwhile)."""
        taken = []
        while True:
            try:
                taken.append(self.idle.pop())
            except IndexError:
                return taken

    def release(self) -> None:
        """Give the idle connections back to the pool (on close)."""
        if self._master is not None:
            self._master.stop()
        if self._pid != os.getpid():
            self._forked()
        for conn in self._drain():
            self.redis.connection_pool.release(conn)


class MasterWatch(MasterAddress):
    """``MasterAddress`` kept by a thread of its own."""

    def __init__(self, pool: Any) -> None:
        super().__init__(pool)
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def left(self, conn: Any) -> bool:
        """``elsewhere``, once the watch runs (started here, again in a child after fork)."""
        thread = self._thread
        if (thread is None or not thread.is_alive()) and not self._stopped.is_set():
            self._start()
        return self.elsewhere(conn)

    def _start(self) -> None:
        me = weakref.ref(self)  # a client dropped without close() does not keep it running
        stopped = self._stopped
        self._thread = threading.Thread(
            target=MasterWatch._run, args=(me, stopped), name="worqr-master-watch", daemon=True
        )
        self._thread.start()

    @staticmethod
    def _run(me: weakref.ref[MasterWatch], stopped: threading.Event) -> None:
        while not stopped.is_set():
            watch = me()
            if watch is None:
                return  # its executor is gone
            # no answer now: the last one stands; the calls fail over by themselves
            with contextlib.suppress(RedisError, OSError, ValueError, TypeError):
                watch.learn(watch.pool.get_master_address())
            del watch
            stopped.wait(MASTER_CHECK_S)

    def stop(self) -> None:
        self._stopped.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)


def _read(conn: Any) -> Any:
    """One reply, an error reply returned (it leaves the connection usable). With hiredis,
    read here from the parser's socket and reader as redis-py's own ``read_response`` does
    (a RESP3 push goes to the parser's push handler first), without its per-reply work that
    this executor does not need (the error text of the host, made before every read); any
    other parser, or a reply already read ahead, goes through ``read_response``. A failure
    raises redis-py's errors, and the caller discards the connection."""
    parser = conn._parser
    if parser.__class__ is not _HiredisParser or conn.__class__.read_response is not _PLAIN_READ:
        return _read_response(conn)
    push = getattr(parser, "_hiredis_PushNotificationType", None)
    reader, sock = parser._reader, parser._sock
    if (
        reader is None
        or sock is None
        or getattr(parser, "_next_response", NOT_ENOUGH_DATA) is not NOT_ENOUGH_DATA
        or (push is None and conn.protocol in (3, "3"))
    ):
        return _read_response(conn)
    reply = reader.gets()
    try:
        while True:
            while reply is NOT_ENOUGH_DATA:
                n = sock.recv_into(parser._buffer)
                if not n:
                    raise RedisConnectionError("Connection closed by server.")
                reader.feed(parser._buffer, 0, n)  # type: ignore[arg-type,unused-ignore]
                reply = reader.gets()
            if push is None or not isinstance(reply, push):
                break
            parser.handle_push_response(reply)  # then the reply that follows
            reply = reader.gets()
    except TimeoutError:
        raise RedisTimeoutError(f"Timeout reading from {conn._host_error()}") from None
    except OSError as exc:
        raise RedisConnectionError(f"Error while reading from {conn._host_error()}: {exc}") from exc
    if isinstance(reply, RedisConnectionError):  # LOADING (BusyLoadingError) and kin
        raise reply
    if reply.__class__ is list and reply and isinstance(reply[0], RedisConnectionError):
        raise reply[0]
    if conn.health_check_interval:
        conn.next_health_check = _HEALTH_CLOCK() + conn.health_check_interval
    return reply


def _read_response(conn: Any) -> Any:
    """One reply through the connection's own method, an error reply returned."""
    try:
        return conn.read_response()
    except ResponseError as exc:
        return exc


def _closed(conn: Any, sock: Any) -> bool:
    """Whether ``sock``, ``conn``'s idle socket, has something to read (the server closed
    it): one ``poll`` with no wait, on a poll object kept with the connection for this
    socket (making and registering one costs as much again as the poll)."""
    kept = conn.__dict__.get("_worqr_poll")
    if kept is None or kept[0] is not sock:
        if not hasattr(select, "poll"):
            return bool(_readable([sock], 0))
        poller = select.poll()
        poller.register(sock, select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP)
        kept = conn._worqr_poll = (sock, poller)
    return bool(kept[1].poll(0))


def _readable(socks: list[Any], timeout: float) -> set[int]:
    """The file descriptors among ``socks`` readable within ``timeout`` seconds. ``poll``
    where there is one: ``select`` refuses descriptors above 1023, which a process with a
    few hundred clients has."""
    if hasattr(select, "poll"):
        poller = select.poll()
        for sock in socks:
            poller.register(sock, select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP)
        return {fd for fd, _ in poller.poll(max(0.0, timeout) * 1000)}
    readable, _, _ = select.select(socks, [], [], timeout)
    return {sock.fileno() for sock in readable}


class PubSub(_PubSub):
    """A PubSub that remembers it reconnected (it has then resubscribed by itself), and
    whose ``next_message`` blocks until a message comes, its timeout passes or ``wake()``
    is called (from any thread: a byte on a socket pair the wait selects on too)."""

    reconnected = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._liveness = Liveness()

    def on_connect(self, connection: Any) -> None:
        super().on_connect(connection)
        self.reconnected = True

    def next_message(self, timeout: float) -> Any:
        """The next message, or None once ``timeout`` seconds passed or ``wake()`` was
        called. What is already read (or decrypted) comes first; then it waits for the
        connection's socket to be readable, or a wake."""
        if self._woken():
            return None
        conn = self.connection
        if conn is not None and self.subscribed and self._liveness.dead(conn):
            conn.disconnect()  # the next read reconnects
            raise RedisConnectionError("the subscriber's health checks went unanswered")
        message = self.get_message(timeout=0)  # reconnects, health-checks, reads buffered
        if message is not None or timeout <= 0:
            return message
        sock = getattr(self.connection, "_sock", None) if self.subscribed else None
        if sock is not None and getattr(sock, "pending", lambda: 0)():
            return self.get_message(timeout=0)  # TLS: decrypted bytes no select can see
        waited = [self._wake_r] if sock is None else [sock, self._wake_r]
        readable = _readable(waited, Liveness.bound(conn, timeout))
        if self._woken() or sock is None or sock.fileno() not in readable:
            return None
        return self.get_message(timeout=0)

    def _woken(self) -> bool:
        try:
            return bool(self._wake_r.recv(64))
        except BlockingIOError:
            return False

    def wake(self) -> None:
        """Have ``next_message`` return now (or the next one at once): there is a subscribe
        request, or a close."""
        with contextlib.suppress(OSError):  # a full buffer: it is woken already
            self._wake_w.send(b"!")

    def close(self) -> None:
        """Close as redis-py does, and the wake-up sockets."""
        try:
            super().close()
        finally:
            self._wake_r.close()
            self._wake_w.close()
