"""Throughput counters kept in Redis by the scripts that move tasks (lua/include/tally.lua),
and the read-only views over them (``queue_stats``, ``throughput``), both drivers, on a real
server: every kind counted once per task, per minute of the counting client's clock, bounded
(a minute's hash expires after 62 minutes), and bad arguments refused before any read."""

from __future__ import annotations

from typing import Any

import pytest

from worqr_py import Retry
from worqr_py.core.keys import Keys
from worqr_py.core.model import Counts

from .conftest import FAST
from .job_worker import FUNCTIONS
from .support import running, task_log, wait_for

T0 = 1_800_000_000.0  # a wall clock on a whole minute


def at(w: Any, seconds: float) -> None:
    """Set the wall clock ``w`` counts throughput by (its core's)."""
    inner = getattr(w, "inner", w)
    inner._core.wall = lambda: seconds


def test_every_kind_is_counted_once_per_task(make: Any, r: Any, prefix: str) -> None:
    w = make(**FAST)
    w.enqueue("q", ["a", "b", "c", "d"])  # 4 in
    w.enqueue("q", "e", delay=60)  # 1 in (scheduled)
    w.enqueue("q", "u", unique=True)  # 1 in
    w.start_worker()
    w.start_work("q")
    assert w.finish_process(w.dequeue("q").id)  # 1 done
    assert w.stop_process(w.dequeue("q").id, delay=30)  # 1 retried
    assert w.dead_letter_process(w.dequeue("q").id, error=ValueError("x"))  # 1 failed
    done = w.finish_processes([p.id for p in w.dequeue_many("q", 2)])  # 2 done
    assert done == [True, True]
    (stats,) = w.queue_stats(["q"])
    assert stats.counts == Counts(enqueued=6, done=3, failed=1, retried=1)
    assert (stats.length, stats.delayed, stats.in_process, stats.dead) == (0, 2, 0, 1)
    assert stats.workers == [w.worker_id]
    minutes = w.throughput("q")
    assert len(minutes) == 60 and minutes[-1].counts == stats.counts
    assert sum(m.counts.done for m in minutes[:-1]) == 0
    assert w.queue_stats() == [stats]  # every queue of the prefix
    w.enqueue("q", "held")
    assert w.dequeue("q") is not None
    (held,) = w.queue_stats(["q"])
    assert (held.length, held.in_process, held.counts.enqueued) == (0, 1, 7)


def test_counts_go_to_the_minute_of_the_counting_clock(make: Any, r: Any, prefix: str) -> None:
    w = make(**FAST)
    at(w, T0)
    w.enqueue("q", ["a", "b"])
    at(w, T0 + 60)
    w.enqueue("q", "c")
    at(w, T0 + 130)
    w.enqueue("q", ["d", "e", "f"])
    reader = make()
    at(reader, T0 + 179)
    minutes = reader.throughput("q", 4)
    assert [m.at for m in minutes] == [T0 - 60, T0, T0 + 60, T0 + 120]
    assert [m.counts.enqueued for m in minutes] == [0, 2, 1, 3]
    k = Keys(prefix).queue("q")
    for minute in range(int(T0 // 60), int(T0 // 60) + 3):  # bounded: each expires
        assert 0 < r.pttl(k.metrics_minute(minute)) <= 3_720_000
    assert 3_720_000 < r.pttl(k.metrics) <= 30 * 86_400_000  # kept 30 days past a count


def test_a_runner_s_jobs_and_retries_are_counted(make: Any, prefix: str) -> None:
    w, producer = make(**FAST), make()
    jobs = [producer.submit("jq", "add", 1, 2) for _ in range(3)]
    bad = producer.submit("jq", "boom", "no", retry=Retry(max=1, backoff=[0.01]))
    with _jobs(w, "jq"):
        assert [producer.wait_for_result(j.id, 10) for j in jobs] == [3, 3, 3]
        wait_for(lambda: producer.get_job(bad.id).status == "failed", what="the failure")
    (stats,) = producer.queue_stats(["jq"])
    assert stats.counts == Counts(enqueued=4, done=3, failed=1, retried=1)


class _jobs:
    """``w.run_jobs(FUNCTIONS, [queue])`` in a thread for a ``with`` block."""

    def __init__(self, w: Any, queue: str) -> None:
        import threading

        self.w, self.queue = w, queue
        self.t = threading.Thread(target=self._run, daemon=True)
        self.errors: list[BaseException] = []

    def _run(self) -> None:
        try:
            self.w.run_jobs(FUNCTIONS, [self.queue], grace=5)
        except BaseException as exc:  # reported on exit
            self.errors.append(exc)

    def __enter__(self) -> _jobs:
        self.t.start()
        wait_for(lambda: self.w.alive or not self.t.is_alive(), what="the job runner")
        return self

    def __exit__(self, *exc: Any) -> None:
        self.w.shutdown()
        self.t.join(15)
        assert not self.t.is_alive(), "run_jobs did not return after shutdown()"
        assert not self.errors, self.errors


def test_a_plain_runner_counts_what_it_finishes(make: Any, prefix: str) -> None:
    w, producer = make(**FAST), make()
    done, handler = task_log()
    with running(w, "p", handler):
        producer.enqueue("p", [str(i) for i in range(20)])
        wait_for(lambda: len(done) == 20, what="20 tasks done")
        wait_for(lambda: producer.queue_stats(["p"])[0].counts.done == 20, what="counted")
    assert producer.queue_stats(["p"])[0].counts == Counts(enqueued=20, done=20)


@pytest.mark.parametrize("minutes", [0, 61, True, 1.5, "5"])
def test_bad_minutes_are_refused_naming_the_argument(make: Any, minutes: Any) -> None:
    w = make()
    with pytest.raises(ValueError, match="minutes"):
        w.throughput("q", minutes)


def test_bad_queue_names_are_refused(make: Any) -> None:
    w = make()
    with pytest.raises((ValueError, TypeError), match="queue"):
        w.queue_stats([""])
    with pytest.raises((ValueError, TypeError), match="queue"):
        w.throughput("")


def test_reads_take_a_limit(make: Any) -> None:
    """What a dashboard shows of a long queue: the first ``limit`` entries, not all."""
    w = make()
    w.enqueue("q", list("abcde"))
    w.enqueue("q", ["x", "y", "z"], delay=60)
    assert w.get_tasks("q", limit=2) == ["a", "b"]
    assert [d.task for d in w.get_delayed("q", limit=2)] == ["x", "y"]
    w.start_worker()
    w.start_work("q")
    for _ in range(3):
        assert w.dead_letter_process(w.dequeue("q").id, error=ValueError("e"))
    dead = w.get_dead("q", limit=2)
    assert [d.task for d in dead] == ["a", "b"]
    assert (dead[0].error_type, dead[0].error_message) == ("ValueError", "e")
    assert w.get_dead("q") == w.get_dead("q", limit=3)
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="limit"):
            w.get_tasks("q", limit=bad)
        with pytest.raises(ValueError, match="limit"):
            w.get_dead("q", limit=bad)
