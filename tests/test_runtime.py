"""The runtime (``run``/``shutdown``) and persistent-task ownership (``own``), both drivers."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import pytest

from worqr_py import Process
from worqr_py.core.keys import Keys

from .conftest import FAST
from .support import wait_for


class Ledger:
    """What every handler did, thread-safe."""

    def __init__(self) -> None:
        self.done: Counter[str] = Counter()
        self.seen: list[Process] = []
        self.lock = threading.Lock()

    def add(self, p: Process) -> None:
        with self.lock:
            self.done[p.task] += 1
            self.seen.append(p)


def start_run(w: Any, *args: Any, **kw: Any) -> threading.Thread:
    t = threading.Thread(target=w.run, args=args, kwargs=kw, daemon=True)
    t.start()
    wait_for(lambda: w.alive, what="the runner's worker")
    return t


def test_run_does_every_task_once_and_finishes_it(make: Any) -> None:
    w, producer = make(**FAST), make()
    ledger = Ledger()
    producer.enqueue("a", [f"a{i}" for i in range(30)])
    t = start_run(w, ["a", "b"], ledger.add, concurrency=2)
    producer.enqueue("b", [f"b{i}" for i in range(30)])
    wait_for(lambda: sum(ledger.done.values()) == 60, what="60 tasks")
    w.shutdown()
    t.join(10)
    assert not t.is_alive()
    assert ledger.done == Counter([f"a{i}" for i in range(30)] + [f"b{i}" for i in range(30)])
    assert producer.get_workers() == []  # shutdown failed the worker: nothing held
    assert not [k for k in producer.snapshot(["a", "b"]) if ":p:" in k]


def test_a_raising_handler_returns_the_task_to_the_front(
    make: Any, caplog: pytest.LogCaptureFixture
) -> None:
    w, producer = make(**FAST), make()
    ledger = Ledger()

    def flaky(p: Process) -> None:
        if p.task == "bad" and p.deliveries == 1:
            raise RuntimeError("first try fails")
        ledger.add(p)

    producer.enqueue("q", ["bad", "next"])
    t = start_run(w, "q", flaky)
    wait_for(lambda: len(ledger.seen) == 2, what="both tasks")
    w.shutdown()
    t.join(10)
    assert [(p.task, p.deliveries) for p in ledger.seen] == [("bad", 2), ("next", 1)]
    assert "handler failed on 'bad'" in caplog.text


def test_shutdown_lets_in_flight_handlers_finish_and_takes_no_new_work(make: Any) -> None:
    w, producer = make(**FAST), make()
    inside, release = threading.Event(), threading.Event()
    ledger = Ledger()

    def handler(p: Process) -> None:
        inside.set()
        release.wait(10)
        ledger.add(p)

    producer.enqueue("q", ["first", "second", "third"])
    t = start_run(w, "q", handler, grace=10)
    wait_for(inside.is_set, what="a handler running")
    w.shutdown()
    release.set()
    t.join(10)
    assert [p.task for p in ledger.seen] == ["first"]
    assert producer.get_tasks("q") == ["second", "third"]


def test_past_the_grace_period_the_running_task_goes_back_to_the_front(make: Any) -> None:
    w, producer = make(**FAST), make()
    inside = threading.Event()
    producer.enqueue("q", ["stuck", "other"])
    t = start_run(w, "q", lambda p: (inside.set(), time.sleep(3)), grace=0.2)
    wait_for(inside.is_set, what="the stuck handler")
    started = time.monotonic()
    w.shutdown()
    t.join(10)
    assert time.monotonic() - started < 2.5  # did not wait for the handler
    assert producer.get_tasks("q") == ["stuck", "other"]


def test_concurrency_runs_handlers_in_parallel(make: Any) -> None:
    w, producer = make(**FAST), make()
    barrier = threading.Barrier(3, timeout=10)
    ledger = Ledger()

    def handler(p: Process) -> None:
        barrier.wait()  # passes only if three handlers run at once
        ledger.add(p)

    producer.enqueue("q", ["1", "2", "3"])
    t = start_run(w, "q", handler, concurrency=3)
    wait_for(lambda: len(ledger.seen) == 3, what="three parallel handlers")
    w.shutdown()
    t.join(10)


def test_the_runner_re_registers_after_its_worker_fails(make: Any, r: Any, prefix: str) -> None:
    w, producer = make(**FAST), make()
    ledger = Ledger()
    t = start_run(w, "q", ledger.add)
    first = w.worker_id
    r.delete(Keys(prefix).heartbeat(first))  # its heartbeat is lost
    wait_for(lambda: w.alive and w.worker_id != first, what="a new worker id")
    producer.enqueue("q", "after")
    wait_for(lambda: ledger.done["after"] == 1, what="work done by the new id")
    w.shutdown()
    t.join(10)


def test_run_rejects_bad_arguments(make: Any) -> None:
    w = make(**FAST)
    with pytest.raises(TypeError, match="queues"):
        w.run([], print)
    with pytest.raises(TypeError, match="handler"):
        w.run("q", "nope")
    with pytest.raises(ValueError, match="concurrency"):
        w.run("q", print, concurrency=0)
    with pytest.raises(ValueError, match="grace"):
        w.run("q", print, grace=-1)
    with pytest.raises(TypeError, match="reregister"):
        w.run("q", print, reregister="no")


def test_each_persistent_task_has_exactly_one_live_owner(make: Any, r: Any, prefix: str) -> None:
    producer = make()
    producer.enqueue("conns", [f"conn-{i}" for i in range(5)])
    owners = [make(**FAST) for _ in range(3)]
    held: list[set[str]] = [set() for _ in owners]
    lost: list[str] = []
    for w, mine in zip(owners, held, strict=True):
        w.own(
            "conns",
            lambda p, m=mine: m.add(p.task),
            lambda p, m=mine: (m.discard(p.task), lost.append(p.task)),
            limit=2,
        )
    wait_for(lambda: sum(map(len, held)) == 5, what="all five owned")
    assert sorted(t for m in held for t in m) == [f"conn-{i}" for i in range(5)]
    victim = max(range(3), key=lambda i: len(held[i]))
    gone = set(held[victim])
    r.delete(Keys(prefix).heartbeat(owners[victim].worker_id))  # the owner dies
    wait_for(lambda: set(lost) == gone, what="on_lost for the victim's tasks")

    def settled() -> bool:
        names = sorted(t for m in held for t in m)
        return names == [f"conn-{i}" for i in range(5)]

    wait_for(settled, what="every task owned again, once")
    for i in range(5):  # Redis agrees: one live process per task
        assert len(producer.get_matching_processes(f"conn-{i}", queue="conns")) == 1
