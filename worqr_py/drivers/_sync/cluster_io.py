"""The sync driver's Redis Cluster I/O: ``ClusterExecutor`` (in place of
``redis_io.Executor``) and ``ShardedPubSub``, the listener's subscriber there (in place of
``redis_io.PubSub``). Hand-written, as is its asyncio twin ``drivers/_async/cluster_io.py``
(same names, same meaning).

Every channel of worqr_py on a cluster is a queue's (``P:{E}:...``): the scripts SPUBLISH on
it, and a shard channel's messages reach only the shard that owns its slot. So each channel
is SSUBSCRIBEd on the master that owns its slot, over one connection of ours per such master,
and all of them are read together. When a master is lost (its connection fails or stops
answering pings) or the server moves a channel away (a resharding: it pushes ``sunsubscribe``),
those channels are subscribed again where the refreshed slot map says, and ``reconnected``
tells the listener that messages may have been missed meanwhile (it then polls for work).
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

from redis.exceptions import (
    AskError,
    ClusterDownError,
    ClusterError,
    MovedError,
    NoScriptError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError

from ...core import scripts
from ...core.calls import Arg, Call, Commuting, text
from ..connect import HEALTH_CHECK_S, is_cluster
from .redis_io import Executor, _readable

LOST = (RedisError, OSError, ValueError)  # a shard's connection failed, or said MOVED
AGAIN = (NoScriptError, MovedError, AskError, TryAgainError, ClusterDownError)  # run alone
TYPES = {"smessage": "message", "ssubscribe": "subscribe", "sunsubscribe": "unsubscribe"}


def first_key(c: Call) -> Arg:
    """The key that routes a call (a script's first KEY; a command's first argument)."""
    return c.args[0] if c.script is not None else c.args[1]


def _checkout(pool: Any) -> Any:
    try:
        return pool.get_connection()
    except TypeError:  # redis-py 5 wants a command name
        return pool.get_connection("EVALSHA")


@contextlib.contextmanager
def unreachable() -> Iterator[None]:
    """redis-py's cluster errors that mean "no node answers" (``RedisClusterException``: the
    cluster cannot be connected, a slot not covered while it fails over) or "not now"
    (``ClusterError``: its redirections ran out, as they do on TRYAGAIN while a slot's keys
    are split between two nodes by a migration, or CLUSTERDOWN; ``TryAgainError``) as the
    ``ConnectionError`` they are, so that callers retry them for ``retry_timeout``."""
    try:
        yield
    except RedisClusterException as exc:
        raise RedisConnectionError(f"Redis Cluster unreachable: {exc}") from exc
    except (ClusterError, TryAgainError) as exc:
        raise RedisConnectionError(f"Redis Cluster busy for this slot ({exc})") from exc


def cluster_words(c: Call) -> tuple[Arg, ...]:
    """The command a call sends on a cluster: a script's is the EVALSHA of its cluster variant."""
    if c.script is None:
        return c.args
    return ("EVALSHA", scripts.SHARDED[c.script.name].sha, c.nkeys, *c.args)


class ClusterExecutor:
    """Calls on a Redis Cluster, through redis-py's ``RedisCluster``, which routes each call
    to the master of its keys' slot (a script by its KEYS, which share one hash tag) and
    follows MOVED and ASK. Scripts run as their cluster variant (``scripts.SHARDED``:
    SPUBLISH). A NOSCRIPT (a node that never had the script, or a replica promoted since)
    runs the call again as an EVAL of the script's source, which follows MOVED to the
    slot's master as it is now and caches the script there (a SCRIPT LOAD "on every
    master" goes to the masters of a slot map that can be stale right after a failover).
    A pipeline runs its calls in order, error replies in place; a ``Commuting`` one sends
    each node's share as one batch, all batches before any reply is read: one round trip
    however many slots it spans."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis

    def call(self, c: Call) -> Any:
        with unreachable():
            try:
                return self.redis.execute_command(*cluster_words(c))
            except NoScriptError:  # EVAL runs it where the slot is now, and caches it there
                assert c.script is not None
                source = scripts.SHARDED[c.script.name].source
                return self.redis.execute_command("EVAL", source, c.nkeys, *c.args)

    def pipeline(self, calls: list[Call]) -> list[Any]:
        if isinstance(calls, Commuting) and len(calls) > 1:
            return self._at_once(calls)
        replies: list[Any] = []
        for c in calls:  # in order: another node's call may depend on this one
            try:
                replies.append(self.call(c))
            except ResponseError as exc:
                replies.append(exc)
        return replies

    def _at_once(self, calls: list[Call]) -> list[Any]:
        """Commuting calls: each node's share sent as one batch, every batch before any
        reply is read (one round trip). A reply that redirects (MOVED, ASK, TRYAGAIN,
        CLUSTERDOWN) or says NOSCRIPT runs that call again alone, where redis-py follows
        it; a lost connection refreshes the slot map and is raised (the driver retries)."""
        slots = self.redis.nodes_manager
        batches: dict[str, tuple[Any, list[int]]] = {}
        with unreachable():
            for i, c in enumerate(calls):
                node = slots.get_node_from_slot(self.redis.keyslot(first_key(c)))
                batches.setdefault(node.name, (node, []))[1].append(i)
        replies: list[Any] = [None] * len(calls)
        held: list[tuple[Any, Any, list[int]]] = []
        try:
            for node, batch in batches.values():
                pool = self.redis.get_redis_connection(node).connection_pool
                conn = _checkout(pool)
                held.append((pool, conn, batch))
                packed = conn.pack_commands([cluster_words(calls[i]) for i in batch])
                conn.send_packed_command(packed, check_health=False)
            for _, conn, batch in held:
                for i in batch:
                    try:
                        replies[i] = conn.read_response()
                    except ResponseError as exc:
                        replies[i] = exc
        except (RedisError, RedisClusterException, OSError) as exc:
            for _, conn, _ in held:
                conn.disconnect()
            with contextlib.suppress(RedisError, RedisClusterException, OSError):
                slots.initialize()
            if isinstance(exc, RedisClusterException):
                raise RedisConnectionError(f"Redis Cluster unreachable: {exc}") from exc
            raise
        finally:
            for pool, conn, _ in held:
                pool.release(conn)
        for i, reply in enumerate(replies):
            if isinstance(reply, AGAIN):
                try:
                    replies[i] = self.call(calls[i])
                except ResponseError as exc:
                    replies[i] = exc
        return replies

    def load(self) -> None:
        """SCRIPT LOAD every script's cluster variant on every master."""
        for script in scripts.ALL:
            self.redis.script_load(scripts.SHARDED[script.name].source)

    def release(self) -> None:
        """Nothing of ours to give back: the cluster client owns its connections."""


def executor(redis: Any) -> Executor | ClusterExecutor:
    """The executor for a data client: ``ClusterExecutor`` for a Redis Cluster client."""
    return ClusterExecutor(redis) if is_cluster(redis) else Executor(redis)


class _Shard:
    """Our connection to one master, and the channels subscribed on it."""

    def __init__(self, name: str, conn: Any) -> None:
        self.name, self.conn = name, conn
        self.channels: set[str] = set()
        self.heard = time.monotonic()  # when it last said anything
        self.pinged = False  # a PING is unanswered
        self.asked: float | None = None  # when a SSUBSCRIBE went unanswered since
        self.leaving: Counter[str] = Counter()  # our SUNSUBSCRIBEs not yet confirmed

    def due(self, now: float) -> bool:
        """Whether it was silent for three health-check intervals with a PING unanswered."""
        if now - self.heard > 3 * HEALTH_CHECK_S:
            return True
        if self.asked is not None and now - self.asked > HEALTH_CHECK_S:
            return True  # a subscribe unanswered: a silent master is noticed sooner
        if now - self.heard > HEALTH_CHECK_S and not self.pinged:
            self.conn.send_command("PING", check_health=False)
            self.pinged = True
        return False

    def ask(self) -> None:
        """A SSUBSCRIBE went out: it must be answered within a health-check interval."""
        if self.asked is None:
            self.asked = time.monotonic()


class ShardedPubSub:
    """SSUBSCRIBE each channel on its slot's master and read every such connection at once;
    ``next_message`` returns messages as ``redis_io.PubSub`` does (types ``message`` and
    ``subscribe``), blocks until one comes, its timeout passes or ``wake()`` is called."""

    reconnected = False

    def __init__(self, cluster: Any) -> None:
        self._cluster = cluster  # the data client: its slot map and its nodes' options
        self._shards: dict[str, _Shard] = {}  # node name -> shard
        self._where: dict[str, str] = {}  # channel -> node name it is subscribed on
        self._orphans: set[str] = set()  # channels to subscribe (again)
        self._stale = False  # a shard was lost: refresh the slot map before placing
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)

    def subscribe(self, *channels: str) -> None:
        """SSUBSCRIBE the channels, each on its slot's master (confirmed by a message)."""
        self._orphans.update(channels)
        self._place()

    def unsubscribe(self, *channels: str) -> None:
        """SUNSUBSCRIBE the channels (a lost shard's are just forgotten)."""
        for channel in channels:
            self._orphans.discard(channel)
            shard = self._shards.get(self._where.pop(channel, ""))
            if shard is not None:
                shard.channels.discard(channel)
                try:
                    shard.conn.send_command("SUNSUBSCRIBE", channel, check_health=False)
                    shard.leaving[channel] += 1
                except LOST:
                    self._lose(shard)

    def _place(self) -> None:
        """Subscribe the orphans on their slots' masters, after a loss by a refreshed slot
        map. A failure leaves them orphans (the next call tries again) and is raised."""
        if not self._orphans:
            return
        with unreachable():
            if self._stale:
                self._cluster.nodes_manager.initialize()
                self._stale = False  # only once it worked: a failure asks again next time
            slots = self._cluster.nodes_manager
            nodes = {c: slots.get_node_from_slot(self._cluster.keyslot(c)) for c in self._orphans}
        for channel, node in sorted(nodes.items()):
            shard = self._shards.get(node.name) or self._open(node)
            try:
                shard.conn.send_command("SSUBSCRIBE", channel, check_health=False)
                shard.ask()
            except LOST:
                self._lose(shard)
                raise
            shard.channels.add(channel)
            self._where[channel] = shard.name
            self._orphans.discard(channel)

    def _open(self, node: Any) -> _Shard:
        pool = self._cluster.get_redis_connection(node).connection_pool
        conn = pool.connection_class(**pool.connection_kwargs)  # ours: not the pool's to count
        try:
            conn.connect()
        except LOST:
            self._stale = True
            raise
        shard = self._shards[node.name] = _Shard(node.name, conn)
        return shard

    def _lose(self, shard: _Shard) -> None:
        """Drop a failed shard: its channels are subscribed again, wherever they now are."""
        self._shards.pop(shard.name, None)
        for channel in shard.channels:
            self._where.pop(channel, None)
        self._orphans.update(shard.channels)
        self._stale = self.reconnected = True
        shard.conn.disconnect()

    def next_message(self, timeout: float) -> Any:
        """The next message, or None once ``timeout`` seconds passed or ``wake()`` was
        called. Subscribes the orphans first; a lost shard raises (once)."""
        if self._woken():
            return None
        self._place()
        now = time.monotonic()
        for shard in list(self._shards.values()):
            try:
                if shard.due(now):
                    raise RedisConnectionError(f"shard {shard.name} stopped answering")
                if shard.conn.can_read(timeout=0):
                    return self._read(shard)
            except LOST:
                self._lose(shard)
                raise
        if timeout <= 0:
            return None
        socks = {s.conn._sock.fileno(): s for s in self._shards.values() if s.conn._sock}
        waited = [self._wake_r, *(s.conn._sock for s in socks.values())]
        readable = _readable(waited, min(timeout, HEALTH_CHECK_S))
        if self._woken():
            return None
        for fd in readable:
            ready = socks.get(fd)
            if ready is not None:
                try:
                    return self._read(ready)
                except LOST:
                    self._lose(ready)
                    raise
        return None

    def _read(self, shard: _Shard) -> Any:
        """One reply of the shard, as the listener's message (None for a PONG)."""
        reply = shard.conn.read_response(push_request=True)  # RESP3: pushes
        shard.heard, shard.pinged, shard.asked = time.monotonic(), False, None
        if not isinstance(reply, list) or len(reply) < 3:
            return None
        kind, channel = TYPES.get(text(reply[0]), ""), text(reply[1])
        if kind == "unsubscribe" and shard.leaving[channel] > 0:  # ours, confirmed
            shard.leaving[channel] -= 1
            if not shard.leaving[channel]:
                del shard.leaving[channel]
        elif kind == "unsubscribe" and self._where.get(channel) == shard.name:
            # Not ours: the server moved the channel's slot away. Subscribe it where it is now.
            shard.channels.discard(channel)
            del self._where[channel]
            self._orphans.add(channel)
            self._stale = self.reconnected = True
            return None
        return {"type": kind, "pattern": None, "channel": reply[1], "data": reply[2]}

    def _woken(self) -> bool:
        try:
            return bool(self._wake_r.recv(64))
        except BlockingIOError:
            return False

    def wake(self) -> None:
        """Have ``next_message`` return now (or the next one at once)."""
        with contextlib.suppress(OSError):  # a full buffer: it is woken already
            self._wake_w.send(b"!")

    def close(self) -> None:
        """Close every shard's connection and the wake-up sockets."""
        for shard in self._shards.values():
            with contextlib.suppress(*LOST):
                shard.conn.disconnect()
        self._shards.clear()
        self._wake_r.close()
        self._wake_w.close()
