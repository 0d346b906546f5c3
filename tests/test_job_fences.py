"""Regression tests for the review of the job layer (docs: README *Jobs*): a move changes a
job's record only if the process or state it moves is the record's, so a stale copy of an
older job of the same id never changes a newer one; and the job runtime's edge cases."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from worqr_py.core.keys import Keys
from worqr_py.errors import JobFailed

from .conftest import worker
from .support import wait_for
from .test_job_runtime import jobs_worker  # noqa: F401 - the fixture

JOB = "\x1fX"


def test_a_stale_dead_letter_does_not_touch_a_newer_job_of_its_id(make: Any) -> None:
    w = worker(make, "q")
    old = w.submit("q", "f", 1, job_id="X", failure_ttl=0.05)
    w.dead_letter_process(w.dequeue("q").id, error="boom")
    wait_for(lambda: w.get_job(old.id) is None, what="the dead job's record expiring")
    new = w.submit("q", "f", 2, job_id="X")
    assert new.created
    p = w.dequeue("q")
    assert w.requeue_dead("q") == 0  # the old letter is stale: dropped, not queued
    assert w.get_dead_tasks("q") == [] and w.get_tasks("q") == []
    assert w.get_job(new.id).status == "started"
    assert w.finish_process(p.id)
    info = w.get_job(new.id)
    assert info.status == "finished" and info.attempts == 1 and info.args == [2]


def test_a_stale_process_after_delete_queue_does_not_end_the_new_job(make: Any) -> None:
    w = worker(make, "q")
    w.submit("q", "f", "old", job_id="X")
    p = w.dequeue("q")
    w.delete_queue("q")
    new = w.submit("q", "f", "new", job_id="X")
    w._run(w._core.finish_processes([p.id], None, {p.id: w._core.finished("OLD")}))
    assert w.get_job(new.id).status == "queued" and w.get_tasks("q") == [JOB]
    q = w.dequeue("q")
    w.stop_process(p.id)  # the old process is gone: nothing moves
    assert w.get_job(new.id).status == "started"
    w._run(w._core.finish_processes([q.id], None, {q.id: w._core.finished("NEW")}))
    assert w.wait_for_result(new.id, 10) == "NEW"


def test_a_stale_copy_is_delivered_bare_and_leaves_the_record_alone(
    make: Any, r: Any, prefix: str
) -> None:
    w = worker(make, "q")
    job = w.submit("q", "f", job_id="X")
    first = w.dequeue("q")
    r.rpush(Keys(prefix).queue("q").tasks, JOB)  # a stray copy (as an old version's)
    stale = w.dequeue("q")
    assert stale.task == JOB and stale.job is None  # not started again: the runtime drops it
    info = w.get_job(job.id)
    assert info.status == "started" and info.worker == w.worker_id and first.job is not None


def test_cancel_ends_only_a_waiting_job(make: Any, r: Any, prefix: str) -> None:
    w = worker(make, "q")
    job = w.submit("q", "f", job_id="X")
    p = w.dequeue("q")
    r.rpush(Keys(prefix).queue("q").tasks, JOB)  # a stray copy queued meanwhile
    assert w.cancel_tasks("q", JOB) == 1  # the copy goes; the started job is not cancelled
    assert w.get_job(job.id).status == "started"
    assert w.finish_process(p.id) and w.get_job(job.id).status == "finished"


def test_job_errors_and_options_the_runtime_must_survive(
    make: Any,
    r: Any,
    prefix: str,
    jobs_worker: Any,  # noqa: F811
) -> None:
    producer = make()
    jobs_worker(timeout=30)
    with pytest.raises(JobFailed) as caught:
        producer.wait_for_result(producer.submit("q", "upstream_timeout").id, 30)
    assert caught.value.error.type == "TimeoutError"  # its own, not a job timeout
    assert caught.value.error.message == "upstream did not answer"
    bad = producer.submit("q", "add", 1, 2, delay=0.5)  # changed before it is due:
    key = bad.id.split("@")[1]  # its options as another writer might have left them
    r.hset(Keys(prefix).queue("q").jobs, f"{key}\x1fo", '{"retry": {"base": 2}}')
    with pytest.raises(JobFailed) as caught:
        producer.wait_for_result(bad.id, 30)
    assert "retry option is unreadable" in caught.value.error.message
    assert producer.wait_for_result(producer.submit("q", "add", 1, 2).id, 30) == 3  # goes on
    with pytest.raises(JobFailed) as caught:
        producer.wait_for_result(producer.submit("q", "stubborn", 0, timeout=0.3).id, 30)
    assert caught.value.error.type == "worqr_py.errors.JobTimeout"  # not swallowed


def test_a_process_isolated_job_may_start_processes(make: Any, jobs_worker: Any) -> None:  # noqa: F811
    producer = make()
    jobs_worker(isolation="process")
    assert producer.wait_for_result(producer.submit("q", "child_of_child").id, 60) == 0


def test_threads_waiting_on_one_job_all_wake(make: Any) -> None:
    w = worker(make, "q", poll_interval=30)  # only the job-end message wakes them quickly
    for _ in range(5):
        job = w.submit("q", "f")
        gate = threading.Barrier(9)
        got: list[Any] = []

        def wait(jid: str = job.id, gate: Any = gate, got: list[Any] = got) -> None:
            gate.wait(10)
            try:
                got.append(w.wait_for_result(jid, 20))
            except Exception as exc:
                got.append(exc)

        threads = [threading.Thread(target=wait) for _ in range(8)]
        for t in threads:
            t.start()
        gate.wait(10)
        time.sleep(0.05)  # the waiters are waiting (a schedule, not an outcome, rides on it)
        p = w.dequeue("q")
        w._run(w._core.finish_processes([p.id], None, {p.id: w._core.finished(7)}))
        for t in threads:
            t.join(30)
        assert got == [7] * 8
