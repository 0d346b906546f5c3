"""``worqr enqueue --in/--at`` and ``worqr tasks --delayed``: the parsing of durations and
times (pure), then the commands run as a user runs them (a subprocess) on a real redis-server."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from worqr_py import Worqr
from worqr_py.tools.when import (
    fmt_duration,
    instant_ms,
    iso_utc,
    parse_duration,
    parse_instant,
    until,
)

from .test_cli import ok, worqr

ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00"
LINE = re.compile(rf"({ISO})  (in|overdue) (\S+) +deliveries (\d+) +(.*)")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("30s", 30),
        ("5m", 300),
        ("2h", 7200),
        ("1d", 86400),
        ("1m30s", 90),
        ("1h 5m", 3900),
        ("1d2h3m4s5ms", 93784.005),
        ("1.5h", 5400),
        (".5s", 0.5),
        ("45", 45),
        ("2.5", 2.5),
        ("0", 0),
        ("0s", 0),
        (" 10S ", 10),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text", ["", "s", "5x", "5 minutes", "1m1m", "-5", "-5s", "inf", "nan", "1e400", "m30", "3s1"]
)
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_parse_instant_and_the_forms_due_times_are_shown_in() -> None:
    utc = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)
    assert parse_instant("2026-11-24T12:00:00+00:00") == utc
    assert parse_instant("2026-11-24T12:00:00Z") == utc
    assert parse_instant("2026-11-24T13:00:00+01:00") == utc
    naive = parse_instant("2026-11-24T12:00:00")  # local time
    assert naive.tzinfo is not None
    assert naive.timestamp() == datetime(2026, 11, 24, 12, 0).timestamp()
    with pytest.raises(ValueError, match="not an ISO 8601 time"):
        parse_instant("tomorrow")
    assert iso_utc(utc.timestamp() + 0.25) == "2026-11-24T12:00:00.250+00:00"
    assert [fmt_duration(s) for s in (0.25, 29.96, 90, 3600, 3725, 90061, 86400 * 3)] == [
        "250ms", "29.9s", "1m30s", "1h", "1h2m", "1d1h", "3d",
    ]  # fmt: skip
    assert parse_duration(fmt_duration(5400)) == 5400
    assert instant_ms(1_795_521_600_007) == utc.replace(microsecond=7000)
    assert until(100, 10) == "in 1m30s" and until(10, 12.5) == "overdue 2.5s"


def server_time(server: Any) -> float:
    sec, usec = server.client().time()
    return float(sec) + usec / 1e6


def delayed(server: Any, prefix: str, queue: str = "jobs") -> list[tuple[str, ...]]:
    """``worqr tasks QUEUE --delayed`` parsed: (iso due, in/overdue, how long, deliveries, task)."""
    lines = ok(worqr(server, prefix, "tasks", queue, "--delayed")).splitlines()
    found = [LINE.fullmatch(x) for x in lines]
    assert all(found), lines
    return [m.groups() for m in found if m]


def test_enqueue_in_delays_and_tasks_delayed_lists_them(server: Any, prefix: str) -> None:
    before = server_time(server)
    out = ok(worqr(server, prefix, "enqueue", "jobs", "a", "b", "--in", "1m30s"))
    after = server_time(server)
    m = re.fullmatch(rf"delayed 2 until ({ISO}); jobs has 2 delayed\n", out)
    assert m, out
    due = datetime.fromisoformat(m[1]).timestamp()
    assert before + 90 - 0.01 <= due <= after + 90 + 0.01
    assert ok(worqr(server, prefix, "tasks", "jobs")) == ""  # not queued yet
    out = ok(worqr(server, prefix, "enqueue", "jobs", "--in", "30s", stdin="c\n"))
    assert re.fullmatch(rf"delayed 1 until {ISO}; jobs has 3 delayed\n", out), out
    rows = delayed(server, prefix)
    assert [r[4] for r in rows] == ["c", "a", "b"]  # earliest first
    assert rows[1][0] == rows[2][0] == m[1]  # the due time the enqueue said, in UTC
    assert {r[1] for r in rows} == {"in"} and {r[3] for r in rows} == {"0"}
    assert 60 < parse_duration(rows[1][2]) <= 90 and 0 < parse_duration(rows[0][2]) <= 30
    assert ok(worqr(server, prefix, "queues")).split() == ["jobs"]


def test_enqueue_at_a_future_time_in_utc_local_or_another_offset(server: Any, prefix: str) -> None:
    soon = datetime.fromtimestamp(server_time(server) + 3600, timezone.utc).replace(microsecond=0)
    local = soon.astimezone().replace(tzinfo=None).isoformat()  # naive: local time
    plus2 = soon.astimezone(timezone(timedelta(hours=2))).isoformat()
    z = soon.strftime("%Y-%m-%dT%H:%M:%SZ")
    for n, (task, at) in enumerate([("z", z), ("local", local), ("plus2", plus2)], 1):
        out = ok(worqr(server, prefix, "enqueue", "jobs", task, "--at", at))
        assert out == f"delayed 1 until {iso_utc(soon.timestamp())}; jobs has {n} delayed\n"
    rows = delayed(server, prefix)
    assert {r[0] for r in rows} == {iso_utc(soon.timestamp())} and len(rows) == 3
    odd = (soon + timedelta(microseconds=400)).isoformat()  # stored rounded up to the ms
    out = ok(worqr(server, prefix, "enqueue", "jobs", "odd", "--at", odd))
    due = iso_utc(soon.timestamp() + 0.001)
    assert out == f"delayed 1 until {due}; jobs has 4 delayed\n"
    assert delayed(server, prefix)[-1][0::4] == (due, "odd")


def test_enqueue_at_a_past_time_queues_at_once(server: Any, prefix: str) -> None:
    ok(worqr(server, prefix, "enqueue", "jobs", "first"))
    out = ok(worqr(server, prefix, "enqueue", "jobs", "late", "--at", "2000-01-01T00:00:00Z"))
    assert out == "enqueued 1 at once (due now); jobs has 2\n"
    out = ok(worqr(server, prefix, "enqueue", "jobs", "now", "--in", "0s"))
    assert out == "enqueued 1 at once (due now); jobs has 3\n"
    assert ok(worqr(server, prefix, "tasks", "jobs")).split() == ["first", "late", "now"]
    assert ok(worqr(server, prefix, "tasks", "jobs", "--delayed")) == ""


def test_tasks_delayed_shows_deliveries_escapes_and_overdue_tasks(server: Any, prefix: str) -> None:
    with Worqr(server.url, prefix=prefix, heartbeat_interval=0.2, heartbeat_ttl=5) as w:
        w.enqueue("jobs", "tried")
        w.start_worker()
        w.start_work("jobs")
        p = w.dequeue("jobs")
        assert p is not None and w.stop_process(p.id, delay=600)
        w.stop_work("jobs")
    with Worqr(server.url, prefix=prefix) as producer:  # no worker: nothing promotes "soon"
        producer.enqueue("other", ["line\none", ""], delay=300)
        producer.enqueue("other", "soon", delay=0.05)
    rows = delayed(server, prefix)
    assert [(r[1], r[3], r[4]) for r in rows] == [("in", "1", "tried")]  # a delivery so far
    assert 500 < parse_duration(rows[0][2]) <= 600
    time.sleep(0.3)  # "soon" is due: it shows as overdue, first
    rows = delayed(server, prefix, "other")
    assert [(r[1], r[3], r[4]) for r in rows] == [
        ("overdue", "0", "soon"), ("in", "0", "'line\\none'"), ("in", "0", "''"),
    ]  # fmt: skip


def test_inspect_shows_each_queues_delayed_count(server: Any, prefix: str) -> None:
    ok(worqr(server, prefix, "enqueue", "jobs", "now"))
    ok(worqr(server, prefix, "enqueue", "jobs", "a", "b", "--in", "1h"))
    ok(worqr(server, prefix, "enqueue", "later", "x", "--in", "5m"))
    out = ok(worqr(server, prefix, "inspect"))
    assert re.search(r"queue\s+┃\s+queued\s+┃\s+delayed\s+┃\s+workers", out), out
    assert re.search(r"jobs\s+│\s+1\s+│\s+2\s+│\s+0", out), out
    assert re.search(r"later\s+│\s+0\s+│\s+1\s+│\s+0", out), out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--in", "30s", "--at", "2030-01-01T00:00:00Z"), "give --in or --at, not both"),
        (("--in", "5x"), "Invalid value for '--in': not a duration: '5x'"),
        (("--in", "-5s"), "Invalid value for '--in'"),
        (("--in", "1e300"), "Invalid value for '--in'"),
        (("--at", "tomorrow"), "Invalid value for '--at': not an ISO 8601 time"),
    ],
)
def test_bad_in_or_at_is_a_usage_error_and_queues_nothing(
    server: Any, prefix: str, args: tuple[str, ...], message: str
) -> None:
    done = worqr(server, prefix, "enqueue", "jobs", "t", *args)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert message in done.stderr, done.stderr
    assert ok(worqr(server, prefix, "queues")) == ""
