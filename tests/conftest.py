"""Fixtures: one throwaway redis-server per session, a factory for more, and ``make``, a
factory of Worqr clients parametrized over both drivers (sync ``Worqr`` and ``AsyncWorqr``
behind a thin blocking facade), so every behaviour test runs against both."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from worqr_py import AsyncWorqr, Worqr
from worqr_py.embedded import redis_binary, server_version
from worqr_py.errors import WorqrError

from .support import RedisServer

IN_CLUSTER = os.environ.get("WORQR_TEST_CLUSTER") == "1"  # see pytest_collection_modifyitems
# Fast heartbeats: a worker trusts itself for ttl - (ttl - interval) / 2 after each beat,
# 0.25 s here. On the cluster run six redis-servers share the 2 CPUs with the test, and a
# stall of 150 ms lapsed a worker mid-test (2 of 4 CI runs): there, 0.55 s.
FAST = {
    "heartbeat_interval": 0.1,
    "heartbeat_ttl": 1.0 if IN_CLUSTER else 0.4,
    "poll_interval": 0.5,
}
_prefixes = itertools.count()


def worker(make: Callable[..., Any], *queues: str, **options: Any) -> Any:
    """A client from ``make`` (fast heartbeats) with a started worker working ``queues``."""
    w = make(**{**FAST, **options})
    w.start_worker()
    for q in queues:
        w.start_work(q)
    return w


@pytest.fixture(autouse=True)
def no_thread_outlives_its_test() -> Iterator[None]:
    """Every thread a test starts (a client's heartbeat, listener, runner...) ends with it:
    the test fails if one is still running 10 s after its teardown began."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 10
    while left := [t for t in set(threading.enumerate()) - before if t.is_alive()]:
        if time.monotonic() > deadline:
            pytest.fail(f"threads outlived the test: {sorted(t.name for t in left)}")
        time.sleep(0.02)


def server_line() -> str:
    """Which server the tests start (a venv or PATH can hold several), and its version."""
    try:
        binary = redis_binary()
    except WorqrError as exc:
        return f"redis-server: none ({exc})"
    version = ".".join(map(str, server_version(binary))) or "unknown version"
    return f"redis-server: {binary} ({version}; $WORQR_REDIS_SERVER chooses another)"


def pytest_report_header() -> str:
    return server_line()


def pytest_sessionstart(session: pytest.Session) -> None:
    """With ``-q`` pytest shows no header: say which server anyway, first."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and session.config.get_verbosity() < 0:
        reporter.write_line(server_line())


@pytest.fixture(scope="session")
def server() -> Iterator[RedisServer]:
    s = RedisServer()
    yield s
    s.stop()


@pytest.fixture
def servers() -> Iterator[Callable[..., RedisServer]]:
    """Factory of extra servers (for kill/pause/restart tests), stopped after the test."""
    made: list[RedisServer] = []

    def make(*extra: str) -> RedisServer:
        made.append(RedisServer(*extra))
        return made[-1]

    yield make
    for s in made:
        s.stop()


@pytest.fixture
def prefix() -> str:
    """A fresh key prefix per test: tests never see each other's keys."""
    return f"t{next(_prefixes)}"


@pytest.fixture(scope="session")
def cluster_url() -> Iterator[str]:
    """With ``WORQR_TEST_CLUSTER=1``: the URL of a real 3-master cluster (tests/cluster.py)
    started for the session, where ``make`` builds every client; else ""."""
    if not IN_CLUSTER:
        yield ""
        return
    from .cluster import RedisCluster

    c = RedisCluster()
    yield c.url
    c.stop()


@pytest.fixture
def r(server: RedisServer, cluster_url: str) -> Any:
    """A plain redis-py client on the test server, for looking at keys directly (in the
    cluster run: a cluster client, routing by key)."""
    if cluster_url:
        host, _, port = cluster_url.partition("://")[2].split(",")[0].partition(":")
        return redis.RedisCluster(host=host, port=int(port), decode_responses=True)
    return server.client(decode_responses=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``WORQR_TEST_CLUSTER=1`` runs the behaviour tests against a real cluster (``make``
    builds every client there): tests that start, kill or inspect servers of their own (a
    ``server``/``servers`` parameter) or do one of ``ONE_SERVER`` are about one server and are
    deselected, not skipped."""
    if not IN_CLUSTER:
        return
    keep, drop = [], []
    for item in items:
        params = inspect.signature(item.function).parameters if hasattr(item, "function") else {}
        source = _source(item)
        one_server = {"server", "servers"} & set(params) or any(x in source for x in ONE_SERVER)
        (drop if one_server else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


# what a test does that is about one server: count its commands, list all its keys or
# clients, kill a client on it, look into the single-server executor's connections, or run
# a MULTI across queues (slots)
ONE_SERVER = (
    "commandstats",
    "r.keys(",
    "client_list",
    "client_kill",
    "._executor",
    "r.pipeline(transaction=True)",
)


def _source(item: pytest.Item) -> str:
    try:
        return inspect.getsource(item.function)  # type: ignore[attr-defined]
    except (OSError, TypeError, AttributeError):
        return ""


class Loop:
    """An event loop in a thread, to drive AsyncWorqr from blocking test code."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        async def drain() -> None:  # as asyncio.run does: cancel what is left, let it finish
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.wait(tasks, timeout=5) if tasks else None

        self.run(drain())
        self.run(self.loop.shutdown_default_executor())  # to_thread's worker threads end too
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class Blocking:
    """AsyncWorqr with every coroutine method made blocking: the same tests drive both."""

    def __init__(self, loop: Loop, inner: AsyncWorqr) -> None:
        self._loop, self.inner = loop, inner

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if inspect.iscoroutinefunction(attr):
            return lambda *a, **k: self._loop.run(attr(*a, **k))
        if inspect.ismethod(attr):  # plain methods run on the loop too (asyncio is not thread-safe)

            async def call(*a: Any, **k: Any) -> Any:
                return attr(*a, **k)

            return lambda *a, **k: self._loop.run(call(*a, **k))
        return attr

    def __enter__(self) -> Blocking:
        self._loop.run(self.inner.__aenter__())
        return self

    def __exit__(self, *exc: Any) -> None:
        self._loop.run(self.inner.__aexit__(*exc))


@pytest.fixture(params=["sync", "async"])
def driver(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make(
    driver: str, server: RedisServer, prefix: str, cluster_url: str
) -> Iterator[Callable[..., Any]]:
    """``make(**options)``: a new client of the parametrized driver on the test server with
    this test's prefix (``url=`` picks another server; ``redis=`` passes clients of your own,
    of the driver's flavour). All are closed after the test."""
    made: list[Any] = []
    loop = Loop() if driver == "async" else None

    def factory(url: str | None = None, **options: Any) -> Any:
        options.setdefault("prefix", prefix)
        if "redis" not in options:
            url = url or cluster_url or server.url
        if loop is None:
            made.append(Worqr(url, **options))
        else:

            async def build() -> AsyncWorqr:
                return AsyncWorqr(url, **options)

            made.append(Blocking(loop, loop.run(build())))
        return made[-1]

    yield factory
    for w in made:
        with contextlib.suppress(Exception):
            w.close()
    if loop is not None:
        loop.stop()
