"""Periodic tasks (``schedule(queue, task, every= | cron=)``): kept in Redis, fired by every
runner, each fire time enqueued EXACTLY ONCE however many workers fire, none skipped while a
runner lives (a missed one is enqueued late), including after the worker that fired last is
SIGKILLed. Fire times are pure functions of the server clock, tested with a fake clock; the
rest runs on real Redis. "Once each" is checked exactly: a schedule's fire times are
``since + k * every``, so its queue must hold exactly one task per k up to its last fire."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from worqr_py import Schedule, Worqr
from worqr_py.core.keys import Keys
from worqr_py.core.periodic import fire_times, next_fire, spec_json

from .support import running, wait_for
from .test_delayed import keys_of

SOON = 20  # seconds: a bound for a failure only


def ms(text: str) -> int:
    return round(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp() * 1000)


# -- the pure fire times (a fake clock: plain numbers) ------------------------------------


def test_every_fires_at_since_plus_k_periods_up_to_and_including_now() -> None:
    spec = {"every_ms": 500, "since": 1000}
    assert fire_times(spec, 1000, 1499) == []
    assert fire_times(spec, 1000, 1500) == [1500]
    assert fire_times(spec, 1000, 2600) == [1500, 2000, 2500]
    assert fire_times(spec, 2000, 2600) == [2500]
    assert fire_times(spec, 2500, 2600) == []
    assert fire_times(spec, 1000, 1_000_000, limit=3) == [999_000, 999_500, 1_000_000]
    assert next_fire(spec, 1000) == 1500 and next_fire(spec, 1500) == 2000
    assert next_fire(spec, 1499) == 1500 and next_fire(spec, 0) == 1500


def test_cron_fire_times_are_utc_and_inclusive_of_now() -> None:
    spec = {"cron": "*/5 * * * *", "since": ms("2026-01-01T00:00:30")}
    after = spec["since"]
    assert fire_times(spec, after, ms("2026-01-01T00:04:59.999")) == []
    assert fire_times(spec, after, ms("2026-01-01T00:05:00")) == [ms("2026-01-01T00:05:00")]
    got = fire_times(spec, after, ms("2026-01-01T00:17:00"))
    assert got == [ms(f"2026-01-01T00:{m}:00") for m in ("05", "10", "15")]
    assert fire_times(spec, ms("2026-01-01T00:10:00"), ms("2026-01-01T00:17:00")) == [
        ms("2026-01-01T00:15:00")
    ]
    many = fire_times(spec, after, ms("2026-01-02T00:00:00"), limit=2)
    assert many == [ms("2026-01-01T23:55:00"), ms("2026-01-02T00:00:00")]
    assert next_fire(spec, ms("2026-01-01T00:05:00")) == ms("2026-01-01T00:10:00")
    seconds = {"cron": "*/2 * * * * *", "since": 0}  # cronsim's optional seconds field
    assert fire_times(seconds, ms("2026-01-01T00:00:00"), ms("2026-01-01T00:00:05")) == [
        ms("2026-01-01T00:00:02"),
        ms("2026-01-01T00:00:04"),
    ]


@pytest.mark.parametrize(
    ("every", "cron", "error", "words"),
    [
        (None, None, ValueError, "every or cron"),
        (1, "* * * * *", ValueError, "every or cron"),
        (0, None, ValueError, "every"),
        (-1, None, ValueError, "every"),
        ("5", None, TypeError, "every"),
        (float("inf"), None, ValueError, "every"),
        (None, "not a cron", ValueError, "cron"),
        (None, "61 * * * *", ValueError, "cron"),
        (None, 5, TypeError, "cron"),
    ],
)
def test_bad_schedules_raise_naming_the_argument(
    every: Any, cron: Any, error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        spec_json("t", every, cron)


def test_every_accepts_a_timedelta_and_rounds_up_to_whole_ms() -> None:
    assert spec_json("t", timedelta(minutes=1), None) == '{"task":"t","every_ms":60000}'
    assert spec_json("t", 0.0001, None) == '{"task":"t","every_ms":1}'


# -- on real Redis -------------------------------------------------------------------------


def check_once_each(w: Any, queue: str, r: Any, prefix: str) -> Schedule:
    """The queue holds exactly one task per fire time since the schedule was set, up to its
    last fire: none twice, none skipped."""
    (s,) = w.get_schedules(queue)
    assert s.every is not None
    periods = round((round(s.last_fire * 1000) - round(s.since * 1000)) / round(s.every * 1000))
    assert s.fires == periods, s
    assert r.llen(Keys(prefix).queue(queue).tasks) == s.fires
    return s


def test_setting_the_same_schedule_again_changes_nothing(make: Any, r: Any, prefix: str) -> None:
    w = make()
    assert w.schedule("ticks", "t", every=60) is True
    (first,) = w.get_schedules("ticks")
    assert w.schedule("ticks", "t", every=60) is False  # every process may call it at start
    assert w.get_schedules("ticks") == [first]
    assert first.task == "t" and first.name == "t" and first.every == 60 and first.cron is None
    assert first.fires == 0 and first.last_fire is None and first.fired_by is None
    assert first.next_fire == pytest.approx(first.since + 60)
    assert w.schedule("ticks", "t", cron="0 * * * *") is True  # changed: replaced
    (changed,) = w.get_schedules("ticks")
    assert changed.cron == "0 * * * *" and changed.every is None
    assert w.schedule("ticks", "other", every=1, name="second") is True
    assert [s.name for s in w.get_schedules()] == ["second", "t"]
    assert w.unschedule("ticks", "t") is True and w.unschedule("ticks", "t") is False
    assert [s.name for s in w.get_schedules("ticks")] == ["second"]


def test_bad_input_writes_nothing(make: Any, r: Any, prefix: str) -> None:
    w = make()
    before = keys_of(r, prefix)
    for kw in (
        {},
        {"every": 0},
        {"every": 1e300},
        {"cron": "bad"},
        {"every": 1, "cron": "* * * * *"},
    ):
        with pytest.raises((TypeError, ValueError)):
            w.schedule("ticks", "t", **kw)
    with pytest.raises(ValueError, match="name"):
        w.schedule("ticks", "t", every=1, name="")
    with pytest.raises(ValueError, match="the task"):
        w.schedule("ticks", "", every=1)  # the empty task needs a name
    with pytest.raises(TypeError, match="task"):
        w.schedule("ticks", 5, every=1)
    assert keys_of(r, prefix) == before


def test_ten_racing_firers_enqueue_each_fire_time_exactly_once(
    server: Any, r: Any, prefix: str
) -> None:
    clients = [Worqr(server.url, prefix=prefix) for _ in range(10)]
    try:
        clients[0].schedule("ticks", "tick", every=0.05)
        stop = threading.Event()

        def fire(w: Worqr) -> None:
            while not stop.is_set():
                w._run(w._core.fire_schedules())

        threads = [threading.Thread(target=fire, args=(w,)) for w in clients]
        for t in threads:
            t.start()
        try:
            wait_for(lambda: clients[0].get_schedules()[0].fires >= 20, SOON, "20 fires")
        finally:
            stop.set()
            for t in threads:
                t.join(SOON)
        assert not any(t.is_alive() for t in threads)
        check_once_each(clients[0], "ticks", r, prefix)
    finally:
        for w in clients:
            w.close()


def test_idle_runners_fire_a_schedule_on_its_own_queue(make: Any, r: Any, prefix: str) -> None:
    w, producer = make(poll_interval=60), make()
    producer.schedule("ticks", "tick", every=0.2)
    seen: list[str] = []
    with running(w, "ticks", lambda p: seen.append(p.task)):
        wait_for(lambda: len(seen) >= 3, SOON, "three ticks handled")
    (s,) = producer.get_schedules("ticks")
    assert seen == ["tick"] * len(seen) and s.fires >= len(seen)
    assert s.fired_by is not None


def test_a_missed_fire_time_is_enqueued_late_not_skipped(server: Any, r: Any, prefix: str) -> None:
    w = Worqr(server.url, prefix=prefix)
    try:
        w.schedule("ticks", "tick", every=0.05)
        since = w.get_schedules("ticks")[0].since
        wait_for(lambda: w.server_time() >= since + 0.3, SOON, "six periods to pass")
        w._run(w._core.fire_schedules())  # the first firer after an outage: all, once each
        s = check_once_each(w, "ticks", r, prefix)
        assert s.fires >= 6
    finally:
        w.close()


def test_unschedule_and_delete_queue_stop_the_fires(server: Any, r: Any, prefix: str) -> None:
    w = Worqr(server.url, prefix=prefix)
    k = Keys(prefix).queue("ticks")
    try:
        w.schedule("ticks", "tick", every=0.02)
        w.schedule("ticks", "tock", every=0.02)
        assert w.unschedule("ticks", "tick")
        w.delete_queue("ticks")
        assert not r.exists(k.schedules, k.fired) and w.get_schedules("ticks") == []
        since = w.server_time()
        wait_for(lambda: w.server_time() >= since + 0.1, SOON, "fire times to pass")
        assert w._run(w._core.fire_schedules()) == float("inf")
        assert r.llen(k.tasks) == 0
    finally:
        w.close()


def spawn(server: Any, prefix: str) -> tuple[subprocess.Popen[str], str]:
    args = [sys.executable, "-m", "tests.periodic_agent", server.url, prefix, "own", "0.2", "1"]
    cwd = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, cwd=cwd)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def test_five_workers_fire_once_per_period_and_go_on_after_the_last_firer_is_killed(
    server: Any, r: Any, prefix: str
) -> None:
    w = Worqr(server.url, prefix=prefix)
    procs: list[subprocess.Popen[str]] = []
    try:
        by_id = {}
        for _ in range(5):
            proc, wid = spawn(server, prefix)
            procs.append(proc)
            by_id[wid] = proc
        assert all(by_id) and len(by_id) == 5
        w.schedule("ticks", "tick", every=0.25)
        first = wait_for(
            lambda: w.get_schedules("ticks")[0].fires >= 4 and w.get_schedules()[0], SOON
        )
        check_once_each(w, "ticks", r, prefix)
        victim = by_id[first.fired_by]
        victim.send_signal(signal.SIGKILL)
        victim.wait(SOON)
        killed_at = w.get_schedules("ticks")[0].fires
        later = wait_for(
            lambda: (s := w.get_schedules("ticks")[0]).fires >= killed_at + 4 and s, SOON
        )
        assert later.fired_by != first.fired_by and later.fired_by in by_id
        check_once_each(w, "ticks", r, prefix)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        w.close()


def test_a_schedule_this_version_cannot_read_is_skipped_and_the_others_fire(
    make: Any, r: Any, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A spec another version wrote that this one cannot evaluate (here: a cron syntax
    cronsim rejects) is left out, named, and logged once; every other schedule still fires."""
    w, producer = make(poll_interval=60), make()
    producer.schedule("ticks", "tick", every=0.1)
    producer.schedule("other", "x", every=60)
    k = Keys(prefix).queue("other")
    r.hset(k.schedules, "x", '{"task":"x","cron":"not a cron"}')
    assert [s.name for s in producer.get_schedules()] == ["tick"]
    assert producer._core.broken_schedules == ("other/x",)
    seen: list[str] = []
    with (
        caplog.at_level("ERROR", logger="worqr_py.runtime"),
        running(w, "ticks", lambda p: seen.append(p.task)),
    ):
        wait_for(lambda: len(seen) >= 3, SOON, "ticks despite the broken schedule")
    assert sum("other/x" in m for m in caplog.messages) == 1


def test_the_last_unschedule_and_delete_queue_unlist_the_queue(
    server: Any, r: Any, prefix: str
) -> None:
    w = Worqr(server.url, prefix=prefix)
    registry = Keys(prefix).schedules
    try:
        w.schedule("a", "t1", every=60)
        w.schedule("a", "t2", every=60)
        w.schedule("b", "t", every=60)
        assert w.unschedule("a", "t1") and r.sismember(registry, "a")  # one left
        assert w.unschedule("a", "t2") and not r.sismember(registry, "a")
        w.delete_queue("b")
        assert not r.exists(registry)
        w.schedule("a", "t1", every=60)  # listed again
        assert r.sismember(registry, "a") and r.scard(registry) == 1
    finally:
        w.close()
