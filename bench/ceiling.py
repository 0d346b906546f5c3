"""The "ceiling": what a bare redis-py loop on one sync connection reaches.

Runs in the calling interpreter with its redis-py (and hiredis if installed), so when
bench/run.py calls it, it measures the client that worqr_py itself uses.

* ``lpush_single``: one LPUSH per round trip (enqueue one by one).
* ``lpush_pipelined``: LPUSH of N items in non-transactional pipelines of 50.
* ``lua_consume``: a reliable consume loop: one EVALSHA per task that acks the previous
  task (LREM from the processing list) and LMOVEs the next one from the queue to the
  processing list; so 1 round trip and 3 commands per task.  (LMOVE pushes on the
  left, and the task acked is always the newest, so LREM finds it at index 0.)  It
  consumes the N items that ``lpush_pipelined`` pushed.
* ``ping``: PING round trips on one connection.

Every loop stops after ``cap`` seconds and reports what it did (``done`` < ``n``).
"""

from __future__ import annotations

import time
from typing import Any

import redis

import redisinfo

BATCH = 50

# KEYS[1] queue, KEYS[2] processing list; ARGV[1] the previous task ('' for none).
ACK_AND_MOVE = """
if ARGV[1] ~= '' then redis.call('LREM', KEYS[2], 1, ARGV[1]) end
return redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT')
"""


def _result(n: int, done: int, d: redisinfo.Delta) -> dict[str, Any]:
    secs = d.seconds
    return {
        "n": n,
        "done": done,
        "capped": done < n,
        "seconds": round(secs, 4),
        "per_s": round(done / secs, 1) if secs > 0 and done else None,
        **d.per_task(done),
    }


def measure_ceiling(
    url: str, n: int, cap: float = 30.0, prefix: str = "bench:ceiling"
) -> dict[str, Any]:
    """Run the ceiling loops against ``url``; only keys under ``prefix`` are touched."""
    redisinfo.check_url(url)
    probe = redisinfo.raw_connection(url)
    own = redisinfo.calibrate(probe)
    r = redis.Redis.from_url(url)
    queue, processing = f"{prefix}:queue", f"{prefix}:processing"
    r.delete(queue, processing)
    script = r.register_script(ACK_AND_MOVE)
    payloads = [b"%d" % i for i in range(n)]
    out: dict[str, Any] = {
        "redis_py": redis.__version__,
        "hiredis": _has_hiredis(),
        "batch_size": BATCH,
    }

    # Enqueue one by one, 1 round trip each.
    r.ping()
    a = redisinfo.snapshot(probe)
    deadline = time.perf_counter() + cap
    done = 0
    while done < n and time.perf_counter() < deadline:
        r.lpush(queue, payloads[done])
        done += 1
    out["lpush_single"] = _result(n, done, redisinfo.delta(a, redisinfo.snapshot(probe), own))
    r.delete(queue)

    # Pipelined LPUSH, batches of 50.
    pipe = r.pipeline(transaction=False)
    a = redisinfo.snapshot(probe)
    deadline = time.perf_counter() + cap
    done = 0
    while done < n and time.perf_counter() < deadline:
        for p in payloads[done : done + BATCH]:
            pipe.lpush(queue, p)
        done += len(pipe.execute())
    out["lpush_pipelined"] = _result(n, done, redisinfo.delta(a, redisinfo.snapshot(probe), own))

    # Reliable consume: ack previous + LMOVE next in one script call.
    r.script_load(ACK_AND_MOVE)  # so that every timed call is one EVALSHA
    a = redisinfo.snapshot(probe)
    deadline = time.perf_counter() + cap
    consumed = 0
    prev: bytes = b""
    while time.perf_counter() < deadline:
        job = script(keys=[queue, processing], args=[prev])
        if job is None:
            break
        consumed += 1  # a real consumer would run the job here
        prev = job
    # The last call (which found the queue empty) acked the last job; it is part of the
    # cost, so it stays inside the window.
    out["lua_consume"] = _result(
        min(done, n), consumed, redisinfo.delta(a, redisinfo.snapshot(probe), own)
    )
    out["lua_consume"]["left_in_processing"] = r.llen(processing)

    # PING round trips.
    a = redisinfo.snapshot(probe)
    deadline = time.perf_counter() + cap
    pings = 0
    while pings < n and time.perf_counter() < deadline:
        r.ping()
        pings += 1
    out["ping"] = _result(n, pings, redisinfo.delta(a, redisinfo.snapshot(probe), own))

    r.delete(queue, processing)
    r.close()
    probe.close()
    return out


def _has_hiredis() -> bool:
    try:
        import hiredis  # noqa: F401
    except ImportError:
        return False
    return True
