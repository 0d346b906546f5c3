"""The honest ceiling: what worqr_py's own Lua reaches on a bare connection.

Runs in the calling interpreter with its redis-py (and hiredis if installed): the client
that worqr_py itself uses, but none of worqr_py's code around the call.

* :func:`consume`: the real ``dequeue.lua`` (``worqr_py.core.scripts.DEQUEUE``), called with
  EVALSHA on one raw connection (``send_packed_command``, the reply read from hiredis' reader
  as worqr_py reads it; no ``Script.__call__``, no response callback; packed by hiredis, as
  worqr_py packs), with
  the KEYS and ARGV worqr_py sends: each call acks the previous call's tasks and takes the
  next ``prefetch`` ones, so a busy worker's one round trip per call. The worker id is put
  in the queue's worker set by hand; no heartbeat, no threads: only the call, and per task
  the no-op handler every worker in this benchmark runs (one fixed-size record appended to
  a stamp file, ``peerapps.stamp``).
* :func:`push`: ``RPUSH q v`` per task, or one bare ``RPUSH q v1 .. v50`` per 50 tasks, on one
  raw connection: what an enqueue, one by one or in lists of 50, cannot beat.

Rates use the method of the workers' stamps: (tasks - 1) / (last task taken - first) for
consume; tasks / window for push. CPU per task is this process's CPU time (the client side)
and Redis' (INFO cpu), with commands and round trips from ``redisinfo``.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from typing import Any

import redis
from worqr_py.core import scripts
from worqr_py.core.delayed import PROMOTE_CHUNK
from worqr_py.core.keys import Keys
from worqr_py.drivers._sync.redis_io import _read
from worqr_py.drivers.wire import packer

import redisinfo

QUEUE = "bench"


def _conn(url: str) -> Any:
    conn = redis.Redis.from_url(url).connection_pool.get_connection()
    conn.bench_pack = packer(conn)
    return conn


def _call(conn: Any, *args: Any) -> Any:
    """One command: packed by hiredis where it gives redis-py's bytes (as worqr_py packs),
    written, and its reply read as worqr_py's sync executor reads it (``redis_io._read``:
    from hiredis' reader on the socket, without ``read_response``'s per-reply work), so
    the ceiling's I/O is never slower than worqr_py's."""
    conn.send_packed_command([conn.bench_pack(conn, args)])
    reply = _read(conn)
    if isinstance(reply, Exception):
        raise reply
    return reply


def _window(probe: redis.Redis) -> tuple[redisinfo.Snapshot, float]:
    return redisinfo.snapshot(probe), time.process_time()


def _close(
    start: tuple[redisinfo.Snapshot, float],
    probe: redis.Redis,
    own: Any,
    tasks: int,
    per_s: float | None,
) -> dict[str, Any]:
    cpu = time.process_time() - start[1]
    d = redisinfo.delta(start[0], redisinfo.snapshot(probe), own)
    return {
        "n": tasks,
        "per_s": round(per_s, 1) if per_s else None,
        "worker_cpu_us_per_task": round(cpu * 1e6 / tasks, 1) if tasks else None,
        **d.per_task(tasks),
    }


WAKE_ONE = "1"  # as run() sends it: a short take makes the worker a waiting one


def consume(url: str, n: int, prefetch: int = 1, counters: bool = True) -> dict[str, Any]:
    """``n`` tasks through dequeue.lua, ``prefetch`` per call, each call acking the last;
    ``counters``: with the two throughput keys worqr_py passes (False: the call as before
    0.7, which counts nothing: what the counters cost)."""
    redisinfo.check_url(url)
    probe = redisinfo.raw_connection(url)
    own = redisinfo.calibrate(probe)
    k = Keys(f"ceiling-{uuid.uuid4().hex[:8]}").queue(QUEUE)
    wid = uuid.uuid4().hex
    conn = _conn(url)
    for s in range(0, n, 1000):
        _call(conn, "RPUSH", k.tasks, *[str(i) for i in range(s, min(n, s + 1000))])
    _call(conn, "SADD", k.workers, wid)
    _call(conn, "SCRIPT", "LOAD", scripts.DEQUEUE.source)
    keys = k.dequeue_keys(wid)  # exactly what worqr_py sends
    if counters:
        keys += k.tally_keys(int(time.time() // 60))
    head = ["EVALSHA", scripts.DEQUEUE.sha, len(keys), *keys, wid]
    tail = [k.events, "{ceiling}:wake:", QUEUE, PROMOTE_CHUNK, k.job_ends]  # ARGV[6..10]
    token, acks, done = 1, [], 0
    first = last = 0.0
    stamps = tempfile.NamedTemporaryFile(prefix="bench-ceiling-")  # noqa: SIM115
    fd = stamps.fileno()
    start = _window(probe)
    while True:
        reply = _call(conn, *head, token, prefetch, k.done, WAKE_ONE, *tail, *acks)
        if reply == -1:
            raise RuntimeError("dequeue.lua refused the ceiling's worker")
        got = (len(reply) - 2) // 2
        if not got:
            break  # this last call acked the last tasks: part of the cost, inside the window
        for i in range(got):  # the handler's only work, as in peerapps.stamp()
            os.write(fd, b"%020.6f %09d\n" % (time.time(), done + i))
        done += got
        last = time.perf_counter()
        first = first or last
        acks = [str(token + i) for i in range(got)]
        token += prefetch
    span = last - first
    out = _close(start, probe, own, done, (done - 1) / span if span > 0 else None)
    out["prefetch"] = prefetch
    stamps.close()
    _call(conn, "DEL", *keys)
    conn.disconnect()
    probe.close()
    return out


def push(url: str, n: int, batch: int = 1) -> dict[str, Any]:
    """``n`` tasks with ``RPUSH``, ``batch`` values per command (one command per round trip)."""
    redisinfo.check_url(url)
    probe = redisinfo.raw_connection(url)
    own = redisinfo.calibrate(probe)
    key = f"ceiling-{uuid.uuid4().hex[:8]}:q"
    tasks = [f"task-{i:07d}" for i in range(n)]
    conn = _conn(url)
    _call(conn, "PING")
    start = _window(probe)
    t0 = time.perf_counter()
    for s in range(0, n, batch):
        _call(conn, "RPUSH", key, *tasks[s : s + batch])
    secs = time.perf_counter() - t0
    out = _close(start, probe, own, n, n / secs)
    out["batch"] = batch
    _call(conn, "DEL", key)
    conn.disconnect()
    probe.close()
    return out
