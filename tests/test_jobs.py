"""The job layer's core API (submit, get_job, get_jobs, cancel_job, wait_for_result): a job's
status always says where its task is, through every move of the low-level worker API
(dequeue, finish, stop, retry, dead letter, requeue, reclaim, cancel, delete); submit is
idempotent by job id and checks everything before writing; waiters wake by pub/sub on one
shared subscriber; ended records expire. Both drivers, real Redis, no runtime."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis.asyncio as aredis

from worqr_py import AsyncWorqr, Retry
from worqr_py.core.keys import Keys
from worqr_py.errors import ClientClosed, JobFailed, JobNotFound, JobWaitTimeout

from .conftest import FAST, worker
from .support import wait_for

SOON = 15  # seconds: a bound for a failure only


def call(w: Any, value: Any) -> Any:
    """A job handle's method's value: an AsyncJob's coroutine is run on the facade's loop."""
    return w._loop.run(value) if inspect.isawaitable(value) else value


def status(w: Any, jid: str) -> tuple[str, int]:
    info = w.get_job(jid)
    return info.status, info.attempts


def settle(w: Any, p: Any, outcome: str) -> list[bool]:
    """End a dequeued job as the runtime does: finished with a result, or failed."""
    return w._run(w._core.finish_processes([p.id], None, {p.id: outcome}))


@contextlib.contextmanager
def threads(target: Callable[..., None], *args: tuple[Any, ...]) -> Iterator[None]:
    """``target(*a)`` in a thread per ``a`` for the ``with`` block; all joined on leaving."""
    started = [threading.Thread(target=target, args=a) for a in args]
    for t in started:
        t.start()
    try:
        yield
    finally:
        for t in started:
            t.join(30)
    assert not any(t.is_alive() for t in started), "a thread did not end"


# ---- the status follows the job ---------------------------------------------------------------
def test_a_job_is_queued_then_started_then_finished_with_its_result(make: Any) -> None:
    w = worker(make, "q", heartbeat_ttl=30)
    job = w.submit(
        "q", "add", 1, [2], job_id="k1", timeout=2.5, retry=Retry(max=2), c=3,
        job_kwargs={"delay": 4, "timeout": 5},
    )  # fmt: skip
    assert (job.id, job.queue, job.created, job.status) == ("q@k1", "q", True, "queued")
    info = call(w, job.info())
    assert (info.id, info.queue, info.status, info.function) == ("q@k1", "q", "queued", "add")
    assert (info.args, info.kwargs) == ([1, [2]], {"c": 3, "delay": 4, "timeout": 5})
    assert (info.attempts, info.worker, info.started_at, info.ended_at) == (0, None, None, None)
    assert (info.result, info.error, info.expires_at, info.ended) == (None, None, None, False)
    assert info.options["timeout"] == 2.5 and "retry" in info.options
    assert abs(info.enqueued_at - w.server_time()) < SOON
    assert w.get_tasks("q") == ["\x1fk1"]

    p = w.dequeue("q")
    assert (p.task, p.deliveries) == ("\x1fk1", 1) and p.job is not None
    assert w._core.parse_job("q", p.task, p.job).args == [1, [2]]
    info = w.get_job(job.id)
    assert (info.status, info.attempts, info.worker) == ("started", 1, w.worker_id)
    assert info.started_at >= info.enqueued_at

    assert settle(w, p, w._core.finished({"sum": 6})) == [True]
    info = w.get_job(job.id)
    assert (info.status, info.result, info.error) == ("finished", {"sum": 6}, None)
    assert info.ended
    assert info.ended_at >= info.started_at
    assert info.expires_at == pytest.approx(info.ended_at + 3600, abs=0.01)
    assert call(w, job.result(1)) == {"sum": 6}
    assert w.wait_for_job(job.id, 1) == info
    assert w.get_tasks("q") == [] and w.dequeue("q") is None

    plain = w.submit("q", "noop")  # a generated key; a plain finish: finished, no result
    assert plain.id.startswith("q@") and len(plain.id) > 2
    assert w.finish_process(w.dequeue("q").id) is True
    assert (w.get_job(plain.id).status, w.wait_for_result(plain.id, 1)) == ("finished", None)


def test_a_failed_job_keeps_its_error_and_its_waiters_get_job_failed(make: Any) -> None:
    w = worker(make, "q", heartbeat_ttl=30)
    job = w.submit("q", "f", failure_ttl=60)
    assert settle(w, w.dequeue("q"), w._core.failed(ValueError("bad"))) == [True]
    info = w.get_job(job.id)
    assert (info.status, info.attempts, info.result) == ("failed", 1, None)
    assert (info.error.type, info.error.message) == ("ValueError", "bad")
    assert info.expires_at == pytest.approx(info.ended_at + 60, abs=0.01)
    with pytest.raises(JobFailed, match="failed: ValueError: bad") as caught:
        w.wait_for_result(job.id, 1)
    assert (caught.value.status, caught.value.error) == ("failed", info.error)
    assert caught.value.info == info
    assert w.wait_for_job(job.id, 1) == info


def test_stop_requeues_a_job_and_the_next_delivery_counts_its_attempts(make: Any) -> None:
    w = worker(make, "q", heartbeat_ttl=30)
    job = w.submit("q", "f")
    w.submit("q", "g")
    assert w.stop_process(w.dequeue("q").id) is True
    assert status(w, job.id) == ("queued", 1)
    assert w.get_tasks("q")[0] == "\x1f" + job.id.partition("@")[2]  # back at the front
    p = w.dequeue("q")
    assert p.deliveries == 2 and status(w, job.id) == ("started", 2)


def test_a_delayed_job_is_scheduled_then_queued_and_a_retry_keeps_its_attempts(make: Any) -> None:
    w = worker(make, "q", heartbeat_ttl=30)  # its supervision turn promotes due jobs
    job = w.submit("q", "f", delay=0.3)
    assert (job.status, status(w, job.id)) == ("scheduled", ("scheduled", 0))
    (d,) = w.get_delayed("q")
    assert d.task == "\x1f" + job.id.partition("@")[2] and w.get_tasks("q") == []
    wait_for(lambda: status(w, job.id) == ("queued", 0), SOON, "the job promoted")
    assert w.server_time() > d.due - 0.005 and w.get_tasks("q") == [d.task]
    p = w.dequeue("q")
    assert status(w, job.id) == ("started", 1)
    assert w.stop_process(p.id, delay=0.5) is True  # a retry later
    assert status(w, job.id) == ("scheduled", 1)
    assert [x.deliveries for x in w.get_delayed("q")] == [1]
    wait_for(lambda: status(w, job.id) == ("queued", 1), SOON, "the retry promoted")
    p = w.dequeue("q")
    assert p.deliveries == 2 and status(w, job.id) == ("started", 2)


def test_a_dead_lettered_job_is_dead_until_requeued(make: Any) -> None:
    w = worker(make, "q", heartbeat_ttl=30)
    job = w.submit("q", "f")
    assert w.dead_letter_process(w.dequeue("q").id, error="x") is True
    info = w.get_job(job.id)
    assert (info.status, info.error.type, info.error.message) == ("dead", "", "x")
    assert info.expires_at is not None
    with pytest.raises(JobFailed) as caught:
        w.wait_for_result(job.id, 1)
    assert caught.value.status == "dead"
    assert w.requeue_dead("q") == 1
    info = w.get_job(job.id)
    assert (info.status, info.expires_at, info.ended) == ("queued", None, False)
    assert w.dequeue("q").deliveries == 1 and status(w, job.id) == ("started", 1)


@pytest.mark.parametrize("max_deliveries", [5, 1])
def test_the_job_of_a_dead_worker_is_reclaimed_or_dead(make: Any, max_deliveries: int) -> None:
    holder = worker(make, "q", heartbeat_ttl=30)
    peer = worker(make, max_deliveries=max_deliveries)
    job = holder.submit("q", "f")
    assert holder.dequeue("q") is not None
    peer.fail_worker(holder.worker_id)  # as a crash: the peer's max_deliveries applies
    info = peer.get_job(job.id)
    if max_deliveries == 1:
        assert (info.status, info.attempts, info.ended) == ("dead", 1, True)
        assert "max_deliveries" in info.error.message
        assert peer.get_dead_tasks("q") == ["\x1f" + job.id.partition("@")[2]]
    else:
        assert (info.status, info.attempts, info.ended) == ("queued", 1, False)
        again = worker(make, "q", heartbeat_ttl=30)
        assert again.dequeue("q").deliveries == 2
        assert status(again, job.id) == ("started", 2)
        assert again.get_job(job.id).worker == again.worker_id


def test_queued_and_scheduled_jobs_cancel_but_a_started_one_does_not(make: Any) -> None:
    w = worker(make, "q", heartbeat_ttl=30)
    started = w.submit("q", "s")
    p = w.dequeue("q")
    queued, scheduled, other = w.submit("q", "a"), w.submit("q", "b", delay=60), w.submit("q", "c")
    assert call(w, queued.cancel()) is True
    assert w.cancel_job(scheduled.id) is True
    assert w.cancel_tasks("q", "\x1f" + other.id.partition("@")[2]) == 1
    for j in (queued, scheduled, other):
        assert w.get_job(j.id).status == "cancelled" and w.get_job(j.id).ended
        with pytest.raises(JobFailed) as caught:
            w.wait_for_result(j.id, 1)
        assert caught.value.status == "cancelled"
        assert w.cancel_job(j.id) is False  # already ended
    assert (w.get_tasks("q"), w.count_delayed("q")) == ([], 0)
    assert w.cancel_job(started.id) is False
    assert status(w, started.id) == ("started", 1)
    assert w.finish_process(p.id) is True and status(w, started.id) == ("finished", 1)


def test_deleting_the_queue_drops_its_job_records(make: Any, r: Any, prefix: str) -> None:
    w = make()
    job = w.submit("q", "f", delay=60)
    w.submit("q", "g")
    w.delete_queue("q")
    assert w.get_job(job.id) is None and w.get_jobs("q") == []
    with pytest.raises(JobNotFound):
        w.wait_for_result(job.id, 1)
    k = Keys(prefix).queue("q")
    assert not r.exists(k.jobs, k.job_expiry, k.tasks, k.delayed)


# ---- submit: idempotent, checked --------------------------------------------------------------
def test_twenty_racing_submitters_of_one_job_id_create_it_once(make: Any) -> None:
    clients = [make() for _ in range(20)]
    barrier = threading.Barrier(len(clients))
    jobs: list[Any] = [None] * len(clients)

    def submit(i: int) -> None:
        barrier.wait(SOON)
        jobs[i] = clients[i].submit("q", "f", i, job_id="once")

    with threads(submit, *[(i,) for i in range(len(clients))]):
        pass
    assert {j.id for j in jobs} == {"q@once"} and {j.status for j in jobs} == {"queued"}
    (winner,) = [i for i, j in enumerate(jobs) if j.created]
    assert clients[0].get_tasks("q") == ["\x1fonce"]
    assert clients[0].get_job("q@once").args == [winner]
    assert [j.id for j in clients[0].get_jobs("q")] == ["q@once"]


def test_an_ended_job_is_returned_by_its_id_until_it_expires(make: Any) -> None:
    w = worker(make, "q", heartbeat_ttl=30)
    assert w.submit("q", "f", 1, job_id="k", result_ttl=0.3).created is True
    assert w.finish_process(w.dequeue("q").id) is True
    again = w.submit("q", "f", 2, job_id="k")
    assert (again.created, again.status, w.get_tasks("q")) == (False, "finished", [])
    assert w.get_job("q@k").args == [1]
    wait_for(lambda: w.get_job("q@k") is None, SOON, "the record expired")
    fresh = w.submit("q", "f", 3, job_id="k")  # the expired key is used again
    assert (fresh.created, fresh.status, w.get_job("q@k").args) == (True, "queued", [3])


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((), {"job_id": "a@b"}, ValueError, "job_id"),
        ((), {"job_id": ""}, ValueError, "job_id"),
        ((), {"job_id": "a\x1fb"}, ValueError, "job_id"),
        ((object(),), {}, TypeError, "'fn'"),
        (({1, 2},), {}, TypeError, "'fn'"),
        ((float("nan"),), {}, TypeError, "'fn'"),
        ((), {"x": object()}, TypeError, "'fn'"),
        ((), {"job_kwargs": {"x": {3}}}, TypeError, "'fn'"),
        ((), {"result_ttl": -1}, ValueError, "result_ttl"),
        ((), {"retry": 3}, TypeError, "retry"),
    ],
)
def test_bad_submits_raise_and_write_nothing(
    make: Any, r: Any, prefix: str, args: Any, kwargs: Any, error: type, match: str
) -> None:
    w = make()
    with pytest.raises(error, match=match):
        w.submit("q", "fn", *args, **kwargs)
    with pytest.raises(ValueError, match="marks a job"):
        w.enqueue("q", "\x1fx")
    with pytest.raises(ValueError, match="job_id"):
        w.get_job("no-at-sign")
    assert r.keys(f"{prefix}:*") == r.keys(f"{{{prefix}}}:*") == []


# ---- waiting ----------------------------------------------------------------------------------
def test_waits_for_ended_missing_and_unfinished_jobs_answer_without_polling(make: Any) -> None:
    w = worker(make, "q", heartbeat_ttl=30)
    waiter = make(poll_interval=30)  # only a pub/sub message (or the first read) can answer
    done, queued = w.submit("q", "f"), w.submit("q", "g")
    assert settle(w, w.dequeue("q"), w._core.finished([1, "a"])) == [True]
    started = time.monotonic()
    assert waiter.wait_for_result(done.id, 20) == [1, "a"]
    with pytest.raises(JobNotFound):
        waiter.wait_for_result("q@unknown", 20)
    with pytest.raises(JobNotFound):
        waiter.wait_for_result("never@used", 20)
    assert time.monotonic() - started < 5
    started = time.monotonic()
    with pytest.raises(JobWaitTimeout) as caught:
        waiter.wait_for_result(queued.id, 0.2)
    assert isinstance(caught.value, TimeoutError)
    assert 0.2 <= time.monotonic() - started < 5
    assert waiter.get_job(queued.id).status == "queued"


def test_a_wait_ends_at_its_timeout_while_redis_does_not_answer(
    make: Any, servers: Any, driver: str
) -> None:
    """A review of 0.7.3: under CLIENT PAUSE a wait with timeout=1 took 10 s (the subscribe's
    wait, then a bare WorqrError) or the whole pause (the read's retries). Now the subscribe
    and the read's retries stop at the deadline, and JobWaitTimeout comes; asyncio also cuts
    the read in flight, a thread's read ends at the socket timeout (5 s)."""
    s = servers()
    w = make(url=s.url)
    first, later = w.submit("q", "f"), w.submit("q2", "f")
    with pytest.raises(JobWaitTimeout):
        w.wait_for_result(later.id, 0)  # subscribed to q2's job ends
    s.pause()  # SIGSTOP: nothing answers
    try:
        for job, bound in ((first, 4.0), (later, 4.0 if driver == "async" else 8.0)):
            started = time.monotonic()
            with pytest.raises(JobWaitTimeout):
                w.wait_for_result(job.id, 1)
            assert 1.0 <= time.monotonic() - started < bound  # not 10 s, nor until Redis answers
    finally:
        s.resume()
    assert w.get_job(first.id).status == "queued"


def test_an_end_wakes_waiters_on_another_client_by_pub_sub(make: Any, r: Any, prefix: str) -> None:
    w = worker(make, "q", heartbeat_ttl=30)
    waiter = make(poll_interval=30)
    ok, bad = w.submit("q", "f"), w.submit("q", "g")
    got: dict[str, Any] = {}

    def wait(jid: str) -> None:
        started = time.monotonic()
        try:
            got[jid] = waiter.wait_for_result(jid, 25)
        except JobFailed as exc:
            got[jid] = exc
        got[jid + " took"] = time.monotonic() - started

    with threads(wait, (ok.id,), (bad.id,)):
        wait_for(lambda: r.exists(Keys(prefix).queue("q").job_waiters), SOON, "a waiter")
        p, q = w.dequeue("q"), w.dequeue("q")
        assert settle(w, p, w._core.finished(42)) == [True]
        assert settle(w, q, w._core.failed(KeyError("k"))) == [True]
    assert got[ok.id] == 42
    assert isinstance(got[bad.id], JobFailed) and got[bad.id].error.type == "KeyError"
    assert got[ok.id + " took"] < 10 and got[bad.id + " took"] < 10  # not the 30 s poll


def test_closing_the_client_ends_a_wait_with_client_closed(make: Any, r: Any, prefix: str) -> None:
    """A wait with no timeout, for a job no worker runs, ends with ``ClientClosed`` when
    another thread closes the client (woken by the close, not by its 30 s poll)."""
    w = make(poll_interval=30)
    job = w.submit("q", "f")
    got: list[BaseException] = []

    def wait() -> None:
        try:
            w.wait_for_result(job.id)
        except BaseException as exc:
            got.append(exc)

    t = threading.Thread(target=wait, daemon=True)  # daemon: a regression must not hang
    t.start()
    wait_for(lambda: r.exists(Keys(prefix).queue("q").job_waiters), SOON, "a waiter")
    started = time.monotonic()
    w.close()
    t.join(SOON)
    assert not t.is_alive(), "the wait went on after close()"
    assert time.monotonic() - started < 10  # not the 30 s poll
    assert len(got) == 1 and isinstance(got[0], ClientClosed) and job.id in str(got[0]), got


def test_threads_waiting_at_once_on_one_client_share_one_listener(make: Any) -> None:
    """The sync client is thread-safe: threads that wait at once on a fresh client start one
    pub/sub listener between them, and close() ends it (wakes it) at once."""
    before = {t for t in threading.enumerate() if t.name == "worqr-listener"}
    w = make(poll_interval=5)
    jobs = [w.submit("q", "f").id for _ in range(8)]
    barrier, timeouts = threading.Barrier(len(jobs)), []

    def wait(jid: str) -> None:
        barrier.wait(SOON)
        with contextlib.suppress(JobWaitTimeout):
            w.wait_for_result(jid, 0.5)
            return
        timeouts.append(jid)

    with threads(wait, *[(j,) for j in jobs]):
        pass
    assert sorted(timeouts) == sorted(jobs)
    listeners = [t for t in threading.enumerate() if t.name == "worqr-listener" and t not in before]
    started = time.monotonic()
    w.close()
    took = time.monotonic() - started
    alive = [t for t in listeners if t.is_alive()]
    assert len(listeners) <= 1, f"{len(listeners)} listener threads for one client"
    assert (took < 2, alive) == (True, []), f"close() took {took:.1f} s, {len(alive)} left"


def test_a_thousand_asyncio_waiters_share_one_client_and_few_connections(
    server: Any, r: Any, prefix: str
) -> None:
    n, name = 1000, f"{prefix}-waiter"

    async def main() -> tuple[list[Any], list[Any], float]:
        named = aredis.Redis.from_url(server.url, client_name=name)
        waiter = AsyncWorqr(redis=named, prefix=prefix, poll_interval=30)
        producer = AsyncWorqr(server.url, prefix=prefix, **FAST)
        tasks: list[asyncio.Task[Any]] = []
        try:
            jobs = [await producer.submit("q", "square", i) for i in range(n)]
            tasks = [asyncio.create_task(waiter.wait_for_result(j.id, 25)) for j in jobs]
            jl, deadline = Keys(prefix).queue("q").job_waiters, time.monotonic() + SOON
            while not r.exists(jl):  # the waiters read their jobs (and say they listen)
                assert time.monotonic() < deadline and not any(t.done() for t in tasks)
                await asyncio.sleep(0.01)
            await producer.start_worker()
            await producer.start_work("q")
            procs = await producer.dequeue_many("q", n)
            core = producer._core
            outcomes = {
                p.id: core.finished(core.parse_job("q", p.task, p.job).args[0] ** 2) for p in procs
            }
            started = time.monotonic()
            assert await producer._run(core.finish_processes(list(outcomes), None, outcomes))
            results = await asyncio.wait_for(asyncio.gather(*tasks), SOON)
            took = time.monotonic() - started
            return results, [c for c in r.client_list() if c.get("name") == name], took
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await waiter.close()
            await named.aclose()
            await producer.close()

    results, connections, took = asyncio.run(main())
    assert results == [i * i for i in range(n)]
    assert took < 10  # woken by pub/sub, not the 30 s poll
    assert sum(1 for c in connections if int(c.get("sub", 0)) > 0) == 1  # one subscriber
    assert len(connections) <= 10, (
        f"{len(connections)} connections for one client's {n} waiters: each concurrent read "
        "takes a data connection of its own, up to the pool's max_connections"
    )


# ---- expiry and listing -----------------------------------------------------------------------
def test_ended_records_expire_and_later_ends_trim_them_two_at_a_time(
    make: Any, r: Any, prefix: str
) -> None:
    w = worker(make, "q", heartbeat_ttl=30)
    k = Keys(prefix).queue("q")
    short = [w.submit("q", "f", i, job_id=f"s{i}", result_ttl=0.2).id for i in range(3)]
    for _ in short:
        assert w.finish_process(w.dequeue("q").id) is True
    info = w.get_job(short[-1])
    assert info is not None and info.expires_at == pytest.approx(info.ended_at + 0.2, abs=0.01)
    wait_for(lambda: all(w.get_job(j) is None for j in short), SOON, "the records expired")
    assert r.zcard(k.job_expiry) == 3 and {f"s{i}" for i in range(3)} <= set(r.hkeys(k.jobs))

    def kept() -> set[str]:
        return {f for f in r.hkeys(k.jobs) if f.startswith("s")}

    w.submit("q", "g", job_id="long")
    assert w.finish_process(w.dequeue("q").id) is True  # an end drops at most 2 expired
    assert len({f.partition("\x1f")[0] for f in kept()}) == 1 and r.zcard(k.job_expiry) == 2
    w.submit("q", "h", job_id="next")
    assert w.finish_process(w.dequeue("q").id) is True
    assert kept() == set() and r.zrange(k.job_expiry, 0, -1) == ["long", "next"]
    assert w.get_job("q@long").status == "finished"


def test_get_jobs_lists_the_queues_jobs_by_status(make: Any) -> None:
    w = worker(make, "q", heartbeat_ttl=30)
    a, b, c, d = (w.submit("q", f) for f in "abcd")
    e = w.submit("q", "e", delay=60)
    w.submit("other", "x")
    assert w.finish_process(w.dequeue("q").id) is True  # a
    w.dequeue("q")  # b
    assert w.cancel_job(d.id) is True
    by = {s: {j.id for j in w.get_jobs("q", status=s)} for s in ("finished", "started", "queued")}
    assert by == {"finished": {a.id}, "started": {b.id}, "queued": {c.id}}
    assert [j.id for j in w.get_jobs("q", status="scheduled")] == [e.id]
    assert [j.id for j in w.get_jobs("q", status="cancelled")] == [d.id]
    assert w.get_jobs("q", status="failed") == []
    everything = w.get_jobs("q")
    assert {j.id for j in everything} == {a.id, b.id, c.id, d.id, e.id}
    times = [j.enqueued_at for j in everything]
    assert times == sorted(times, reverse=True)  # newest first
    assert len(w.get_jobs("q", limit=2)) == 2
    with pytest.raises(ValueError, match="status"):
        w.get_jobs("q", status="running")
    with pytest.raises(ValueError, match="limit"):
        w.get_jobs("q", limit=0)
