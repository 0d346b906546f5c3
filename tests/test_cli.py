"""The ``worqr`` CLI, run as a user runs it (a subprocess) against real redis-servers."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from worqr_py.core.keys import Keys
from worqr_py.embedded import free_port

from .support import wait_for

ROOT = Path(__file__).resolve().parent.parent


def worqr(
    server: Any, prefix: str, *args: str, stdin: str | None = None, url: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "worqr_py", "--url", url or server.url, "--prefix", prefix, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "200"},
    )


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_queue_commands_round_trip(server: Any, prefix: str) -> None:
    assert ok(worqr(server, prefix, "enqueue", "jobs", "a", "b")) == "enqueued 2; jobs has 2\n"
    assert ok(worqr(server, prefix, "enqueue", "jobs", stdin="c\nd\n\ne\n")) == (
        "enqueued 3; jobs has 5\n"
    )
    assert ok(worqr(server, prefix, "tasks", "jobs")).split() == ["a", "b", "c", "d", "e"]
    assert ok(worqr(server, prefix, "queues")).split() == ["jobs"]
    assert ok(worqr(server, prefix, "cancel", "jobs", "c")) == "cancelled 1\n"
    assert ok(worqr(server, prefix, "delete", "jobs")) == "deleted jobs\n"
    assert ok(worqr(server, prefix, "queues")) == ""
    assert ok(worqr(server, prefix, "workers")) == ""


def test_inspect_shows_queues_workers_and_processes(make: Any, server: Any, prefix: str) -> None:
    w = make(heartbeat_interval=0.1, heartbeat_ttl=5)
    w.start_worker()
    w.start_work("jobs")
    w.enqueue("jobs", ["held-task", "queued-task"])
    w.dequeue("jobs")
    out = ok(worqr(server, prefix, "inspect"))
    assert re.search(r"jobs\s+│\s+1\s+│\s+0\s+│\s+1", out), out  # queued, delayed, workers
    assert w.worker_id in out and "held-task" in out and "ago / ttl 5s" in out
    diagram = ok(worqr(server, prefix, "inspect", "--diagram"))
    assert f"{prefix}:{{jobs}}:p:{w.worker_id} : hash" in diagram and "| 1: held-task |" in diagram
    top = ok(worqr(server, prefix, "top", "--interval", "0.05", "--iterations", "2"))
    assert "held-task" in top


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--url", "htp://nope", "queues"), "bad --url"),
        (
            ("--url", "redis://127.0.0.1:{free}/0", "queues"),
            "cannot reach Redis at redis://127.0.0.1",
        ),
        (("worker", "no_such_module:f", "-q", "q"), "cannot import 'no_such_module'"),
        (("worker", "tests.handlers:missing", "-q", "q"), "has no 'missing'"),
        (("worker", "tests.handlers", "-q", "q"), "expected module:function"),
        (("worker", "tests.handlers:not_callable", "-q", "q"), "is not callable"),
        (("enqueue", "", "x"), "queue must not be empty"),
    ],
)
def test_user_mistakes_are_one_line_and_a_nonzero_exit(
    server: Any, prefix: str, args: tuple[str, ...], message: str
) -> None:
    args = tuple(a.replace("{free}", str(free_port())) for a in args)
    done = subprocess.run(
        [sys.executable, "-m", "worqr_py", "--url", server.url, "--prefix", prefix, *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = [x for x in done.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and message in lines[0], done.stderr


def start_worker(
    server: Any, prefix: str, target: str, *extra: str, env: dict[str, str]
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "worqr_py",
            "--url",
            server.url,
            "--prefix",
            prefix,
            "worker",
            target,
            "-q",
            "jobs",
            "--heartbeat-interval",
            "0.2",
            "--heartbeat-ttl",
            "2",  # a CPU stall on a loaded machine must not fence it: the test counts runs
            *extra,
        ],
        cwd=ROOT,
        env={**os.environ, **env},
        stderr=subprocess.PIPE,
        text=True,
    )


def test_worker_command_runs_tasks_and_stops_gracefully_on_sigterm(
    make: Any, server: Any, r: Any, prefix: str
) -> None:
    env = {"TEST_LEDGER_URL": server.url, "TEST_LEDGER": f"{prefix}-ledger"}
    producer = make()
    proc = start_worker(server, prefix, "tests.handlers:record", "-c", "2", env=env)
    try:
        wait_for(producer.get_workers, timeout=15, what="the worker process registering")
        producer.enqueue("jobs", [f"t{i}" for i in range(50)])
        wait_for(lambda: r.hlen(f"{prefix}-ledger") == 50, what="50 tasks recorded")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        proc.kill()
    assert set(r.hvals(f"{prefix}-ledger")) == {"1"}
    assert producer.get_workers() == [] and producer.get_tasks("jobs") == []


def test_a_second_sigint_exits_at_once_and_the_task_goes_back(
    make: Any, server: Any, r: Any, prefix: str
) -> None:
    env = {"TEST_LEDGER_URL": server.url, "TEST_LEDGER": f"{prefix}-ledger", "TEST_SLOW": "30"}
    producer = make()
    producer.enqueue("jobs", ["slow-one", "waiting"])
    proc = start_worker(server, prefix, "tests.handlers:slow", "--grace", "30", env=env)
    try:
        wait_for(
            lambda: r.hget(f"{prefix}-ledger", "started:slow-one"),
            timeout=15,
            what="the slow handler starting",
        )
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)  # a person's pause between two Ctrl-C, not a wait for an outcome
        assert proc.poll() is None  # the first Ctrl-C waits for the handler (grace 30 s)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(5) == 0
    finally:
        proc.kill()
    assert producer.get_tasks("jobs") == ["slow-one", "waiting"]  # returned at once, in front


def test_demo_starts_its_own_redis_and_every_task_finishes(prefix: str) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "worqr_py",
            "--url",
            url,
            "demo",
            "--tasks",
            "120",
            "--workers",
            "3",
            "--ms",
            "10",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "started a throwaway redis-server" in done.stdout
    assert re.search(r"SIGKILL worker \w+ \(pid \d+\) holding [1-9]", done.stdout), done.stdout
    assert re.search(r"a peer reclaimed [1-9]\d* task\(s\)", done.stdout), done.stdout
    assert re.search(r"summary: done 120/120, reclaimed [1-9]\d*, duplicates \d+", done.stdout)


def test_dead_letter_commands(server: Any, r: Any, prefix: str) -> None:
    from worqr_py.core.keys import Keys

    r.rpush(Keys(prefix).queue("jobs").dead, "x", "y", "x")
    assert ok(worqr(server, prefix, "dead", "jobs")).split() == ["x", "y", "x"]
    assert ok(worqr(server, prefix, "dead", "jobs", "--requeue", "--task", "x")) == "requeued 2\n"
    assert ok(worqr(server, prefix, "tasks", "jobs")).split() == ["x", "x"]
    assert ok(worqr(server, prefix, "dead", "jobs", "--purge")) == "purged 1\n"
    assert ok(worqr(server, prefix, "dead", "jobs")) == ""
    both = worqr(server, prefix, "dead", "jobs", "--purge", "--requeue")
    assert both.returncode != 0 and "not both" in both.stderr


def test_a_password_in_the_url_is_never_printed(server: Any, prefix: str) -> None:
    url = f"redis://alice:s3cret-pw@127.0.0.1:{free_port()}/0?password=qu3ry-pw"
    done = worqr(server, prefix, "queues", url=url)  # nothing listens there
    out = done.stdout + done.stderr
    assert done.returncode == 1 and "cannot reach Redis at redis://***@127.0.0.1" in out, out
    assert "s3cret-pw" not in out and "qu3ry-pw" not in out and "alice" not in out, out


def test_the_demo_does_not_print_a_password(prefix: str) -> None:
    url = f"redis://:s3cret-pw@127.0.0.1:{free_port()}/0"  # nothing listens: it starts its own
    done = worqr(None, prefix, "demo", "--tasks", "6", "--workers", "2", "--ms", "1", url=url)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "No Redis at redis://***@127.0.0.1" in out and "s3cret-pw" not in out, out


def cli_worker(url: str, prefix: str, target: str, *extra: str, env: dict[str, str]) -> Any:
    """``worqr worker TARGET -q jobs`` with heartbeats slow enough for a loaded machine."""
    cli = [sys.executable, "-m", "worqr_py", "--url", url, "--prefix", prefix]
    beats = ["--heartbeat-interval", "0.2", "--heartbeat-ttl", "5"]
    return subprocess.Popen(
        [*cli, "worker", target, "-q", "jobs", *beats, *extra],
        cwd=ROOT,
        env={**os.environ, **env},
        stderr=subprocess.PIPE,
        text=True,
    )


def test_the_worker_logs_what_it_runs_and_a_clean_stop_is_info(servers: Any, prefix: str) -> None:
    guarded = servers()
    guarded.client().config_set("requirepass", "pw-s3cret")
    url = f"redis://:pw-s3cret@127.0.0.1:{guarded.port}/0"
    r = guarded.client(password="pw-s3cret", decode_responses=True)
    r.rpush(Keys(prefix).queue("jobs").tasks, "t1")
    env = {"TEST_LEDGER_URL": url, "TEST_LEDGER": f"{prefix}-ledger"}
    proc = cli_worker(url, prefix, "tests.handlers:record", "--poll-interval", "0.7", env=env)
    try:  # a recorded task: the worker is running (and handles SIGTERM)
        wait_for(lambda: r.hget(f"{prefix}-ledger", "t1"), timeout=15, what="t1 recorded")
        wid = r.smembers(f"{{{prefix}}}:workers")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    (worker_id,) = wid
    start = re.search(
        r"INFO worqr_py\.cli: worker (\w+) runs tests\.handlers:record on jobs at (\S+)", err
    )
    assert start and start.groups() == (worker_id, f"redis://***@127.0.0.1:{guarded.port}/0"), err
    assert "poll 0.7s" in err and "ttl 5s" in err, err
    assert re.search(rf"INFO worqr_py\.cli: worker {worker_id} left its queues", err), err
    assert "pw-s3cret" not in err and " root" not in err and "WARNING worqr_py.cli" not in err


def test_worker_options_prefetch_and_max_deliveries_reach_the_runtime(
    make: Any, server: Any, r: Any, prefix: str
) -> None:
    env = {"TEST_LEDGER_URL": server.url, "TEST_LEDGER": f"{prefix}-ledger", "TEST_SLOW": "30"}
    producer = make()
    producer.enqueue("jobs", ["bad", "s1", "s2", "s3"])
    proc = cli_worker(
        server.url, prefix, "tests.handlers:fail_or_slow", "--prefetch", "3",
        "--max-deliveries", "1", "--grace", "0.2", env=env,
    )  # fmt: skip
    try:
        wait_for(lambda: r.hget(f"{prefix}-ledger", "started:s1"), timeout=15, what="s1 started")
        assert producer.get_dead_tasks("jobs") == ["bad"]  # one delivery, then dead-lettered
        (held,) = [sorted(p.task for p in w.processes) for w in producer.overview().workers]
        assert held == ["s1", "s2"] and producer.get_tasks("jobs") == ["s3"]  # 3 taken at once
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        proc.kill()
    assert sorted(producer.get_tasks("jobs")) == ["s1", "s2", "s3"]


def test_tasks_prints_one_line_per_task(server: Any, make: Any, prefix: str) -> None:
    make().enqueue("jobs", ["line one\nline two", "tab\there", "", "plain", "naïve ✓"])
    out = ok(worqr(server, prefix, "tasks", "jobs"))
    assert out.splitlines() == ["'line one\\nline two'", "'tab\\there'", "''", "plain", "naïve ✓"]


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (("top", "--interval", "-1"), "'--interval'"),
        (("top", "--iterations", "-2"), "'--iterations'"),
        (("worker", "tests.handlers:record", "-q", ""), "'--queue'"),
        (("worker", "tests.handlers:record", "-q", "q", "--prefetch", "0"), "'--prefetch'"),
        (
            ("worker", "tests.handlers:record", "-q", "q", "--poll-interval", "0"),
            "'--poll-interval'",
        ),
        (
            ("worker", "tests.handlers:record", "-q", "q", "--max-deliveries", "-1"),
            "'--max-deliveries'",
        ),
        (
            ("worker", "tests.handlers:record", "-q", "q", "--heartbeat-ttl", "0"),
            "'--heartbeat-ttl'",
        ),
        (  # each valid alone: the client's own check names it
            ("worker", "tests.handlers:record", "-q", "q", "--heartbeat-ttl", "1"),
            "'--heartbeat-ttl'",
        ),
        # a review of 0.7.3: NaN and absurd values (exit 1, or a traceback later)
        (("worker", "tests.handlers:record", "-q", "q", "--grace", "nan"), "'--grace'"),
        (
            ("worker", "tests.handlers:record", "-q", "q", "--jobs", "--timeout", "nan"),
            "'--timeout'",
        ),
        (("top", "--interval", "nan", "--iterations", "1"), "'--interval'"),
        (("top", "--interval", "1e300", "--iterations", "1"), "'--interval'"),
    ],
)
def test_a_bad_option_value_names_the_option(
    server: Any, prefix: str, args: tuple[str, ...], option: str
) -> None:
    done = worqr(server, prefix, *args)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert f"Invalid value for {option}" in done.stderr, done.stderr


def test_a_bad_prefix_names_the_option(server: Any) -> None:
    done = worqr(server, "a{b", "queues")
    assert done.returncode == 2 and "Invalid value for '--prefix'" in done.stderr, done.stderr


def test_the_worker_says_loudly_that_redis_restarted_and_goes_on(servers: Any, prefix: str) -> None:
    """Issue 11 #5: a Redis restart that lost the data is logged as an error, and the worker
    registers again and takes new work."""
    s = servers()
    r = s.client(decode_responses=True)
    env = {"TEST_LEDGER_URL": s.url, "TEST_LEDGER": f"{prefix}-ledger"}
    proc = cli_worker(s.url, prefix, "tests.handlers:record", "--poll-interval", "0.5", env=env)
    try:
        first = wait_for(lambda: r.smembers(f"{{{prefix}}}:workers"), timeout=15, what="registered")
        old_run_id = r.info("server")["run_id"]
        s.restart()  # all data lost
        r = s.client(decode_responses=True)
        assert r.info("server")["run_id"] != old_run_id
        wait_for(  # a new worker id: the worker noticed, failed and registered again
            lambda: r.smembers(f"{{{prefix}}}:workers") - set(first),
            timeout=30,
            what="registered again",
        )
        r.rpush(Keys(prefix).queue("jobs").tasks, "after")
        wait_for(lambda: r.hget(f"{prefix}-ledger", "after"), timeout=30, what="new work done")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert "ERROR worqr_py.cli: REDIS RESTARTED" in err, err


def test_the_library_needs_neither_click_nor_rich_and_the_command_says_what_is_missing() -> None:
    """click and rich are the ``cli`` extra: the library imports without them, and the
    command tells how to get them instead of a traceback."""
    code = (
        "import sys; sys.modules['click'] = None; sys.modules['rich'] = None\n"
        "import worqr_py\n"
        "assert worqr_py.Worqr and worqr_py.AsyncWorqr\n"
        "import runpy; runpy.run_module('worqr_py', run_name='__main__')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1, done.stderr
    assert "pip install 'worqr_py[cli]'" in done.stderr and "Traceback" not in done.stderr
