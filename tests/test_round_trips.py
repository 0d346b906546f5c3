"""Batch APIs and round-trip counts (never timings): a busy worker costs about one round trip
per task, and finishing many processes costs one round trip."""

from __future__ import annotations

from typing import Any

import pytest

from worqr_py import Process

from .conftest import FAST
from .support import running, wait_for


def reads(r: Any) -> int:
    """Client socket reads the server has processed: one per round trip (a pipeline is one)."""
    return int(r.info("stats")["total_reads_processed"])


def test_dequeue_many_can_finish_the_previous_batch_in_the_same_call(make: Any) -> None:
    lost: list[Process] = []
    w = make(**FAST)
    w.events.on("lost", lost.append)
    w.start_worker()
    w.start_work("q")
    w.enqueue("q", [str(i) for i in range(6)])
    first = w.dequeue_many("q", 3)
    second = w.dequeue_many("q", 3, finish=[p.id for p in first])
    assert [p.task for p in second] == ["3", "4", "5"]
    assert [p.task for p in w.get_matching_processes("0")] == []  # finished
    assert w.processes == second and lost == []
    assert w.dequeue_many("q", 3, finish={p.id for p in second}) == []  # any iterable of ids
    assert not [k for k in w.snapshot(["q"]) if ":p:" in k]  # nothing left in process


def test_finish_processes_settles_many_queues_at_once_and_is_fenced(make: Any) -> None:
    a, b = make(**FAST), make(**FAST)
    lost: list[Process] = []
    a.events.on("lost", lost.append)
    for w in (a, b):
        w.start_worker()
        w.start_work("q1")
        w.start_work("q2")
    a.enqueue("q1", ["x", "y"])
    a.enqueue("q2", "z")
    px, pz = a.dequeue("q1"), a.dequeue("q2")
    py = b.dequeue("q1")
    b.fail_worker(a.worker_id)  # a loses x and z
    assert a.finish_processes([px.id, pz.id, py.id]) == [False, False, False]
    assert b.finish_processes([py.id]) == [True]
    assert {p.task for p in lost} == {"x", "z"}
    with pytest.raises(TypeError, match="process_ids"):
        a.finish_processes("not-a-list")


def test_a_finish_id_from_another_queue_is_rejected(make: Any) -> None:
    w = make(**FAST)
    w.start_worker()
    w.start_work("q1")
    w.start_work("q2")
    w.enqueue("q1", "a")
    p = w.dequeue("q1")
    with pytest.raises(ValueError, match="not on queue"):
        w.dequeue_many("q2", 1, finish=[p.id])


@pytest.mark.parametrize(("prefetch", "most"), [(1, 1.1), (10, 0.15)])
def test_a_busy_worker_costs_about_one_round_trip_per_task(
    make: Any, servers: Any, prefetch: int, most: float
) -> None:
    s = servers()
    r = s.client()
    w = make(url=s.url, heartbeat_interval=5.0, heartbeat_ttl=15.0, poll_interval=60)
    w.enqueue("q", [str(i) for i in range(1000)])
    marks: dict[int, int] = {}
    count = 0

    def handler(p: Process) -> None:
        nonlocal count
        count += 1
        if count in (100, 900):
            marks[count] = reads(r)  # the INFO itself adds one read: negligible over 800
        if count == 1000:
            w.shutdown()

    with running(w, "q", handler, prefetch=prefetch):
        wait_for(lambda: len(marks) == 2, timeout=30, what="900 tasks")
    per_task = (marks[900] - marks[100]) / 800
    assert per_task <= most, per_task
