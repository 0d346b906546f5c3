"""Server-side counters for the benchmark: commands and round trips per task.

Method (the same for the ceiling loops and for every peer):

* **commands/task** = delta(sum of ``calls`` over all ``cmdstat_*`` lines of
  ``INFO commandstats``) / tasks.  It counts every command the server ran, including
  the ones run *inside* a Lua script (EVALSHA counts 1, each ``redis.call`` inside it
  counts 1 more) and MULTI/EXEC themselves.  ``total_commands_per_task`` is the same
  ratio from ``INFO stats total_commands_processed``, kept as a cross-check: on Redis
  7.0 it also counts the commands run inside scripts, so the two agree unless some
  command was rejected.
* **round trips/task** = delta(``INFO stats total_reads_processed``) / tasks.  The
  server bumps that counter once per read event on a client socket (one
  ``readQueryFromClient`` call).  A client that sends one command and waits for the
  reply costs 1 read; a pipeline or MULTI..EXEC written in one go costs 1 read for all
  its commands; a blocking command (BRPOP, BLMOVE, XREADGROUP BLOCK) costs 1 read
  however long it blocks.  So it counts client->server round trips of *all* clients,
  workers' background traffic (heartbeats, polls, scheduler ticks) included.  Caveats:
  a request larger than the 16 KiB read buffer, or one split over several TCP segments,
  costs more than one read; a closed connection costs one read (the EOF).  On loopback
  with small jobs both are rare; the ceiling rows (PING = 1.0, pipelined LPUSH x50 =
  0.02) check the method.
* **Redis CPU/task** = delta(``INFO cpu`` used_cpu_sys + used_cpu_user) / tasks: all of
  the server's CPU time in the window (its own timers included), in microseconds.
* The snapshots are taken by one extra connection of ours with one ``INFO`` each; the
  cost of that connection between two snapshots is measured at start-up
  (:func:`calibrate`) and subtracted.  Nothing else of ours talks to Redis inside a
  measured window (completion is detected through a local stamp file, not Redis).
* The counters are server-wide: nothing else may use the server during a run.
"""

from __future__ import annotations

import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import redis

FORBIDDEN_PORT = 6379


def check_url(url: str) -> None:
    """Refuse the default port: the benchmark must run on a throwaway server."""
    port = urllib.parse.urlsplit(url).port or FORBIDDEN_PORT
    if port == FORBIDDEN_PORT:
        raise ValueError(f"refusing {url}: use a throwaway redis-server, not port 6379")


@dataclass(frozen=True)
class Snapshot:
    calls: dict[str, int]
    usec: int
    total_commands: int
    reads: int
    cpu: float
    t: float


@dataclass
class Delta:
    calls: dict[str, int]
    usec: int
    total_commands: int
    reads: int
    seconds: float
    cpu: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def per_task(self, tasks: int, top: int = 8) -> dict[str, Any]:
        """Figures per task for the JSON output (``None`` when no task was done)."""
        if tasks <= 0:
            return {
                "cmds_per_task": None,
                "total_commands_per_task": None,
                "round_trips_per_task": None,
                "redis_usec_per_task": None,
                "redis_cpu_us_per_task": None,
                "top_cmds_per_task": {},
            }
        ranked = sorted(self.calls.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
        return {
            "cmds_per_task": round(sum(self.calls.values()) / tasks, 3),
            "total_commands_per_task": round(self.total_commands / tasks, 3),
            "round_trips_per_task": round(self.reads / tasks, 3),
            "redis_usec_per_task": round(self.usec / tasks, 2),
            "redis_cpu_us_per_task": round(self.cpu * 1e6 / tasks, 2),
            "top_cmds_per_task": {k: round(v / tasks, 3) for k, v in ranked if v > 0},
        }


def snapshot(r: redis.Redis) -> Snapshot:
    """One ``INFO stats commandstats cpu`` (one command, one round trip; Redis >= 7)."""
    raw = r.execute_command("INFO", "stats", "commandstats", "cpu")  # type: ignore[no-untyped-call]
    if isinstance(raw, dict):  # a client that parses INFO itself
        raise TypeError("snapshot() needs raw_connection(): INFO must stay raw text")
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    calls: dict[str, int] = {}
    usec = total = reads = 0
    cpu = 0.0
    for line in text.splitlines():
        if line.startswith("cmdstat_"):
            name, _, fields = line[len("cmdstat_") :].partition(":")
            kv = dict(f.split("=", 1) for f in fields.split(","))
            calls[name] = int(kv["calls"])
            usec += int(kv["usec"])
        elif line.startswith("total_commands_processed:"):
            total = int(line.split(":", 1)[1])
        elif line.startswith("total_reads_processed:"):
            reads = int(line.split(":", 1)[1])
        elif line.startswith(("used_cpu_sys:", "used_cpu_user:")):
            cpu += float(line.split(":", 1)[1])
    return Snapshot(calls, usec, total, reads, cpu, time.perf_counter())


def raw_connection(url: str) -> redis.Redis:
    """A connection whose INFO replies stay raw text (no response callback)."""
    r = redis.Redis.from_url(url)
    r.set_response_callback("INFO", lambda resp, **_: resp)
    return r


@dataclass(frozen=True)
class Overhead:
    """What our own snapshot connection adds between two snapshots."""

    calls: dict[str, int]
    usec: int
    total_commands: int
    reads: int


def calibrate(r: redis.Redis, reps: int = 3) -> Overhead:
    """Delta of two back-to-back snapshots (the minimum over ``reps`` tries)."""
    best: Overhead | None = None
    for _ in range(reps):
        a = snapshot(r)
        b = snapshot(r)
        calls = {k: v - a.calls.get(k, 0) for k, v in b.calls.items() if v != a.calls.get(k, 0)}
        cand = Overhead(calls, 0, b.total_commands - a.total_commands, b.reads - a.reads)
        if best is None or (cand.reads, cand.total_commands) < (best.reads, best.total_commands):
            best = cand
    assert best is not None
    return best


def delta(a: Snapshot, b: Snapshot, own: Overhead) -> Delta:
    calls: dict[str, int] = {}
    for k, v in b.calls.items():
        d = v - a.calls.get(k, 0) - own.calls.get(k, 0)
        if d > 0:
            calls[k] = d
    return Delta(
        calls=calls,
        usec=max(0, b.usec - a.usec),
        total_commands=max(0, b.total_commands - a.total_commands - own.total_commands),
        reads=max(0, b.reads - a.reads - own.reads),
        seconds=b.t - a.t,
        cpu=max(0.0, b.cpu - a.cpu),
    )
