"""Delivery counts and dead letters, retry-safe dequeue, retries while Redis is down."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import redis

from worqr_py.core import scripts
from worqr_py.core.keys import Keys

from .conftest import worker
from .support import sha, wait_for


def test_stop_process_dead_letters_after_max_deliveries(make: Any) -> None:
    w = worker(make, "q", max_deliveries=3)
    kinds: list[tuple[str, str]] = []
    w.on("q", lambda kind, msg: kinds.append((kind, msg)))
    dead: list[tuple[str, str]] = []
    w.events.on("dead", lambda queue, task: dead.append((queue, task)))
    w.enqueue("q", ["poison", "fine"])
    for n in (1, 2, 3):
        p = w.dequeue("q")
        assert (p.task, p.deliveries) == ("poison", n)
        assert w.stop_process(p.id) is True
    assert w.get_tasks("q") == ["fine"]
    assert w.get_dead_tasks("q") == ["poison"]
    assert dead == [("q", "poison")]
    wait_for(lambda: ("dead", "poison") in kinds, what="the dead event on the queue channel")


def test_crash_returns_dead_letter_but_a_graceful_leave_never_does(make: Any) -> None:
    peer = worker(make, max_deliveries=2)
    peer.enqueue("q", "t")
    for n in (1, 2):
        holder = worker(make, "q", max_deliveries=2)
        assert holder.dequeue("q").deliveries == n
        peer.fail_worker(holder.worker_id)  # as a crash: the peer's max_deliveries applies
    assert peer.get_tasks("q") == [] and peer.get_dead_tasks("q") == ["t"]
    peer.requeue_dead("q")
    graceful = worker(make, "q", max_deliveries=1)
    assert graceful.dequeue("q").deliveries == 1
    assert graceful.fail_worker() == 1  # a graceful leave: back in the queue, not dead
    assert graceful.get_tasks("q") == ["t"]


def test_no_max_deliveries_never_dead_letters(make: Any) -> None:
    w = worker(make, "q", max_deliveries=None)
    w.enqueue("q", "t")
    for n in range(1, 8):
        p = w.dequeue("q")
        assert p.deliveries == n
        w.stop_process(p.id)
    assert w.get_dead_tasks("q") == []


def test_requeue_and_purge_dead_letters(make: Any, r: Any, prefix: str) -> None:
    w = make()
    dead = Keys(prefix).queue("q").dead
    r.rpush(dead, "a", "", "b", "a")
    assert w.get_dead_tasks("q") == ["a", "", "b", "a"]
    assert w.requeue_dead("q", "a") == 2
    assert w.get_tasks("q") == ["a", "a"] and w.get_dead_tasks("q") == ["", "b"]
    assert w.purge_dead("q", "") == 1  # the empty task is a task like any other
    assert w.requeue_dead("q") == 1
    assert w.get_tasks("q") == ["a", "a", "b"]
    r.rpush(dead, "x", "y")
    assert w.purge_dead("q") == 2 and w.get_dead_tasks("q") == []


def test_a_retried_dequeue_answers_again_instead_of_taking_more(
    make: Any, r: Any, prefix: str
) -> None:
    w = worker(make, "q")
    w.init()  # every script loaded: the test runs one by hand
    w.enqueue("q", ["first", "second"])
    k = Keys(prefix).queue("q")
    keys = k.dequeue_keys(w.worker_id)
    args = (len(keys), *keys, w.worker_id, 900, 1, k.done, "", k.events, "{x}:wake:", "q", 100)
    args += (k.job_ends,)
    dequeue = sha(r, scripts.DEQUEUE)
    assert r.evalsha(dequeue, *args) == [[], -1, "first", 1]
    assert r.evalsha(dequeue, *args) == [[], -1, "first", 1]  # its reply was "lost"
    assert w.get_tasks("q") == ["second"]


def test_calls_retry_while_redis_restarts(make: Any, servers: Any) -> None:
    s = servers()
    w = make(url=s.url, retry_timeout=10)
    assert w.enqueue("q", "before") == 1
    s.kill()
    restarter = threading.Timer(0.5, s.start)
    restarter.start()
    started = time.monotonic()
    assert w.enqueue("q", "during the outage") == 1  # the restart lost "before"
    assert time.monotonic() - started >= 0.4  # it waited for the server
    restarter.join()


def test_without_retries_an_outage_raises_at_once(make: Any, servers: Any) -> None:
    s = servers()
    w = make(url=s.url, retry_timeout=0)
    w.count_queue("q")
    s.kill()
    with pytest.raises(redis.ConnectionError):
        w.count_queue("q")


def test_trusted_until_is_ahead_while_alive_and_zero_after(make: Any) -> None:
    w = worker(make)
    assert w.trusted_until > time.monotonic()
    w.fail_worker()
    assert w.trusted_until == 0.0


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"max_deliveries": 0}, ValueError),
        ({"max_deliveries": "5"}, TypeError),
        ({"retry_timeout": -1}, ValueError),
    ],
)
def test_reliability_options_are_checked(make: Any, options: dict[str, Any], error: type) -> None:
    with pytest.raises(error, match=next(iter(options))):
        make(**options)
