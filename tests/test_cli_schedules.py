"""``worqr schedules`` (list / add / remove) and ``worqr worker --retries/--backoff``: the
rendering (pure), then the commands run as a user runs them (a subprocess) on a real
redis-server, with worker handlers from a module written to the test's tmp_path."""

from __future__ import annotations

import os
import re
import signal
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from worqr_py import Schedule, Worqr
from worqr_py.tools.views import schedule_line
from worqr_py.tools.when import exact_duration, parse_duration

from .support import wait_for
from .test_cli import cli_worker, ok, worqr
from .test_cli_delayed import ISO, server_time

LINE = re.compile(
    rf"(.+?)  (.+?)(?:  task (.*?))?  (every \S+|cron '[^']*' \(UTC\))  fires (\d+)  "
    rf"last (never|{ISO})(?: by (\w+))?  next ({ISO}) (in|overdue) (\S+)"
)
HANDLER = """
import os, time
import redis

def handle(p):
    r = redis.Redis.from_url(os.environ["TEST_LEDGER_URL"])
    r.rpush(os.environ["TEST_LEDGER"] + ":" + p.task, repr(time.time()))
    if p.task.startswith("bad"):
        raise RuntimeError("cannot do " + p.task)
"""


def test_exact_duration_reads_back_as_the_same_ms() -> None:
    cases = {0.001: "1ms", 0.5: "500ms", 1.5: "1s500ms", 30: "30s", 90: "1m30s", 3725: "1h2m5s"}
    for seconds, text in {**cases, 86400: "1d", 90061.001: "1d1h1m1s1ms"}.items():
        assert exact_duration(seconds) == text
        assert parse_duration(text) == pytest.approx(seconds)


def test_schedule_line_shows_every_field() -> None:
    at = datetime.fromisoformat("2026-11-24T03:10:05.250+00:00").timestamp()
    full = Schedule("jobs", "tick", "do it", 90.0, None, at - 900, at, at + 90, 7, "w1")
    assert schedule_line(full, at + 77.5) == (
        "jobs  tick  task do it  every 1m30s  fires 7  last 2026-11-24T03:10:05.250+00:00 "
        "by w1  next 2026-11-24T03:11:35.250+00:00 in 12.5s"
    )
    fresh = Schedule("q", "nightly", "nightly", None, "0 3 * * *", at, None, at + 60, 0, None)
    assert schedule_line(fresh, at + 61) == (
        "q  nightly  cron '0 3 * * *' (UTC)  fires 0  last never  "
        "next 2026-11-24T03:11:05.250+00:00 overdue 1s"
    )
    odd = Schedule("q", "a\nb", "", 0.25, None, at, None, at + 0.25, 0, None)
    assert schedule_line(odd, at).startswith("q  'a\\nb'  task ''  every 250ms  fires 0  ")


def listing(server: Any, prefix: str, *args: str) -> list[tuple[str | None, ...]]:
    """``worqr schedules [args]`` parsed by LINE, one tuple per line."""
    lines = ok(worqr(server, prefix, "schedules", *args)).splitlines()
    found = [LINE.fullmatch(x) for x in lines]
    assert all(found), lines
    return [m.groups() for m in found if m]


def sched(server: Any, prefix: str, *args: str) -> str:
    """``worqr schedules ARGS``'s output, once it exited 0."""
    return ok(worqr(server, prefix, "schedules", *args))


def test_add_list_change_and_remove_schedules(server: Any, prefix: str) -> None:
    assert sched(server, prefix) == ""  # none: nothing, as queues, tasks and dead print
    before = server_time(server)
    assert sched(server, prefix, "add", "jobs", "tick", "--every", "30s") == "set\n"
    assert sched(server, prefix, "add", "jobs", "tick", "--every", "30") == "unchanged\n"
    cron = ("add", "mail", "send digest", "--cron", "*/5 * * * *", "--name", "digest")
    assert sched(server, prefix, *cron) == "set\n"
    assert sched(server, prefix, *cron) == "unchanged\n"
    after = server_time(server)
    (tick, digest) = listing(server, prefix)  # by queue, then name
    cron_line = ("mail", "digest", "send digest", "cron '*/5 * * * *' (UTC)", "0", "never", None)
    assert digest[:7] == cron_line
    assert tick[:7] == ("jobs", "tick", None, "every 30s", "0", "never", None)
    due = datetime.fromisoformat(str(tick[7])).timestamp()
    assert before + 30 - 0.01 <= due <= after + 30 + 0.01 and tick[8] == "in"
    assert 0 < parse_duration(str(tick[9])) <= 30
    cron_due = datetime.fromisoformat(str(digest[7]))
    assert cron_due.minute % 5 == 0 and cron_due.second == 0 and digest[8] == "in"
    assert [row[0] for row in listing(server, prefix, "--queue", "jobs")] == ["jobs"]
    assert listing(server, prefix, "-q", "none") == []
    assert sched(server, prefix, "add", "jobs", "tick", "--every", "1h30m") == "set\n"
    assert listing(server, prefix, "-q", "jobs")[0][3] == "every 1h30m"
    assert sched(server, prefix, "add", "jobs", "tick", "--cron", "0 3 * * *") == "set\n"
    assert listing(server, prefix, "-q", "jobs")[0][3] == "cron '0 3 * * *' (UTC)"
    assert sched(server, prefix, "remove", "jobs", "tick") == "removed\n"
    assert sched(server, prefix, "remove", "jobs", "tick") == "no such schedule\n"  # exit 0
    assert sched(server, prefix, "remove", "mail", "send digest") == "no such schedule\n"
    assert [row[1] for row in listing(server, prefix)] == ["digest"]
    with Worqr(server.url, prefix=prefix) as w:  # what the library sees
        (s,) = w.get_schedules()
        assert (s.queue, s.name, s.task, s.cron, s.every) == (
            "mail", "digest", "send digest", "*/5 * * * *", None,
        )  # fmt: skip


def test_a_queue_called_add_is_listed_with_the_option(server: Any, prefix: str) -> None:
    assert sched(server, prefix, "add", "add", "t", "--every", "1m") == "set\n"
    assert [row[:2] for row in listing(server, prefix, "-q", "add")] == [("add", "t")]
    done = worqr(server, prefix, "schedules", "-q", "add", "remove", "add", "t")
    assert done.returncode == 2 and "--queue only chooses what to list" in done.stderr
    assert sched(server, prefix, "remove", "add", "t") == "removed\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("add", "jobs", "t"), "give --every or --cron (exactly one)"),
        (("add", "jobs", "t", "--every", "1s", "--cron", "* * * * *"), "exactly one"),
        (("add", "jobs", "t", "--cron", "61 * * * *"), "Invalid value for '--cron': cron '61"),
        (("add", "jobs", "t", "--cron", ""), "Invalid value for '--cron'"),
        (("add", "jobs", "t", "--every", "5x"), "Invalid value for '--every': not a duration"),
        (("add", "jobs", "t", "--every", "0"), "Invalid value for '--every': every must be"),
        (("add", "jobs", "t", "--every", "1s", "--name", ""), "Invalid value for '--name'"),
        (("add", "", "t", "--every", "1s"), "Invalid value for 'QUEUE'"),
        (("add", "jobs", "", "--every", "1s"), "Invalid value for 'TASK'"),
        (("remove", "jobs", ""), "Invalid value for 'NAME'"),
        (("add", "jobs", "t", "--every", "1e300"), "Invalid value for '--every'"),
        (("-q", ""), "Invalid value for '--queue' / '-q': a queue name must not be empty"),
        (("-q", "jobs", "add", "jobs", "t", "--every", "1s"), "--queue only chooses"),
    ],
)
def test_bad_schedule_options_exit_2_and_write_nothing(
    server: Any, r: Any, prefix: str, args: tuple[str, ...], message: str
) -> None:
    done = worqr(server, prefix, "schedules", *args)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert message in done.stderr, done.stderr
    assert r.keys(f"*{prefix}*") == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--backoff", "1,5"), "--backoff needs --retries"),
        (("--retries", "2", "--backoff", "1,x"), "Invalid value for '--backoff': not a duration"),
        (("--retries", "2", "--backoff", "1,0s"), "Invalid value for '--backoff': each duration"),
        (("--retries", "2", "--backoff", ""), "Invalid value for '--backoff'"),
        (("--retries", "-1"), "Invalid value for '--retries'"),
        (("--retries", "x"), "Invalid value for '--retries'"),
    ],
)
def test_bad_retry_options_exit_2_before_the_worker_starts(
    server: Any, r: Any, prefix: str, args: tuple[str, ...], message: str
) -> None:
    done = worqr(server, prefix, "worker", "tests.handlers:record", "-q", "jobs", *args)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert message in done.stderr, done.stderr
    assert r.keys(f"*{prefix}*") == []  # no worker registered


def handler_env(tmp_path: Path, url: str, ledger: str) -> dict[str, str]:
    """The env of a worker running ``sched_handler:handle`` (written to ``tmp_path``)."""
    (tmp_path / "sched_handler.py").write_text(HANDLER)
    path = os.pathsep.join(x for x in (str(tmp_path), os.environ.get("PYTHONPATH")) if x)
    return {"PYTHONPATH": path, "TEST_LEDGER_URL": url, "TEST_LEDGER": ledger}


def stop(proc: Any) -> str:
    """SIGTERM the worker; its stderr once it exited 0."""
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    return str(err)


def test_worker_retries_with_the_given_backoff_then_dead_letters(
    server: Any, r: Any, tmp_path: Path, prefix: str
) -> None:
    ledger = f"{prefix}-ledger"
    env = handler_env(tmp_path, server.url, ledger)
    ok(worqr(server, prefix, "enqueue", "jobs", "bad-1", "fine"))
    extra = ("--retries", "2", "--backoff", "300ms,0.6")
    proc = cli_worker(server.url, prefix, "sched_handler:handle", *extra, env=env)
    try:
        with Worqr(server.url, prefix=prefix) as w:
            wait_for(lambda: w.get_dead("jobs"), timeout=30, what="bad-1 dead-lettered")
            (dead,) = w.get_dead("jobs")
        err = stop(proc)
    finally:
        proc.kill()
    tries = [float(x) for x in r.lrange(f"{ledger}:bad-1", 0, -1)]
    assert len(tries) == 3  # the first try and 2 retries
    assert tries[1] - tries[0] >= 0.25 and tries[2] - tries[1] >= 0.55, tries  # the backoff
    assert (dead.task, dead.error_type, dead.error_message, dead.deliveries) == (
        "bad-1", "RuntimeError", "cannot do bad-1", 3,
    )  # fmt: skip
    assert r.llen(f"{ledger}:fine") == 1
    assert "retries 2 (backoff 300ms, 600ms)" in err, err
    assert "WARNING" not in err, err  # --max-deliveries 5 is above 2 + 1
    assert "bad-1  RuntimeError: cannot do bad-1  (3 deliveries" in ok(
        worqr(server, prefix, "dead", "jobs")
    )


def test_a_worker_fires_a_cli_schedule_and_retries_exponentially(
    server: Any, r: Any, tmp_path: Path, prefix: str
) -> None:
    ledger = f"{prefix}-ledger"
    env = handler_env(tmp_path, server.url, ledger)
    sched(server, prefix, "add", "jobs", "tick", "--every", "200ms")
    ok(worqr(server, prefix, "enqueue", "jobs", "bad-2"))
    proc = cli_worker(server.url, prefix, "sched_handler:handle", "--retries", "1", env=env)
    try:
        wait_for(lambda: r.llen(f"{ledger}:tick") >= 2, timeout=30, what="tick fired twice")
        with Worqr(server.url, prefix=prefix) as w:
            wait_for(lambda: w.get_dead("jobs"), timeout=30, what="bad-2 dead-lettered")
            (worker_id,) = w.get_workers()
        (row,) = listing(server, prefix)
        err = stop(proc)
    finally:
        proc.kill()
    assert row[:4] == ("jobs", "tick", None, "every 200ms")
    assert int(str(row[4])) >= 2 and re.fullmatch(ISO, str(row[5])) and row[6] == worker_id
    assert datetime.fromisoformat(str(row[7])) > datetime.fromisoformat(str(row[5]))
    tries = [float(x) for x in r.lrange(f"{ledger}:bad-2", 0, -1)]
    assert len(tries) == 2 and tries[1] - tries[0] >= 0.45, tries  # 1s, equal jitter: >= 0.5s
    assert "retries 1 (backoff exponential)" in err, err
