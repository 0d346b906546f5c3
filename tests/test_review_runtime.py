"""Regression tests for defects an adversarial review found in the runtime (``run`` and
``run_jobs``), both drivers, on real Redis."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from worqr_py import Process
from worqr_py.core.keys import Keys, split_process_id
from worqr_py.errors import JobFailed
from worqr_py.runtime.jobs import Interrupted, JobTimeout, call_with_timeout

from .conftest import FAST
from .job_worker import FUNCTIONS, spawn
from .support import running, running_jobs, task_log, wait_for


def test_a_timeout_that_fires_while_its_timer_starts_is_a_job_timeout() -> None:
    """Pure (threads, no Redis): a timeout so short that it can fire while ``Thread.start``
    waits for the timer thread used to escape as the bare interrupt and end the runner
    thread that called the job (its job stuck ``started``)."""
    for _ in range(300):
        try:
            call_with_timeout(FUNCTIONS["spin"], [0], {}, 0.0001)
        except JobTimeout:
            pass
        except Interrupted:  # pragma: no cover - the defect
            raise AssertionError("the interrupt escaped call_with_timeout") from None


def test_tiny_job_timeouts_never_end_a_runner(make: Any) -> None:
    """Every job with a timeout that fires at once ends (failed), and the worker's two
    runner jobs go on taking: none dies on the timeout's interrupt."""
    producer, w = make(), make(**FAST)
    ids = [producer.submit("q", "spin", 0, timeout=0.002).id for _ in range(40)]
    with running_jobs(w, FUNCTIONS, "q", concurrency=2):
        wait_for(
            lambda: all(producer.get_job(i).status == "failed" for i in ids),
            timeout=60,
            what="every job timed out and failed",
        )
        assert producer.wait_for_result(producer.submit("q", "add", 1, 2).id, 30) == 3


def test_sys_exit_in_a_handler_fails_the_task_and_the_runner_goes_on(make: Any) -> None:
    """``SystemExit`` from a handler is its failure (the task back to the front, then dead
    after ``max_deliveries``), not the end of the runner job that ran it."""
    w, producer = make(**FAST, max_deliveries=2), make()
    done, record = task_log()

    def handler(p: Process) -> None:
        record(p)
        if p.task == "exit":
            raise SystemExit(3)

    producer.enqueue("q", ["exit", "next"])
    with running(w, "q", handler):
        wait_for(lambda: "next" in done and producer.get_dead_tasks("q") == ["exit"])
    assert done.count("exit") == 2


def test_sys_exit_in_a_job_fails_the_job(make: Any) -> None:
    """A job that calls ``sys.exit`` (in a thread; as a coroutine, with and without a
    timeout) ends failed with SystemExit recorded; the worker goes on."""
    producer, w = make(), make(**FAST)
    jobs = [
        producer.submit("q", "exits", 2),
        producer.submit("q", "aexits", 2),
        producer.submit("q", "aexits", 2, timeout=30),
        producer.submit("q", "exits", 2, timeout=30),
    ]
    with running_jobs(w, FUNCTIONS, "q"):
        for job in jobs:
            wait_for(lambda job=job: producer.get_job(job.id).status == "failed", timeout=30)
            assert producer.get_job(job.id).error.type == "SystemExit"
        assert producer.wait_for_result(producer.submit("q", "add", 1, 2).id, 30) == 3


def owner(process_id: str) -> str:
    """The worker id in a process id."""
    parts = split_process_id(process_id)
    assert parts is not None
    return parts[1]


def test_a_failed_worker_does_not_start_the_rest_of_its_batch(
    make: Any, r: redis.Redis, prefix: str
) -> None:
    """A worker whose heartbeat was lost while it ran the first of a prefetched batch lost
    the others (``lost``; a peer returns them): it must not start them as well."""
    w, producer = make(**FAST), make()
    started: list[str] = []

    def handler(p: Process) -> None:
        started.append(p.id)
        if len(started) == 1:  # the worker fails while this handler runs
            r.delete(Keys(prefix).heartbeat(owner(p.id)))
            wait_for(lambda: not w.alive, what="the worker failed itself")

    producer.enqueue("q", [f"t{i}" for i in range(5)])
    with running(w, "q", handler, prefetch=5):
        wait_for(lambda: len(started) >= 6, timeout=30, what="the tasks run again")
    first = owner(started[0])
    assert [pid for pid in started if owner(pid) == first] == started[:1]


def test_a_forced_stop_loses_nothing_of_a_prefetched_batch(make: Any) -> None:
    """With prefetch, a finished task's ack waits for the next take. A stop whose grace
    ran out while the next handler runs returns the rest of the batch to the front, in
    order, and the finished task with it (a duplicate the README documents: acking it
    from the stopping thread raced with the runner's own acks), never losing one."""
    w, producer = make(**FAST), make()
    release = threading.Event()
    done: list[str] = []

    def handler(p: Process) -> None:
        if p.task == "t1":
            release.wait(30)  # still running when the grace runs out
        done.append(p.task)

    producer.enqueue("q", [f"t{i}" for i in range(5)])
    try:
        with running(w, "q", handler, prefetch=5, grace=0.1):
            wait_for(lambda: done == ["t0"], what="t0 handled, t1 running")
        assert producer.get_tasks("q") in (["t1", "t2", "t3", "t4"], [f"t{i}" for i in range(5)])
    finally:
        release.set()


def test_run_jobs_kills_a_process_isolated_job_it_returned_at_shutdown(
    make: Any, tmp_path: Path
) -> None:
    """A shutdown whose grace runs out returns the job (``fail_worker``) and kills its child
    process, so the job is not still running there while another worker runs it again (and
    the worker's process does not wait for the child at exit)."""
    producer, w = make(), make(**FAST)
    path = tmp_path / "pid"
    job = producer.submit("q", "hold_pid", str(path))
    t = threading.Thread(
        target=w.run_jobs,
        args=(FUNCTIONS, "q"),
        kwargs={"isolation": "process", "grace": 0.2},
        daemon=True,
    )
    t.start()
    try:
        child = int(wait_for(lambda: path.exists() and path.read_text(), timeout=60))
    finally:
        w.shutdown()
        t.join(15)
    assert not t.is_alive()
    wait_for(lambda: not _running(child), timeout=10, what="the job's child killed")
    assert producer.get_job(job.id).status == "queued"


@pytest.mark.parametrize("driver", ["sync", "async"])
@pytest.mark.parametrize("when", ["running", "starting"])
def test_ctrl_c_lets_a_process_isolated_job_finish(
    make: Any, server: Any, prefix: str, tmp_path: Path, driver: str, when: str
) -> None:
    """A Ctrl-C in a terminal (SIGINT to the worker's whole process group) stops the worker
    gracefully, and the job running in a child process finishes within the grace, as a
    thread-isolated one does. Before, the child got the SIGINT too: the job failed with
    ``KeyboardInterrupt``. "starting": the Ctrl-C comes as the worker's first child starts,
    before it leaves the group; it drops that SIGINT (a first child used to get it:
    starting multiprocessing's resource tracker unblocked SIGINT in the starting thread)."""
    producer = make()
    path = tmp_path / "pid"
    job = producer.submit("q", "nap_pid", str(path), 1.0)
    with _job_worker(server, prefix, driver) as proc:
        if when == "starting":
            wait_for(lambda: _job_children(proc.pid), 60, "the job's child started", 0.001)
        else:
            wait_for(lambda: path.exists() and path.read_text(), 60, "the job started")
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(60) == 0
    info = producer.get_job(job.id)
    assert (info.status, info.result, info.error) == ("finished", "rested", None)


def test_a_killed_worker_s_job_child_and_what_it_started_die_with_it(
    make: Any, server: Any, prefix: str, tmp_path: Path, driver: str
) -> None:
    """A worker killed outright (SIGKILL; a closed terminal's SIGHUP or a Ctrl-\\ alike)
    takes its process-isolated job's child and the processes the job started with it, so
    none goes on with a job a peer then runs again. Before, both ran on."""
    producer = make()
    path = tmp_path / "pid"
    producer.submit("q", "hold_grandchild", str(path))
    pids: list[int] = []  # killed at the end, whatever happened
    with _job_worker(server, prefix, driver) as proc, _killing(pids):
        pids.append(int(wait_for(lambda: path.exists() and path.read_text(), 60, "the job")))
        pids.extend(_job_children(proc.pid))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        wait_for(lambda: not any(_running(p) for p in pids), 10, "child and grandchild gone")
    assert len(pids) == 2


def test_a_job_child_that_runs_on_after_its_job_returned_is_killed(
    make: Any, tmp_path: Path
) -> None:
    """A process-isolated job that returns but leaves its child running (a thread that is
    not a daemon) gets its result, and the child is killed a few seconds later, not left
    unwatched and unlisted (a worker killed later would not take it along; a graceful one
    waited for it at exit)."""
    producer, w = make(), make(**FAST)
    path = tmp_path / "pid"
    job = producer.submit("q", "linger", str(path))
    pids: list[int] = []
    with running_jobs(w, FUNCTIONS, "q", isolation="process"), _killing(pids):
        assert producer.wait_for_result(job.id, 60) == "returned"
        pids.append(int(path.read_text()))
        wait_for(lambda: not _running(pids[0]), 30, "the lingering child killed")


@contextlib.contextmanager
def _job_worker(server: Any, prefix: str, driver: str) -> Iterator[Any]:
    """A process-isolated job worker process on "q" (``job_worker.spawn``), killed at the
    end of the block if it is still running."""
    proc = spawn(server.url, prefix, "q", 1.0, 3.0, isolation="process", driver=driver)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


@contextlib.contextmanager
def _killing(pids: list[int]) -> Iterator[None]:
    """SIGKILL the processes in ``pids`` (filled in by the block) at its end: none outlives
    the test, whatever it asserted."""
    try:
        yield
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _job_children(pid: int) -> list[int]:
    """The job children (multiprocessing spawn, not its resource tracker) of process
    ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _stat(int(entry.name))
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:  # gone meanwhile
            continue
        if stat and int(stat[1]) == pid and b"spawn_main" in cmdline:
            found.append(int(entry.name))
    return found


def test_a_job_timeout_kills_the_processes_the_job_started(make: Any, tmp_path: Path) -> None:
    """A process-isolated job that times out is killed with the processes it started (its
    child's process group), not its child alone. Before, a grandchild ran on."""
    producer, w = make(), make(**FAST)
    path = tmp_path / "pid"
    job = producer.submit("q", "hold_grandchild", str(path), timeout=5)  # > the child's start
    pids: list[int] = []
    with running_jobs(w, FUNCTIONS, "q", isolation="process"), _killing(pids):
        pids.append(int(wait_for(lambda: path.exists() and path.read_text(), timeout=60)))
        with pytest.raises(JobFailed) as caught:
            producer.wait_for_result(job.id, 60)
        assert caught.value.error.type == "worqr_py.errors.JobTimeout"
        wait_for(lambda: not _running(pids[0]), timeout=10, what="the grandchild killed")


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    stat = _stat(pid)
    return bool(stat) and stat[0] != "Z"


def _stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name (state, ppid, ...); empty if
    the process is gone (reaped between the open and the read included: ESRCH)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return []
