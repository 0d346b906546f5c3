"""``run()`` on many queues: taking work costs what the queues *with* work cost, not what the
joined queues cost; queues with work share the worker fairly; a lost notification is caught by
the idle poll. Both drivers, real Redis; dequeue calls are counted by a wrapper around the
client's ``_take`` (the runtime's dequeue_many; instrumentation only)."""

from __future__ import annotations

import inspect
import threading
import time
from typing import Any

from worqr_py import Process
from worqr_py.core.keys import Keys

from .support import running, wait_for


def count_dequeues(w: Any) -> list[int]:
    """Count the runner's dequeue calls (``calls[0]``) by wrapping the client's method."""
    inner = getattr(w, "inner", w)  # the AsyncWorqr behind the blocking facade
    original = inner._take
    calls = [0]
    if inspect.iscoroutinefunction(original):

        async def counted_async(*a: Any, **k: Any) -> Any:
            calls[0] += 1
            return await original(*a, **k)

        inner._take = counted_async
    else:

        def counted(*a: Any, **k: Any) -> Any:
            calls[0] += 1
            return original(*a, **k)

        inner._take = counted
    return calls


def working(w: Any) -> set[str]:
    return set(getattr(w, "inner", w)._core.worker.queues)


def test_work_in_one_of_a_thousand_queues_costs_one_dequeue_per_task(make: Any) -> None:
    queues = [f"tenant-{i}" for i in range(1000)]
    busy = queues[637]
    w = make(heartbeat_interval=0.5, heartbeat_ttl=5.0, poll_interval=60)
    producer = make()
    calls = count_dequeues(w)
    gate = threading.Event()
    done: list[str] = []

    def handler(p: Process) -> None:
        gate.wait(30)  # the first task waits until the producer has enqueued them all
        done.append(p.task)

    started = time.monotonic()
    with running(w, queues, handler):
        wait_for(lambda: len(working(w)) == 1000, timeout=60, what="1,000 queues joined")
        joined = time.monotonic() - started
        before = calls[0]
        for i in range(200):  # one by one: 200 RPUSHes, 200 work events
            producer.enqueue(busy, f"t{i}")
        gate.set()
        wait_for(lambda: len(done) == 200, timeout=60, what="200 tasks done")
        per_task = (calls[0] - before) / 200
    print(f"\njoined 1,000 queues in {joined:.2f} s; {per_task:.3f} dequeue calls per task")
    assert sorted(done) == sorted(f"t{i}" for i in range(200))
    assert per_task <= 1.1, per_task


def test_queues_with_work_take_turns(make: Any) -> None:
    w, producer = make(poll_interval=60), make()
    producer.enqueue("a", [f"a{i}" for i in range(50)])
    producer.enqueue("b", [f"b{i}" for i in range(50)])
    order: list[str] = []
    with running(w, ["a", "b"], lambda p: order.append(p.queue), concurrency=1):
        wait_for(lambda: len(order) == 100, timeout=30, what="100 tasks")
    assert set(order[:20]) == {"a", "b"}, order[:20]
    assert order.count("a") == order.count("b") == 50


def test_a_task_whose_notification_was_lost_is_done_by_the_idle_poll(
    make: Any, r: Any, prefix: str
) -> None:
    poll = 0.5
    w = make(heartbeat_interval=0.1, heartbeat_ttl=1.0, poll_interval=poll)
    done: list[str] = []
    with running(w, [f"q{i}" for i in range(20)], lambda p: done.append(p.task)):
        wait_for(lambda: len(working(w)) == 20, what="20 queues joined")
        r.rpush(Keys(prefix).queue("q7").tasks, "unannounced")  # no PUBLISH: nobody is told
        wait_for(lambda: done == ["unannounced"], timeout=4 * poll, what="the unannounced task")
