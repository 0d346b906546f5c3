"""``worqr job ID`` and ``worqr jobs QUEUE``: the rendering (pure), then the commands run as a
user runs them (a subprocess) on a real redis-server, with jobs submitted by the library and
moved by hand (a worker that dequeues, finishes, fails, dead-letters)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict
from datetime import datetime
from typing import Any

import pytest

from worqr_py import JobFailed, Worqr
from worqr_py.core.jobs import JobError, JobInfo
from worqr_py.tools.cli_jobs import LIST_CALL_CHARS, call_text, cut, job_line, job_lines
from worqr_py.tools.when import parse_duration

from .test_cli import ROOT, ok, worqr
from .test_cli_delayed import ISO

AT = datetime.fromisoformat("2026-11-24T03:10:05.250+00:00").timestamp()
LINE = re.compile(r"(\S+) +(\w+) +attempts (\d+) +(ended|started|enqueued) (\S+) ago +(.*)")


def info(**fields: Any) -> JobInfo:
    """A JobInfo: a finished ``add(1, 2, z='x')`` on "q" unless ``fields`` say otherwise."""
    base: dict[str, Any] = {
        "id": "q@k",
        "queue": "q",
        "status": "finished",
        "function": "add",
        "args": [1, 2],
        "kwargs": {"z": "x"},
        "attempts": 1,
        "worker": "w1",
        "enqueued_at": AT,
        "started_at": AT + 1.5,
        "ended_at": AT + 91.5,
        "result": {"sum": 3},
        "error": None,
        "expires_at": AT + 3691.5,
        "options": {},
    }
    return JobInfo(**{**base, **fields})


def test_call_text_is_one_python_line_cut_to_its_limit() -> None:
    assert call_text(info()) == "add(1, 2, z='x')"
    assert call_text(info(args=[], kwargs={})) == "add()"
    assert call_text(info(args=["a\nb", [1, None]], kwargs={})) == "add('a\\nb', [1, None])"
    assert call_text(info(function="odd\nname", args=[], kwargs={})) == "'odd\\nname'()"
    long = call_text(info(args=["x" * 1000]), 40)
    assert len(long) == 40 and long == "add('" + "x" * 31 + "...)"
    assert cut("abc", 3) == "abc" and cut("abcd", 3) == "..."


def test_job_lines_of_a_finished_job() -> None:
    assert job_lines(info(), AT + 100) == [
        "id        q@k",
        "status    finished",
        "call      add(1, 2, z='x')",
        "attempts  1",
        "worker    w1",
        "enqueued  2026-11-24T03:10:05.250+00:00  (1m40s ago)",
        "started   2026-11-24T03:10:06.750+00:00  (waited 1.5s)",
        "ended     2026-11-24T03:11:36.750+00:00  (ran 1m30s)",
        "result    {'sum': 3}",
        "expires   2026-11-24T04:11:36.750+00:00  (in 59m51s)",
    ]


def test_job_lines_of_a_failed_job_with_and_without_its_traceback() -> None:
    error = JobError("ValueError", "bad\nworse", "Traceback (most recent call last):\nValueError\n")
    failed = info(status="failed", result=None, error=error, options={"timeout": 5.0})
    lines = job_lines(failed, AT + 100)
    assert lines[-4:] == [
        "error     ValueError: bad\\nworse",
        'options   {"timeout": 5.0}',
        "expires   2026-11-24T04:11:36.750+00:00  (in 59m51s)",
        "(--traceback shows the traceback)",
    ]
    assert not any(x.startswith("result") for x in lines)
    full = job_lines(failed, AT + 100, traceback=True)
    assert full[-3:] == ["traceback", "Traceback (most recent call last):", "ValueError"]
    bare = info(status="dead", result=None, error=JobError("", "gave up"), expires_at=None)
    assert job_lines(bare, AT + 100, traceback=True)[-3:] == [
        "error     gave up",
        "expires   never (kept until its queue is deleted)",
        "traceback (none recorded)",
    ]


def test_job_lines_of_a_waiting_job_show_no_end() -> None:
    queued = info(
        status="queued",
        attempts=0,
        worker=None,
        started_at=None,
        ended_at=None,
        result=None,
        expires_at=None,
    )
    assert job_lines(queued, AT + 0.25)[3:] == [
        "attempts  0",
        "worker    -",
        "enqueued  2026-11-24T03:10:05.250+00:00  (250ms ago)",
        "started   -",
    ]
    retrying = info(status="queued", error=JobError("E", "m"), expires_at=None)
    assert job_lines(retrying, AT + 100)[-1] == "last error E: m"  # not ended: no "ended"
    assert not any(x.startswith("ended") for x in job_lines(retrying, AT + 100))


def test_job_line_shows_the_latest_event() -> None:
    assert job_line(info(), AT + 100, 5) == (
        "q@k    finished   attempts 1   ended 8.5s ago       add(1, 2, z='x')"
    )
    started = info(status="started", ended_at=None, args=["y" * 500])
    line = job_line(started, AT + 2)
    assert "  started 500ms ago  " in line and len(line.split("  ")[-1]) == LIST_CALL_CHARS
    queued = info(status="scheduled", started_at=None, ended_at=None, attempts=0)
    assert "attempts 0   enqueued 1m ago " in job_line(queued, AT + 60)


def take(w: Worqr, queue: str) -> str:
    """The id of the process of the next task ``w``'s worker dequeues from ``queue``."""
    p = w.dequeue(queue)
    assert p is not None
    return p.id


@pytest.fixture
def made(server: Any, prefix: str) -> Iterator[dict[str, str]]:
    """Jobs of "jobs", oldest first: ``queued``, ``scheduled`` (in 1h), ``started`` (held by
    a live worker), ``finished`` (result {"sum": 3}), ``failed`` (ValueError: bad) and
    ``dead`` (dead-lettered: "gave up"), each made so; their ids by status. The worker lives
    until the test ends."""
    with Worqr(server.url, prefix=prefix, heartbeat_interval=0.2, heartbeat_ttl=30) as w:
        ids: dict[str, str] = {}
        for name, fn, args in (
            ("finished", "add", (1, 2)),
            ("failed", "div", (1, 0)),
            ("dead", "mail", ("a@b",)),
            ("started", "slow", ()),
            ("queued", "later", ()),
        ):
            ids[name] = w.submit("jobs", fn, *args, job_id=name).id
            time.sleep(0.005)  # distinct enqueue times (ms): a definite newest-first order
        ids["scheduled"] = w.submit("jobs", "tick", n=1, job_id="sch", delay=3600).id
        w.start_worker()
        w.start_work("jobs")
        core = w._core
        pid = take(w, "jobs")
        w._run(core.finish_processes([pid], None, {pid: core.finished({"sum": 3})}))
        pid = take(w, "jobs")
        w._run(core.finish_processes([pid], None, {pid: core.failed(ValueError("bad"))}))
        assert w.dead_letter_process(take(w, "jobs"), error="gave up") is True
        take(w, "jobs")
        assert {k: getattr(w.get_job(v), "status", None) for k, v in ids.items()} == {
            k: k for k in ids
        }
        yield ids


def listed(server: Any, prefix: str, *args: str) -> list[tuple[str, ...]]:
    """``worqr jobs ARGS`` parsed by LINE: (id, status, attempts, event, age, call)."""
    lines = ok(worqr(server, prefix, "jobs", *args)).splitlines()
    found = [LINE.fullmatch(x) for x in lines]
    assert all(found), lines
    return [m.groups() for m in found if m]


def test_jobs_lists_newest_first_and_filters(
    server: Any, prefix: str, made: dict[str, str]
) -> None:
    rows = listed(server, prefix, "jobs")
    assert [(r[0], r[1], r[2], r[3], r[5]) for r in rows] == [
        ("jobs@sch", "scheduled", "0", "enqueued", "tick(n=1)"),
        ("jobs@queued", "queued", "0", "enqueued", "later()"),
        ("jobs@started", "started", "1", "started", "slow()"),
        ("jobs@dead", "dead", "1", "ended", "mail('a@b')"),
        ("jobs@failed", "failed", "1", "ended", "div(1, 0)"),
        ("jobs@finished", "finished", "1", "ended", "add(1, 2)"),
    ]
    assert all(0 <= parse_duration(r[4]) < 60 for r in rows)
    for status in ("failed", "scheduled"):
        assert [r[0] for r in listed(server, prefix, "jobs", "--status", status)] == [made[status]]
    done = worqr(server, prefix, "jobs", "jobs", "-s", "cancelled")
    assert (done.returncode, done.stdout, done.stderr) == (
        0, "", "no jobs with status cancelled on jobs\n",
    )  # fmt: skip
    empty = worqr(server, prefix, "jobs", "other")
    assert (empty.returncode, empty.stdout, empty.stderr) == (0, "", "no jobs on other\n")
    some = worqr(server, prefix, "jobs", "jobs", "--limit", "2")
    assert len(ok(some).splitlines()) == 2 and "--limit 2 reached" in some.stderr
    bad = worqr(server, prefix, "jobs", "jobs", "--status", "done")
    assert bad.returncode == 2 and "'done' is not one of 'scheduled'" in bad.stderr
    assert worqr(server, prefix, "jobs", "jobs", "--limit", "0").returncode == 2


def test_job_shows_one_job(server: Any, prefix: str, made: dict[str, str]) -> None:
    fields = {}
    for line in ok(worqr(server, prefix, "job", made["finished"])).splitlines():
        name, _, value = line.partition("  ")
        fields[name] = value.strip()
    assert list(fields) == [
        "id", "status", "call", "attempts", "worker", "enqueued", "started", "ended", "result",
        "expires",
    ]  # fmt: skip
    assert fields["call"] == "add(1, 2)" and fields["result"] == "{'sum': 3}"
    assert re.fullmatch(rf"{ISO}  \(\S+ ago\)", fields["enqueued"])
    assert re.fullmatch(rf"{ISO}  \(waited \S+\)", fields["started"])
    assert re.fullmatch(rf"{ISO}  \(ran \S+\)", fields["ended"])
    assert re.fullmatch(rf"{ISO}  \(in 59m\d+s\)", fields["expires"])  # result TTL: 1h
    failed = ok(worqr(server, prefix, "job", made["failed"])).splitlines()
    assert "error     ValueError: bad" in failed and not any(x.startswith("result") for x in failed)
    waiting = ok(worqr(server, prefix, "job", made["scheduled"])).splitlines()
    assert waiting[1:5] == [
        "status    scheduled",
        "call      tick(n=1)",
        "attempts  0",
        "worker    -",
    ]
    assert waiting[-1] == "started   -"


def test_job_json_is_the_record(server: Any, prefix: str, made: dict[str, str]) -> None:
    with Worqr(server.url, prefix=prefix) as w:
        for status in ("failed", "finished", "queued"):
            out = json.loads(ok(worqr(server, prefix, "job", made[status], "--json")))
            record = w.get_job(made[status])
            assert record is not None and out == json.loads(json.dumps(asdict(record)))
    assert out["status"] == "queued" and out["function"] == "later"
    failed = json.loads(ok(worqr(server, prefix, "job", made["failed"], "--json")))
    assert failed["error"]["type"] == "ValueError" and failed["error"]["message"] == "bad"


def test_job_traceback(server: Any, prefix: str) -> None:
    with Worqr(server.url, prefix=prefix, heartbeat_interval=0.2, heartbeat_ttl=30) as w:
        w.submit("other", "boom", job_id="tb")
        w.start_worker()
        w.start_work("other")
        pid = take(w, "other")
        try:
            raise KeyError("missing")
        except KeyError as exc:
            w._run(w._core.finish_processes([pid], None, {pid: w._core.failed(exc)}))
    short = ok(worqr(server, prefix, "job", "other@tb"))
    assert short.endswith("(--traceback shows the traceback)\n")
    full = ok(worqr(server, prefix, "job", "other@tb", "--traceback")).splitlines()
    tb = full[full.index("traceback") + 1 :]
    assert tb[0] == "Traceback (most recent call last):" and tb[-1] == "KeyError: 'missing'"
    assert "error     KeyError: 'missing'" in full


def test_a_missing_or_malformed_id(server: Any, prefix: str, made: dict[str, str]) -> None:
    for args in (("jobs@nope",), ("other@queued",), ("jobs@nope", "--cancel")):
        done = worqr(server, prefix, "job", *args)
        assert done.returncode == 1 and done.stdout == "", done
        why = "(never submitted, expired, or its queue deleted)"
        assert done.stderr == f"Error: no such job: {args[0]} {why}\n"
    for bad in ("nope", "jobs@", "@key", "q@a\tb"):
        done = worqr(server, prefix, "job", "--", bad)
        assert done.returncode == 2 and "Invalid value for 'ID': job_id" in done.stderr, done
    done = worqr(server, prefix, "job", made["queued"], "--cancel", "--json")
    assert done.returncode == 2 and "--cancel prints only" in done.stderr


def test_job_cancel(server: Any, prefix: str, made: dict[str, str]) -> None:
    for status in ("queued", "scheduled"):
        assert ok(worqr(server, prefix, "job", made[status], "--cancel")) == (
            f"cancelled {made[status]}\n"
        )
    for status, now in (("queued", "cancelled"), ("started", "started"), ("finished", "finished")):
        assert ok(worqr(server, prefix, "job", made[status], "--cancel")) == (
            f"not cancelled: {made[status]} is {now} (only a queued or scheduled job can be)\n"
        )
    with Worqr(server.url, prefix=prefix) as w:
        assert w.get_tasks("jobs") == [] and w.count_delayed("jobs") == 0
        assert w.get_job(made["started"]).status == "started"  # type: ignore[union-attr]
    cancelled = [r[0] for r in listed(server, prefix, "jobs", "-s", "cancelled")]
    assert cancelled == [made["scheduled"], made["queued"]]
    lines = ok(worqr(server, prefix, "job", made["queued"])).splitlines()
    assert lines[1] == "status    cancelled" and lines[7].startswith("ended     ")


CLI = [sys.executable, "-m", "worqr_py", "--url"]


def test_worker_jobs_runs_a_module_s_functions_with_a_timeout(
    make: Any, server: Any, prefix: str
) -> None:
    """``worqr worker --jobs MODULE``: the module's JOBS (tests.job_worker has none: its
    public functions), run as jobs with --timeout; SIGTERM stops it cleanly."""
    producer = make()
    cli = [*CLI, server.url, "--prefix", prefix]
    beats = ["--heartbeat-interval", "0.2", "--heartbeat-ttl", "5"]
    proc = subprocess.Popen(
        [*cli, "worker", "--jobs", "tests.job_worker", "-q", "q", "--timeout", "1", *beats],
        cwd=ROOT,
    )
    try:
        assert producer.wait_for_result(producer.submit("q", "add", 20, 22).id, 30) == 42
        with pytest.raises(JobFailed) as caught:
            producer.wait_for_result(producer.submit("q", "spin", 0).id, 30)
        assert caught.value.error.type == "worqr_py.errors.JobTimeout"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        proc.kill()
        proc.wait(10)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("tests.job_worker:add",), "--jobs takes a module"),
        (("no_such_module",), "cannot import 'no_such_module'"),
        (("tests.handlers", "--timeout", "1"), "--timeout needs --jobs"),
    ],
)
def test_worker_jobs_usage_errors(server: Any, prefix: str, args: Any, message: str) -> None:
    jobs = ["--jobs"] if "--timeout" not in args else []
    done = subprocess.run(
        [*CLI, server.url, "--prefix", prefix, "worker", *jobs, *args, "-q", "q"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode != 0 and message in done.stderr, done.stderr
