"""Periodic tasks: schedules kept in Redis (``every`` seconds or a ``cron`` expression), fired
by every runner and enqueued exactly once per fire time (periodic_fire.lua). Pure: the fire
times are computed here from the server clock (cron by ``cronsim``); no I/O.

A schedule's fire times are those after it was set (``since``): ``since + k * every`` for
k >= 1, or the cron expression's times (UTC, minute or second resolution). Each is enqueued
once, at the queue's TAIL, by whichever runner's call comes first; one a runner finds missed
(all runners were busy, stopped, or down) is enqueued late rather than skipped, at most
``CATCH_UP`` of them per schedule (the newest), so a long outage does not flood the queue.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from cronsim import CronSim, CronSimError

from . import scripts as S
from . import validate as v
from .base import CoreBase
from .calls import Op, command, hash_reply, script, texts, time_ms

CATCH_UP = 100  # missed fire times enqueued per schedule and fire call, the newest


@dataclass(frozen=True, slots=True)
class Schedule:
    """A periodic schedule: ``task`` enqueued to ``queue`` every ``every`` seconds or at the
    times of ``cron`` (UTC); ``name`` identifies it in its queue (default: the task). ``since``
    (when it was set), ``last_fire`` and ``next_fire`` are seconds since the epoch by the
    Redis server's clock; ``fires`` counts the tasks it enqueued, ``fired_by`` is the worker
    that enqueued the last one."""

    queue: str
    name: str
    task: str
    every: float | None
    cron: str | None
    since: float
    last_fire: float | None
    next_fire: float | None
    fires: int
    fired_by: str | None


def spec_json(task: str, every: Any, cron: Any) -> str:
    """The stored spec of a schedule, validated: exactly one of ``every`` (seconds or a
    timedelta, at least 1 ms) and ``cron`` (a cron expression cronsim accepts)."""
    if (every is None) == (cron is None):
        raise ValueError("give every or cron (exactly one)")
    if every is not None:
        if isinstance(every, timedelta):
            every = every.total_seconds()
        ms = math.ceil(v.seconds(every, "every") * 1000)
        return json.dumps({"task": task, "every_ms": ms}, separators=(",", ":"))
    if not isinstance(cron, str):
        raise TypeError(f"cron must be a str, not {type(cron).__name__}")
    try:
        CronSim(cron, datetime.now(timezone.utc))
    except CronSimError as exc:
        raise ValueError(f"cron {cron!r} is not a valid cron expression: {exc}") from None
    return json.dumps({"task": task, "cron": cron}, separators=(",", ":"))


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, timezone.utc)


def _ms(dt: datetime) -> int:
    return round(dt.timestamp() * 1000)


def fire_times(spec: dict[str, Any], after: int, now: int, limit: int = CATCH_UP) -> list[int]:
    """The fire times in (``after``, ``now``] (server ms), ascending: the newest ``limit``."""
    if now <= after:
        return []
    if "every_ms" in spec:
        every, since = int(spec["every_ms"]), int(spec["since"])
        first = max(1, (after - since) // every + 1)
        last = (now - since) // every
        return [since + k * every for k in range(max(first, last - limit + 1), last + 1)]
    out: list[int] = []
    # From the next whole second, backwards: cronsim yields the times strictly before a
    # whole-second start (the same in every version >= 2.7), so a fire time at now counts.
    start = _utc(now // 1000 * 1000 + 1000)
    for t in CronSim(spec["cron"], start, reverse=True):
        ms = _ms(t)
        if ms <= after or len(out) == limit:
            break
        if ms <= now:
            out.append(ms)
    return out[::-1]


def next_fire(spec: dict[str, Any], now: int) -> int:
    """The first fire time after ``now`` (server ms)."""
    if "every_ms" in spec:
        every, since = int(spec["every_ms"]), int(spec["since"])
        return since + (max(0, now - since) // every + 1) * every
    return _ms(next(CronSim(spec["cron"], _utc(now))))


def _state(raw: str) -> tuple[int, int, int, str]:
    since, last, fires, by = raw.split(":", 3)
    return int(since), int(last), int(fires), by


class PeriodicOps(CoreBase):
    """schedule, unschedule, get_schedules, and the runtime's fire_schedules."""

    broken_schedules: tuple[str, ...] = ()  # of the latest read: "queue/name" it could not read

    def schedule(
        self,
        queue: str,
        task: str,
        every: float | timedelta | None = None,
        cron: str | None = None,
        name: str | None = None,
    ) -> Op[bool]:
        """Enqueue ``task`` to ``queue`` every ``every`` seconds, or at the times of ``cron``
        (UTC), from now on: kept in Redis (periodic_set.lua, atomic), fired by every worker
        running ``run()``, once per fire time. ``name`` (default: the task) identifies the
        schedule in its queue: setting it again with the same spec changes nothing, with
        another spec replaces it. True if it was created or changed."""
        k = self._queue(queue)
        spec = spec_json(v.new_task(task), every, cron)
        key = v.name(
            task if name is None else name, "name" if name is not None else "name (the task)"
        )
        reply, _ = yield [
            script(S.PERIODIC_SET, [k.schedules, k.fired], [key, spec]),
            command("SADD", self.keys.schedules, queue),
        ]
        return int(reply[0]) == 1

    def unschedule(self, queue: str, name: str) -> Op[bool]:
        """Remove the queue's schedule ``name`` (unschedule.lua, atomic: no fire after it).
        True if it existed. Tasks it already enqueued stay. The queue's last schedule also
        unlists it from ``{P}:schedules`` (SREM, then a check that no schedule() came
        meanwhile, which lists it again: in every interleaving a queue with a schedule stays
        listed)."""
        k = self._queue(queue)
        args = [v.name(name, "name")]
        existed, left = yield script(S.UNSCHEDULE, [k.schedules, k.fired], args)
        if int(left) == 0:
            yield from self._unlist_schedules(queue)
        return int(existed) == 1

    def get_schedules(self, queue: str | None = None) -> Op[list[Schedule]]:
        """The periodic schedules (of ``queue``, or of every queue), sorted by queue and name:
        SMEMBERS of the registry, then one pipeline of HGETALLs and TIME. One this version
        cannot evaluate (say a cron syntax of a newer cronsim) is left out and named in
        ``broken_schedules``."""
        if queue is not None:
            queues = [v.name(queue, "queue")]
        else:
            queues = sorted(texts((yield command("SMEMBERS", self.keys.schedules))))
        _, table = yield from self._read(queues)
        out = []
        for q, name, spec, (since, last, fires, by), upcoming in table:
            out.append(
                Schedule(
                    q,
                    name,
                    spec["task"],
                    spec["every_ms"] / 1000 if "every_ms" in spec else None,
                    spec.get("cron"),
                    since / 1000,
                    last / 1000 if last else None,
                    upcoming / 1000,
                    fires,
                    by or None,
                )
            )
        return out

    def fire_schedules(self) -> Op[float]:
        """Enqueue every due fire time of every schedule, each exactly once whoever else
        calls this (periodic_fire.lua per due schedule, one pipeline). Returns the seconds
        until the next fire time (inf: no schedule). Three round trips when any is due."""
        queues = sorted(texts((yield command("SMEMBERS", self.keys.schedules))))
        now, table = yield from self._read(queues)
        calls, soonest = [], math.inf
        wid = self.worker.id or ""
        for q, name, spec, (_, last, _, _), upcoming in table:
            due = fire_times(spec, max(int(spec["since"]), last), now)
            if due:
                k = self.keys.queue(q)
                keys = [k.schedules, k.fired, k.tasks, k.idle, k.workers, *self._tally(k)]
                args = [name, spec["raw"], spec["task"], k.events, self._wakes(k), q, wid, *due]
                calls += [script(S.PERIODIC_FIRE, keys, args), command("SADD", self.keys.queues, q)]
            soonest = min(soonest, upcoming - now)
        if calls:
            yield calls
        return soonest / 1000

    def _read(
        self, queues: list[str]
    ) -> Op[tuple[int, list[tuple[str, str, dict[str, Any], tuple[int, int, int, str], int]]]]:
        """The server time (ms) and each schedule of ``queues``: (queue, name, spec with its
        "since" and "raw" JSON, (since, last fire, fires, fired by), its next fire time after
        now and after its last). One this version cannot evaluate is left out and named in
        ``broken_schedules`` ("queue/name")."""
        calls = [command("TIME")]
        for q in queues:
            k = self.keys.queue(q)
            calls += [command("HGETALL", k.schedules), command("HGETALL", k.fired)]
        replies = yield calls
        table, broken = [], []
        now = time_ms(replies[0])
        for i, q in enumerate(queues):
            specs, states = hash_reply(replies[1 + 2 * i]), hash_reply(replies[2 + 2 * i])
            for name in sorted(specs):
                if name not in states:
                    continue
                try:  # one this version cannot read (another's cron syntax) is skipped
                    state = _state(states[name])
                    spec = {**json.loads(specs[name]), "since": state[0], "raw": specs[name]}
                    if not isinstance(spec["task"], str):
                        raise TypeError("task")
                    upcoming = next_fire(spec, max(now, state[1]))  # none is at or before last
                except (ValueError, KeyError, TypeError, ZeroDivisionError, CronSimError):
                    broken.append(f"{q}/{name}")
                    continue
                table.append((q, name, spec, state, upcoming))
        self.broken_schedules = tuple(broken)
        return now, table
