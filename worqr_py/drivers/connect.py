"""The connection seam: the one place that turns what the user gives (a URL, or client objects
of their own) into the data client and the pub/sub subscriber both drivers use.

URLs accepted: ``redis://``, ``rediss://`` and ``unix://`` (redis-py's ``from_url``), and
``redis+sentinel://[user:password@]host:port[,host:port...]/service[/db]`` (also
``rediss+sentinel://``, TLS to the sentinels and the master), which asks those sentinels for
the master of ``service`` and follows it across failovers. Credentials in a sentinel URL are
the master's; the sentinels are asked without them. ``redis+cluster://[user:password@]host:port
[,host:port...]`` (also ``rediss+cluster://``) connects to a Redis Cluster through those
startup nodes (see ``_cluster_clients``).
"""

from __future__ import annotations

import warnings
from typing import Any, Literal
from urllib.parse import unquote

import redis as redis_lib
import redis.asyncio as aredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

from ..core import validate as v
from ..core.redact import redact_url

DEFAULT_URL = "redis://localhost:6379/0"
NO_RETRY = Retry(NoBackoff(), 0)  # our own data clients: the drivers retry, with jitter
ASYNC_NO_RETRY = AsyncRetry(NoBackoff(), 0)  # the same for redis.asyncio connections
# Our own connections never wait forever on a silently dead peer (packets dropped, no RST):
# redis-py before 6 had no default socket timeout. No command we send blocks on the server.
SOCKET_OPTIONS: dict[str, Any] = {
    "socket_timeout": 5.0,
    "socket_connect_timeout": 5.0,
    "socket_keepalive": True,
}
HEALTH_CHECK_S = 5  # the subscriber PINGs when idle this long, to notice a dead connection
# Asking a sentinel for the master is one short command: a dead or silent sentinel is skipped
# quickly for the next one, and never retried by redis-py (the drivers retry the whole call).
SENTINEL_OPTIONS: dict[str, Any] = {
    "socket_timeout": 1.0,
    "socket_connect_timeout": 1.0,
    "socket_keepalive": True,
}
PLAIN_SCHEMES = ("redis", "rediss", "unix")
SENTINEL_SCHEMES = {"redis+sentinel": False, "rediss+sentinel": True}  # scheme -> TLS
SENTINEL_PORT = 26379
CLUSTER_SCHEMES = {"redis+cluster": False, "rediss+cluster": True}  # scheme -> TLS
CLUSTER_PORT = 6379


def _manager(client: Any) -> Any:
    """The Sentinel behind a ``master_for`` client's pool."""
    return client.connection_pool.sentinel_manager


class _SentinelRedis(redis_lib.Redis):
    """A ``master_for`` client that, when closed, also closes the clients its Sentinel holds
    to the sentinels (we made that Sentinel, so nobody else will)."""

    def close(self) -> None:
        try:
            super().close()
        finally:
            for sentinel in _manager(self).sentinels:
                sentinel.close()


class _AsyncSentinelRedis(aredis.Redis):
    """The asyncio ``_SentinelRedis``."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        try:
            await super().aclose(close_connection_pool)
        finally:
            for sentinel in _manager(self).sentinels:
                await sentinel.aclose()


def clients(
    url: str | None, redis: Any, subscriber: Any, flavour: Literal["sync", "async"]
) -> tuple[Any, Any, bool]:
    """``(data client, subscriber client, owned)`` from a driver's constructor arguments.

    With a ``url`` (default ``redis://localhost:6379/0`` when no client is given) we open our
    own clients (``owned``: the driver closes them): the data client never retries by itself
    (the drivers do, with jitter), both have socket timeouts and keepalive, and the subscriber
    PINGs when idle. Clients of the user's own (``redis``, ``subscriber`` defaulting to
    ``redis``) pass through unchanged and stay open after the driver closes."""
    if flavour not in ("sync", "async"):
        raise ValueError(f"flavour must be 'sync' or 'async', got {flavour!r}")
    if url is not None and (redis is not None or subscriber is not None):
        raise ValueError("pass either url or redis/subscriber connections, not both")
    if url is None and redis is None:
        url = DEFAULT_URL
    if url is None:
        if is_cluster(redis):
            if subscriber is not None:
                warnings.warn(
                    "subscriber= is not used with a Redis Cluster client since 0.7: each "
                    "queue's channels are subscribed (SSUBSCRIBE) on its slot's master",
                    DeprecationWarning,
                    stacklevel=4,
                )
            return redis, redis, False
        return redis, redis if subscriber is None else subscriber, False
    v.name(url, "url")
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme in SENTINEL_SCHEMES:
        return (*_sentinel_clients(url, flavour), True)
    if scheme in CLUSTER_SCHEMES:
        return (*_cluster_clients(url, flavour), True)
    if scheme not in PLAIN_SCHEMES:
        forms = ", ".join(f"{s}://" for s in (*PLAIN_SCHEMES, *SENTINEL_SCHEMES, *CLUSTER_SCHEMES))
        raise ValueError(f"url must start with one of {forms}; got {redact_url(url)!r}")
    from_url = redis_lib.Redis.from_url if flavour == "sync" else aredis.Redis.from_url
    # a Unix socket has no TCP keepalive: redis-py refuses the option there
    socket = {
        k: v for k, v in SOCKET_OPTIONS.items() if scheme != "unix" or k != "socket_keepalive"
    }
    return (
        from_url(url, retry=_no_retry(flavour), **socket),
        from_url(url, health_check_interval=HEALTH_CHECK_S, **socket),
        True,
    )


def _no_retry(flavour: str) -> Any:
    return NO_RETRY if flavour == "sync" else ASYNC_NO_RETRY


def parse_sentinel_url(url: str) -> dict[str, Any]:
    """The parts of a ``redis+sentinel://`` (or ``rediss+sentinel://``) URL: ``sentinels``
    (a list of ``(host, port)``, port 26379 when left out), ``service``, ``db`` (0 when left
    out), ``username``, ``password`` (None when absent) and ``ssl``. Raises ValueError naming
    ``url``, with any credentials masked, for a URL that is not of that form."""
    scheme, _, rest = url.partition("://")
    if scheme.lower() not in SENTINEL_SCHEMES:
        raise ValueError("url must start with redis+sentinel:// or rediss+sentinel://")

    def bad(why: str) -> ValueError:
        return ValueError(f"url {redact_url(url)!r}: {why}")

    if "?" in rest or "#" in rest:
        raise bad("a sentinel URL takes no query string or fragment")
    netloc, _, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    sentinels = [_address(part, bad) for part in hosts.split(",")]
    service, _, db = path.partition("/")
    if not service:
        raise bad("it names no service: write host:port[,host:port...]/service_name[/db]")
    if "/" in db or (db and not db.isdigit()):
        raise bad(f"the database after the service must be a number, got {db!r}")
    return {
        "sentinels": sentinels,
        "service": unquote(service),
        "db": int(db or 0),
        "username": username,
        "password": password,
        "ssl": SENTINEL_SCHEMES[scheme.lower()],
    }


def _address(
    part: str, bad: Any, default_port: int = SENTINEL_PORT, what: str = "sentinel"
) -> tuple[str, int]:
    """``(host, port)`` from ``host``, ``host:port`` or ``[ipv6]:port`` (of a ``what``)."""
    if part.startswith("["):
        host, close, tail = part[1:].partition("]")
        if not close or (tail and not tail.startswith(":")):
            raise bad(f"bad {what} address {part!r}")
        port = tail[1:]
    else:
        host, _, port = part.partition(":")
    if not host:
        raise bad(f"every {what} needs a host: write host:port[,host:port...]")
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise bad(f"{what} port must be a number from 1 to 65535, got {port!r}")
    return host, int(port or default_port)


def _sentinel_clients(url: str, flavour: str) -> tuple[Any, Any]:
    """Our data and subscriber clients for the master that the URL's sentinels name."""
    parts = parse_sentinel_url(url)
    tls = {"ssl": True} if parts["ssl"] else {}
    auth = {k: parts[k] for k in ("username", "password") if parts[k] is not None}
    manager_class, redis_class = (
        (Sentinel, _SentinelRedis) if flavour == "sync" else (AsyncSentinel, _AsyncSentinelRedis)
    )
    no_retry = _no_retry(flavour)
    sentinel_kwargs = {**SENTINEL_OPTIONS, "retry": no_retry, **tls}
    manager = manager_class(parts["sentinels"], sentinel_kwargs=sentinel_kwargs)
    master = {"redis_class": redis_class, "db": parts["db"], **auth, **tls, **SOCKET_OPTIONS}
    return (
        manager.master_for(parts["service"], retry=no_retry, **master),
        manager.master_for(parts["service"], health_check_interval=HEALTH_CHECK_S, **master),
    )


def is_cluster(client: Any) -> bool:
    """Whether a data client is a Redis Cluster client (sync or asyncio)."""
    return isinstance(client, (redis_lib.RedisCluster, aredis.RedisCluster))


def _cluster_clients(url: str, flavour: str) -> tuple[Any, Any]:
    """Our cluster client (startup nodes from the URL, redis-py's cluster redirections and
    retries kept: MOVED and ASK are followed), twice: it is also the subscriber's, whose
    sharded subscriptions go to each slot's master over connections of their own
    (``cluster_io.ShardedPubSub``)."""
    scheme, _, rest = url.partition("://")

    def bad(why: str) -> ValueError:
        return ValueError(f"url {redact_url(url)!r}: {why}")

    netloc, _, path = rest.partition("/")
    if path or "?" in netloc:
        raise bad("a cluster URL is [user:password@]host:port[,host:port...], nothing after")
    userinfo, at, hosts = netloc.rpartition("@")
    auth: dict[str, Any] = {}
    if at:
        user, colon, secret = userinfo.partition(":")
        if unquote(user):
            auth["username"] = unquote(user)
        if colon:
            auth["password"] = unquote(secret)
    nodes = [_address(part, bad, CLUSTER_PORT, "cluster node") for part in hosts.split(",")]
    tls: dict[str, Any] = {"ssl": True} if CLUSTER_SCHEMES[scheme.lower()] else {}
    lib: Any = redis_lib if flavour == "sync" else aredis
    startup = [lib.cluster.ClusterNode(h, p) for h, p in nodes]
    data = lib.RedisCluster(startup_nodes=startup, **auth, **tls, **SOCKET_OPTIONS)
    return data, data
