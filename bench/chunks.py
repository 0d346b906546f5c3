"""Bounded calls at 100,000 tasks: the longest single Redis call of each multi-call operation.

    python bench/chunks.py [--n 100000]

On a throwaway redis-server with ``slowlog-log-slower-than 0`` (every command is logged with
its duration as Redis measured it), it builds:

- a dead worker (registered, no heartbeat) holding ``n`` tasks on queue ``jobs`` behind 1,000
  queued ones: every 50th task is ``X``, the others unique (their lock held by the process),
  every 7th delivered twice and every 1,000th five times (dead-lettered: max_deliveries 5);
- a live worker (heartbeat 0.2 s, TTL 2 s) whose supervisor reaps the dead one;
- then, on the queue of about ``n`` returned tasks: cancel_tasks("jobs", "X"); on a dead list
  of ``n`` (every 100th ``Y``): purge_dead("Y"), requeue_dead("Z") of 100 copies appended,
  requeue_dead() of all;
  delete_queue("jobs") with its ~``n`` locks; and purge_dead() of a fresh dead list of ``n``.

For each it prints the longest single call (SLOWLOG, microseconds), the number of script
calls, the longest call of any kind, and the wall time. For the reap it also prints the live
worker's largest gap between two completed heartbeats (from the last before the reap to the
first after it, against the 0.2 s interval) and the largest round trip of a PING sent every
2 ms on another connection during the reap (how long any client waited on Redis).
"""

from __future__ import annotations

import argparse
import itertools
import threading
import time
import uuid
from collections.abc import Callable, Generator
from typing import Any

import redis
from worqr_py import Worqr
from worqr_py.core import scripts
from worqr_py.core.keys import Keys
from worqr_py.embedded import EmbeddedRedis

INTERVAL, TTL = 0.2, 2.0  # a long TTL: a CPU stall on a shared machine must not fail it
NAMES = {s.sha: s.name for s in scripts.ALL}


def slowlog(r: redis.Redis) -> list[tuple[str, int]]:
    """(command or script name, microseconds) of every logged call, then a reset."""
    entries = r.execute_command("SLOWLOG", "GET", "-1")
    r.execute_command("SLOWLOG", "RESET")
    out = []
    for e in entries:
        args = [a.decode(errors="replace") if isinstance(a, bytes) else str(a) for a in e[3]]
        name = args[0].upper()
        if name == "EVALSHA" and len(args) > 1:
            name = NAMES.get(args[1], "EVALSHA")
        out.append((name, int(e[2])))
    return out


def report(what: str, r: redis.Redis, wall: float) -> None:
    log = slowlog(r)
    mine = [(n, us) for n, us in log if n in NAMES.values()]
    worst = max(mine, key=lambda x: x[1], default=("-", 0))
    other = max(  # the bench's own SLOWLOG and CONFIG calls left out
        [x for x in log if x[0] not in ("SLOWLOG", "CONFIG")], key=lambda x: x[1], default=("-", 0)
    )
    counts: dict[str, int] = {}
    for n, _ in mine:
        counts[n] = counts.get(n, 0) + 1
    calls = ", ".join(f"{n} x{c}" for n, c in sorted(counts.items()))
    main = sorted(us for n, us in mine if n == worst[0])
    p50, p99 = main[len(main) // 2], main[min(len(main) - 1, len(main) * 99 // 100)]
    print(
        f"{what:<24} longest script call {worst[1] / 1000:6.2f} ms ({worst[0]}; "
        f"p50 {p50 / 1000:.2f}, p99 {p99 / 1000:.2f}); "
        f"longest command {other[1] / 1000:6.2f} ms ({other[0]}); wall {wall:6.2f} s; {calls}"
    )


def build_dead_worker(r: redis.Redis, keys: Keys, n: int) -> str:
    wid = "dead" + uuid.uuid4().hex[:8]
    k = keys.queue("jobs")
    pipe = r.pipeline(transaction=False)
    pipe.sadd(keys.workers, wid)
    pipe.sadd(keys.working_queues(wid), "jobs")
    pipe.sadd(keys.queues, "jobs")
    pipe.sadd(k.workers, wid)
    pipe.rpush(k.tasks, *[f"queued-{i}" for i in range(1000)])
    for start in range(1, n + 1, 5000):
        procs: dict[str, str] = {}
        counts: dict[str, int] = {}
        locks: dict[str, str] = {}
        for tok in range(start, min(start + 5000, n + 1)):
            task = "X" if tok % 50 == 0 else f"task-{tok}"
            procs[str(tok)] = task
            if tok % 1000 == 0:
                counts[f"{wid}.{tok}"] = 5
            elif tok % 7 == 0:
                counts[f"{wid}.{tok}"] = 2
            if task != "X":
                locks[task] = f"{wid}.{tok}"
        pipe.hset(k.processes(wid), mapping=procs)  # type: ignore[arg-type]
        pipe.hset(k.deliveries, mapping=counts)  # type: ignore[arg-type]
        pipe.hset(k.locks, mapping=locks)  # type: ignore[arg-type]
    pipe.execute()
    return wid


def fill_dead(r: redis.Redis, keys: Keys, n: int) -> None:
    dead = keys.queue("jobs").dead
    r.delete(dead)
    for start in range(0, n, 10000):
        r.rpush(dead, *["Y" if i % 100 == 0 else f"dead-{i}" for i in range(start, start + 10000)])


class BeatWatch:
    """Completed heartbeats of a live worker, its reaps, and the round trips of a poller
    PINGing on another connection every 2 ms (how long any client waits on Redis)."""

    def __init__(self, w: Worqr, r: redis.Redis, keys: Keys) -> None:
        self.beats: list[float] = []
        self.pings: list[tuple[float, float]] = []  # (sent, round trip) of the poller
        self.reaps: list[tuple[float, float, int]] = []  # every supervision turn
        core = w._core
        beat, supervise = core.beat, core.supervise

        def timed_beat() -> Generator[Any, Any, bool]:
            won = yield from beat()
            self.beats.append(time.perf_counter())
            return won

        def timed_supervise() -> Generator[Any, Any, int]:
            t0 = time.perf_counter()
            back = yield from supervise()
            self.reaps.append((t0, time.perf_counter(), back))
            return back

        core.beat = timed_beat  # type: ignore[method-assign]
        core.supervise = timed_supervise  # type: ignore[method-assign]
        self.stop = threading.Event()
        w.start_worker()
        self.thread = threading.Thread(target=self._poll, args=(r,), daemon=True)
        self.thread.start()

    def _poll(self, r: redis.Redis) -> None:
        while not self.stop.is_set():
            t0 = time.perf_counter()
            r.ping()
            self.pings.append((t0, time.perf_counter() - t0))
            time.sleep(0.002)

    def gaps(self, since: float, until: float) -> tuple[float, int]:
        """The largest gap between completed beats from the last one before ``since`` to
        the first one after ``until``, and how many beats that spans."""
        before = [t for t in self.beats if t < since][-1:]
        after = [t for t in self.beats if t > until][:1]
        span = before + [t for t in self.beats if since <= t <= until] + after
        if len(span) < 2:
            return 0.0, len(span)
        return max(b - a for a, b in itertools.pairwise(span)), len(span)

    def worst_ping(self, since: float, until: float) -> float:
        return max((d for t, d in self.pings if since <= t <= until), default=0.0)


def timed(f: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = f()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    n = ap.parse_args().n
    with EmbeddedRedis() as server:
        r = redis.Redis.from_url(server.url)
        info = r.info("server")
        print(f"redis-server {info['redis_version']}, n={n}")
        r.config_set("slowlog-log-slower-than", 0)
        r.config_set("slowlog-max-len", 1_000_000)
        prefix = "chunks"
        keys = Keys(prefix)
        k = keys.queue("jobs")
        dead_id = build_dead_worker(r, keys, n)
        r.execute_command("SLOWLOG", "RESET")
        reclaimed: list[int] = []
        with Worqr(
            server.url, prefix=prefix, heartbeat_interval=INTERVAL, heartbeat_ttl=TTL
        ) as live:
            live.events.on("reclaimed", lambda wid, q, count: reclaimed.append(count))
            live.events.on("failed", lambda wid, why: print(f"the live worker failed: {why}"))
            watch = BeatWatch(live, r, keys)
            t0 = time.perf_counter()
            while r.sismember(keys.workers, dead_id):
                if time.perf_counter() - t0 > 120:
                    raise SystemExit("the dead worker was not reaped within 120 s")
                time.sleep(0.01)
            time.sleep(INTERVAL * 2)  # a beat after the reap, to close the last gap
            watch.stop.set()
            watch.thread.join()
            # the reap: from the first turn to the last that returned tasks (a reap of more
            # than REAP_STEPS_PER_TURN calls takes several turns)
            turns = [x for x in watch.reaps if x[2]]
            start, end = watch.reaps[0][0], turns[-1][1] if turns else time.perf_counter()
            back = sum(x[2] for x in turns)
            turns = [x for x in watch.reaps if x[0] <= end]
            report("reap (supervisor)", r, end - start)
            gap, beats = watch.gaps(start, end)
            print(
                f"{'':<24} {len(turns)} turns; returned {back} (events: {sum(reclaimed)}), "
                "dead-lettered "
                f"{r.llen(k.dead)}, queue {r.llen(k.tasks)}, qn {r.llen(k.returned)}; "
                f"supervisor's largest gap between beats {gap * 1000:.0f} ms over {beats} beats "
                f"(interval {INTERVAL * 1000:.0f} ms); a poller's largest PING round trip "
                f"{watch.worst_ping(start, end) * 1000:.1f} ms"
            )
            head = r.lrange(k.tasks, 0, 2)
            print(f"{'':<24} head of the queue: {[h.decode() for h in head]}")

            removed, wall = timed(lambda: live.cancel_tasks("jobs", "X"))
            report(f"cancel ({removed} copies)", r, wall)

            fill_dead(r, keys, n)
            r.execute_command("SLOWLOG", "RESET")
            dropped, wall = timed(lambda: live.purge_dead("jobs", "Y"))
            report(f"purge_dead(Y) ({dropped})", r, wall)
            r.rpush(k.dead, *["Z"] * 100)
            r.execute_command("SLOWLOG", "RESET")
            moved, wall = timed(lambda: live.requeue_dead("jobs", "Z"))
            report(f"requeue_dead(Z) ({moved})", r, wall)
            moved, wall = timed(lambda: live.requeue_dead("jobs"))
            report(f"requeue_dead() ({moved})", r, wall)

            locks = r.hlen(k.locks)
            length = r.llen(k.tasks)
            _, wall = timed(lambda: live.delete_queue("jobs"))
            report(f"delete ({length}, {locks} locks)", r, wall)

            fill_dead(r, keys, n)
            r.execute_command("SLOWLOG", "RESET")
            dropped, wall = timed(lambda: live.purge_dead("jobs"))
            report(f"purge_dead() ({dropped})", r, wall)


if __name__ == "__main__":
    main()
