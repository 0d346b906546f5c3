"""The job runtime (``run_jobs``) on real Redis, both drivers: the submit -> worker ->
wait_for_result flow, dispatch, errors, retries, timeouts (thread, coroutine, process), a
SIGKILLed job worker, and the counters."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from worqr_py import AsyncWorqr, Retry
from worqr_py.errors import JobFailed

from .conftest import FAST
from .job_worker import FUNCTIONS, spawn
from .support import wait_for

ROOT = Path(__file__).resolve().parent.parent


def start_jobs(w: Any, queues: Any, **kw: Any) -> threading.Thread:
    t = threading.Thread(target=w.run_jobs, args=(FUNCTIONS, queues), kwargs=kw, daemon=True)
    t.start()
    wait_for(lambda: w.alive, what="the job worker")
    return t


@pytest.fixture
def jobs_worker(make: Any) -> Iterator[Any]:
    """A factory of running job workers, shut down after the test."""
    running: list[tuple[Any, threading.Thread]] = []

    def start(queues: Any = "q", **kw: Any) -> Any:
        w = make(**FAST)
        running.append((w, start_jobs(w, queues, **kw)))
        return w

    yield start
    for w, t in running:
        w.shutdown(force=True)
        t.join(15)
        assert not t.is_alive()


def test_submit_run_wait_for_result(make: Any, jobs_worker: Any) -> None:
    producer = make()
    worker = jobs_worker()
    assert producer.wait_for_result(producer.submit("q", "add", 2, 3).id, 10) == 5
    job = producer.submit("q", "greet", "ada", punctuation="?")
    out = producer.wait_for_result(job.id, 10)
    assert out == {"text": "hello ada?", "id": job.id, "attempt": 1}
    info = producer.get_job(job.id)
    assert info.status == "finished" and info.attempts == 1
    assert info.worker == worker.worker_id
    assert info.enqueued_at <= info.started_at <= info.ended_at
    assert worker.job_counts()[("q", "add")]["done"] == 1


def test_errors_fail_the_job_and_the_worker_goes_on(make: Any, jobs_worker: Any) -> None:
    producer = make()
    jobs_worker()
    failing = {
        "boom": (("bad input",), "ValueError", "bad input"),
        "nope": ((), "worqr_py.errors.UnknownFunction", "no function 'nope'"),
        "unserializable": ((), "TypeError", "cannot be serialized"),
    }
    for name, (args, kind, message) in failing.items():
        with pytest.raises(JobFailed) as caught:
            producer.wait_for_result(producer.submit("q", name, *args).id, 10)
        assert caught.value.status == "failed"
        assert caught.value.error.type == kind and message in caught.value.error.message
    assert producer.wait_for_result(producer.submit("q", "add", 1, 1).id, 10) == 2
    producer.enqueue("q", "a plain task")  # not a job: returned, then dead-lettered
    wait_for(lambda: producer.get_dead_tasks("q") == ["a plain task"], what="dead letter")


def test_a_job_retry_policy_retries_then_fails(make: Any, jobs_worker: Any) -> None:
    producer = make()
    worker = jobs_worker()
    job = producer.submit("q", "boom", "again", retry=Retry(max=2, backoff=[0.05]))
    with pytest.raises(JobFailed) as caught:
        producer.wait_for_result(job.id, 10)
    assert caught.value.info.attempts == 3 and caught.value.error.message == "again"
    assert worker.job_counts()[("q", "boom")] == {
        "done": 0,
        "failed": 1,
        "retried": 2,
        "timed_out": 0,
    }


@pytest.mark.parametrize("isolation", ["thread", "process"])
def test_timeouts_end_a_cpu_loop_and_a_coroutine(
    make: Any, jobs_worker: Any, isolation: str
) -> None:
    producer = make()
    worker = jobs_worker(timeout=0.5, isolation=isolation)
    first_id = worker.worker_id
    for name, args in (("spin", (0,)), ("nap", (30,))):
        with pytest.raises(JobFailed) as caught:
            producer.wait_for_result(producer.submit("q", name, *args).id, 30)
        assert caught.value.error.type == "worqr_py.errors.JobTimeout"
    own = producer.submit("q", "nap", 0.01, timeout=20)  # the job's own timeout wins
    assert producer.wait_for_result(own.id, 30) == "rested"
    counts = worker.job_counts()
    timed_out = (counts[("q", "spin")]["timed_out"], counts[("q", "nap")]["timed_out"])
    if worker.worker_id == first_id:
        assert timed_out == (1, 1)
    else:  # its heartbeat lapsed on a busy machine (FAST: 0.4 s TTL): it re-registered,
        # and a job it held when it failed was run again by its new id, as promised
        assert min(timed_out) >= 1


def test_process_isolation_runs_each_job_in_a_child(make: Any, jobs_worker: Any) -> None:
    producer = make()
    jobs_worker(isolation="process")
    child = producer.wait_for_result(producer.submit("q", "pid").id, 30)
    assert child != os.getpid()
    with pytest.raises(JobFailed) as caught:
        producer.wait_for_result(producer.submit("q", "boom", "in a child").id, 30)
    assert caught.value.error.type == "ValueError"
    assert caught.value.error.message == "in a child"


def test_a_sigkilled_job_worker_s_job_is_queued_again_and_finished_by_a_peer(
    make: Any, server: Any, prefix: str, jobs_worker: Any
) -> None:
    interval, ttl = 0.2, 0.6
    producer = make()
    job = producer.submit("q", "hold")
    proc = spawn(server.url, prefix, "q", interval, ttl)
    try:
        wait_for(lambda: producer.get_job(job.id).status == "started", timeout=30)
        victim = producer.get_job(job.id).worker
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(10)
    supervisor = make(heartbeat_interval=interval, heartbeat_ttl=ttl)
    supervisor.start_worker()  # a live peer, working no queue: it reclaims the dead one
    wait_for(lambda: producer.get_job(job.id).status == "queued", timeout=30)
    assert producer.get_tasks("q") == ["\x1f" + job.id.split("@")[1]]  # where it says
    assert victim not in producer.get_workers()
    jobs_worker()
    assert producer.wait_for_result(job.id, 30) == "done on attempt 2"
    assert producer.get_job(job.id).attempts == 2


def test_asyncio_flow_and_a_thousand_waiters_on_one_client(server: Any, prefix: str) -> None:
    async def main() -> list[Any]:
        options = {**FAST, "prefix": prefix}
        async with (
            AsyncWorqr(server.url, **options) as worker,
            AsyncWorqr(server.url, **options) as client,
        ):
            running = asyncio.create_task(worker.run_jobs(FUNCTIONS, "aq", prefetch=10))
            try:
                jobs = [await client.submit("aq", "add", i, 1) for i in range(1000)]
                results = await asyncio.gather(*[j.result(60) for j in jobs])
            finally:
                worker.shutdown()
                await running
            return results

    assert asyncio.run(main()) == [i + 1 for i in range(1000)]
