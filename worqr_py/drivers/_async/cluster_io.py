"""The asyncio driver's Redis Cluster I/O: ``ClusterExecutor`` (in place of
``redis_io.Executor``) and ``ShardedPubSub``, the listener's subscriber there (in place of
``redis_io.PubSub``). Hand-written, as is its sync twin ``drivers/_sync/cluster_io.py``
(same names, same meaning): see there why every channel is SSUBSCRIBEd on its slot's master
and what happens when a master is lost. Here each shard's connection has one read under way
at a time, and the wait takes whichever answers first.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

from redis.exceptions import (
    ClusterError,
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
from .redis_io import Executor

LOST = (RedisError, OSError, ValueError)  # a shard's connection failed, or said MOVED
TYPES = {"smessage": "message", "ssubscribe": "subscribe", "sunsubscribe": "unsubscribe"}


def first_key(c: Call) -> Arg:
    """The key that routes a call (a script's first KEY; a command's first argument)."""
    return c.args[0] if c.script is not None else c.args[1]


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
    """Calls on a Redis Cluster, through redis-py's asyncio ``RedisCluster``, which routes
    each call to the master of its keys' slot (a script by its KEYS, which share one hash tag)
    and follows MOVED and ASK. Scripts run as their cluster variant (``scripts.SHARDED``:
    SPUBLISH). A NOSCRIPT (a node that never had the script, or a replica promoted since)
    runs the call again as an EVAL of the script's source, which follows MOVED to the
    slot's master as it is now and caches the script there (a SCRIPT LOAD "on every
    master" goes to the masters of a slot map that can be stale right after a failover).
    A pipeline runs its calls in order, error replies in place; a ``Commuting`` one runs
    each node's share at the same time."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis

    async def call(self, c: Call) -> Any:
        with unreachable():
            try:
                return await self.redis.execute_command(*cluster_words(c))
            except NoScriptError:  # EVAL runs it where the slot is now, and caches it there
                assert c.script is not None
                source = scripts.SHARDED[c.script.name].source
                return await self.redis.execute_command("EVAL", source, c.nkeys, *c.args)

    async def pipeline(self, calls: list[Call]) -> list[Any]:
        if isinstance(calls, Commuting) and len(calls) > 1:
            return await self._at_once(calls)
        replies: list[Any] = []
        for c in calls:  # in order: another node's call may depend on this one
            try:
                replies.append(await self.call(c))
            except ResponseError as exc:
                replies.append(exc)
        return replies

    async def _at_once(self, calls: list[Call]) -> list[Any]:
        """Commuting calls: each node's share run call by call, all nodes at once (one round
        trip per call of the largest share); a failure is raised once all have ended."""
        batches: dict[str, list[int]] = {}
        with unreachable():
            await self.redis.initialize()  # the asyncio client learns its slot map lazily
            slots = self.redis.nodes_manager
            for i, c in enumerate(calls):
                node = slots.get_node_from_slot(self.redis.keyslot(first_key(c)))
                batches.setdefault(node.name, []).append(i)
        replies: list[Any] = [None] * len(calls)

        async def run(batch: list[int]) -> None:
            for i in batch:
                try:
                    replies[i] = await self.call(calls[i])
                except ResponseError as exc:
                    replies[i] = exc

        ended = await asyncio.gather(*(run(b) for b in batches.values()), return_exceptions=True)
        for outcome in ended:
            if isinstance(outcome, BaseException):
                raise outcome
        return replies

    async def load(self) -> None:
        """SCRIPT LOAD every script's cluster variant on every master."""
        for script in scripts.ALL:
            await self.redis.script_load(scripts.SHARDED[script.name].source)

    async def release(self) -> None:
        """Nothing of ours to give back: the cluster client owns its connections."""


def executor(redis: Any) -> Executor | ClusterExecutor:
    """The executor for a data client: ``ClusterExecutor`` for a Redis Cluster client."""
    return ClusterExecutor(redis) if is_cluster(redis) else Executor(redis)


class _Shard:
    """Our connection to one master, the channels subscribed on it, and its read under way."""

    def __init__(self, name: str, conn: Any) -> None:
        self.name, self.conn = name, conn
        self.channels: set[str] = set()
        self.heard = time.monotonic()  # when it last said anything
        self.pinged = False  # a PING is unanswered
        self.asked: float | None = None  # when a SSUBSCRIBE went unanswered since
        self.leaving: Counter[str] = Counter()  # our SUNSUBSCRIBEs not yet confirmed
        self.read: asyncio.Future[Any] | None = None

    async def due(self, now: float) -> bool:
        """Whether it was silent for three health-check intervals with a PING unanswered."""
        if now - self.heard > 3 * HEALTH_CHECK_S:
            return True
        if self.asked is not None and now - self.asked > HEALTH_CHECK_S:
            return True  # a subscribe unanswered: a silent master is noticed sooner
        if now - self.heard > HEALTH_CHECK_S and not self.pinged:
            await self.conn.send_command("PING", check_health=False)
            self.pinged = True
        return False

    def ask(self) -> None:
        """A SSUBSCRIBE went out: it must be answered within a health-check interval."""
        if self.asked is None:
            self.asked = time.monotonic()

    async def stop_read(self) -> None:
        if self.read is not None:
            self.read.cancel()
            await asyncio.wait([self.read], timeout=5)
            self.read = None


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
        self._waker: asyncio.Future[None] | None = None
        self._woken = False

    async def subscribe(self, *channels: str) -> None:
        """SSUBSCRIBE the channels, each on its slot's master (confirmed by a message)."""
        self._orphans.update(channels)
        await self._place()

    async def unsubscribe(self, *channels: str) -> None:
        """SUNSUBSCRIBE the channels (a lost shard's are just forgotten)."""
        for channel in channels:
            self._orphans.discard(channel)
            shard = self._shards.get(self._where.pop(channel, ""))
            if shard is not None:
                shard.channels.discard(channel)
                try:
                    await shard.conn.send_command("SUNSUBSCRIBE", channel, check_health=False)
                    shard.leaving[channel] += 1
                except LOST:
                    await self._lose(shard)

    async def _place(self) -> None:
        """Subscribe the orphans on their slots' masters, after a loss by a refreshed slot
        map. A failure leaves them orphans (the next call tries again) and is raised."""
        if not self._orphans:
            return
        with unreachable():
            await self._cluster.initialize()  # the asyncio client learns its slot map lazily
            if self._stale:
                await self._cluster.nodes_manager.initialize()
                self._stale = False  # only once it worked: a failure asks again next time
            slots = self._cluster.nodes_manager
            nodes = {c: slots.get_node_from_slot(self._cluster.keyslot(c)) for c in self._orphans}
        for channel, node in sorted(nodes.items()):
            shard = self._shards.get(node.name) or await self._open(node)
            try:
                await shard.conn.send_command("SSUBSCRIBE", channel, check_health=False)
                shard.ask()
            except LOST:
                await self._lose(shard)
                raise
            shard.channels.add(channel)
            self._where[channel] = shard.name
            self._orphans.discard(channel)

    async def _open(self, node: Any) -> _Shard:
        conn = node.connection_class(**node.connection_kwargs)
        try:
            await conn.connect()
        except LOST:
            self._stale = True
            raise
        shard = self._shards[node.name] = _Shard(node.name, conn)
        return shard

    async def _lose(self, shard: _Shard) -> None:
        """Drop a failed shard: its channels are subscribed again, wherever they now are."""
        self._shards.pop(shard.name, None)
        for channel in shard.channels:
            self._where.pop(channel, None)
        self._orphans.update(shard.channels)
        self._stale = self.reconnected = True
        await shard.stop_read()
        await shard.conn.disconnect(nowait=True)

    async def next_message(self, timeout: float) -> Any:
        """The next message, or None once ``timeout`` seconds passed or ``wake()`` was
        called (a read under way goes on; the next call picks it up). Subscribes the
        orphans first; a lost shard raises (once)."""
        if self._woken:
            self._woken = False
            return None
        await self._place()
        now = time.monotonic()
        for shard in list(self._shards.values()):
            try:
                if await shard.due(now):
                    raise RedisConnectionError(f"shard {shard.name} stopped answering")
            except LOST:
                await self._lose(shard)
                raise
            if shard.read is None:
                shard.read = asyncio.ensure_future(shard.conn.read_response(push_request=True))
        self._waker = asyncio.get_running_loop().create_future()
        try:
            reads = [s.read for s in self._shards.values() if s.read is not None]
            await asyncio.wait(
                [*reads, self._waker],
                timeout=max(0.0, min(timeout, HEALTH_CHECK_S)),
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            self._waker = None
            self._woken = False
        for shard in list(self._shards.values()):
            if shard.read is not None and shard.read.done():
                read, shard.read = shard.read, None
                try:
                    reply = read.result()
                except LOST:
                    await self._lose(shard)
                    raise
                return self._message(shard, reply)
        return None

    def _message(self, shard: _Shard, reply: Any) -> Any:
        """One reply of the shard, as the listener's message (None for a PONG)."""
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

    def wake(self) -> None:
        """Have ``next_message`` return now (or the next one at once)."""
        self._woken = True
        if self._waker is not None and not self._waker.done():
            self._waker.set_result(None)

    async def aclose(self) -> None:
        """Stop every shard's read and close its connection."""
        for shard in list(self._shards.values()):
            await shard.stop_read()
            with contextlib.suppress(*LOST):
                await shard.conn.disconnect(nowait=True)
        self._shards.clear()
