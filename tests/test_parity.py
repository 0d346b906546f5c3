"""Worqr parity features, done right: unique tasks, done events with results, permanent
workers. Both drivers, real Redis."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from worqr_py import Worqr
from worqr_py.core.keys import Keys

from .conftest import FAST, worker
from .support import numsub, on_cluster, wait_for


def test_unique_enqueue_returns_whether_it_was_queued(make: Any) -> None:
    w = worker(make, "q")
    assert w.enqueue("q", "t", unique=True) is True
    assert w.enqueue("q", "t", unique=True) is False  # queued already
    assert w.enqueue("other", "t", unique=True) is True  # the lock is per queue
    p = w.dequeue("q")
    assert w.enqueue("q", "t", unique=True) is False  # in process
    assert w.finish_process(p.id)
    assert w.enqueue("q", "t", unique=True) is True  # the last copy left: released
    assert w.get_tasks("q") == ["t"]


def test_racing_producers_queue_a_unique_task_once(make: Any) -> None:
    producers = [make() for _ in range(20)]
    barrier = threading.Barrier(20)
    answers: list[bool] = []

    def race(w: Any) -> None:
        barrier.wait()
        answers.append(w.enqueue("q", "only-once", unique=True))

    threads = [threading.Thread(target=race, args=(w,)) for w in producers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(answers) == [False] * 19 + [True]
    assert producers[0].get_tasks("q") == ["only-once"]


def test_plain_copies_are_not_looked_for(make: Any) -> None:
    """unique=True looks only at the lock (O(1)); plain copies are not searched for (that was
    a scan of the whole queue inside Redis). Copies are equal strings, so the lock travels
    with the first copy delivered after it was taken, and leaves with that one."""
    w = worker(make, "q")
    w.enqueue("q", "t")  # a plain copy
    assert w.enqueue("q", "t", unique=True) is True  # plain copies are not looked for
    assert w.enqueue("q", "t", unique=True) is False  # a unique copy holds the lock
    first, second = w.dequeue("q"), w.dequeue("q")
    assert w.enqueue("q", "t", unique=True) is False
    assert w.finish_process(second.id)  # the copy without the lock
    assert w.enqueue("q", "t", unique=True) is False
    assert w.finish_process(first.id)  # the lock leaves with its copy
    assert w.enqueue("q", "t", unique=True) is True


def test_returned_unique_tasks_keep_their_lock(make: Any) -> None:
    w, peer = worker(make, "q"), worker(make)
    w.enqueue("q", "t", unique=True)
    p = w.dequeue("q")
    w.stop_process(p.id)  # back at the front
    assert w.enqueue("q", "t", unique=True) is False
    w.enqueue("q", "t")  # a plain copy behind it
    p = w.dequeue("q")
    peer.fail_worker(w.worker_id)  # reclaimed: back at the front again
    assert w.enqueue("q", "t", unique=True) is False
    again = worker(make, "q")
    first = again.dequeue("q")
    assert (first.task, first.deliveries) == ("t", 3)  # the unique copy, first in line
    assert again.enqueue("q", "t", unique=True) is False
    again.finish_process(first.id)
    rest = again.dequeue("q")  # the plain copy: it holds no lock
    assert again.enqueue("q", "t", unique=True) is True
    again.finish_process(rest.id)


@pytest.mark.parametrize("leave", ["cancel", "delete", "dead-letter"])
def test_the_lock_is_released_when_the_copy_leaves_the_system(make: Any, leave: str) -> None:
    w = worker(make, "q", max_deliveries=1)
    w.enqueue("q", "t", unique=True)
    if leave == "cancel":
        assert w.cancel_tasks("q", "t") == 1
    elif leave == "delete":
        w.delete_queue("q")
    else:
        w.stop_process(w.dequeue("q").id)  # its 1st delivery was its last: dead-lettered
        assert w.get_dead_tasks("q") == ["t"]
    assert w.enqueue("q", "t", unique=True) is True


def test_unique_enqueue_rejects_a_list(make: Any) -> None:
    with pytest.raises(TypeError, match="task"):
        make().enqueue("q", ["a", "b"], unique=True)


def test_finish_publishes_done_with_the_result_to_done_listeners_only(
    make: Any, r: Any, prefix: str
) -> None:
    w = worker(make, "q")
    w.on("q", lambda kind, msg: None)  # a work listener only
    channel = Keys(prefix).queue("q").done
    assert numsub(r, channel) == 0  # it costs a non-listener nothing
    listener = make()
    done: list[dict[str, Any]] = []
    listener.on_done("q", done.append)
    assert numsub(r, channel) == 1
    w.enqueue("q", ["a", "b"])
    pa, pb = w.dequeue("q"), w.dequeue("q")
    w.finish_process(pa.id, result={"pages": 3})
    w.finish_process(pb.id)
    wait_for(lambda: len(done) == 2, what="two done events")
    assert done == [
        {"workerId": w.worker_id, "task": "a", "result": {"pages": 3}},
        {"workerId": w.worker_id, "task": "b", "result": None},
    ]
    with pytest.raises(TypeError, match="result"):
        w.finish_process(pa.id, result=object())


def test_without_a_done_listener_finishing_publishes_nothing(make: Any, r: Any) -> None:
    w = worker(make, "q")
    w.enqueue("q", ["a", "b"])

    def publishes() -> int:
        return int(r.info("commandstats").get("cmdstat_publish", {}).get("calls", 0))

    pa = w.dequeue("q")
    before = publishes()
    assert w.finish_process(pa.id, result="x")
    assert w.dequeue_many("q", 1, finish=[])  # b, no finish to publish
    assert publishes() == before  # no PUBLISH at all: nobody listens for done
    listener = make()
    done: list[dict[str, Any]] = []
    listener.on_done("q", done.append)
    assert w.finish_processes([p.id for p in w.processes]) == [True]
    wait_for(lambda: [d["task"] for d in done] == ["b"], what="done once someone listens")


def test_a_permanent_worker_is_never_reclaimed_only_failed(
    make: Any, server: Any, r: Any, prefix: str
) -> None:
    peer = worker(make)
    peer.enqueue("q", "held")
    code = (
        "import sys, time; from worqr_py import Worqr; "
        f"w = Worqr({server.url!r}, prefix={prefix!r}, heartbeat_interval=0.1, heartbeat_ttl=0.4);"
        " w.start_worker(permanent=True); w.start_work('q'); w.dequeue('q');"
        " print(w.worker_id, flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None
    wid = holder.stdout.readline().strip()
    assert r.pttl(Keys(prefix).heartbeat(wid)) == -1  # no expiry
    holder.send_signal(signal.SIGKILL)
    holder.wait()

    def scans() -> int:
        return int(r.info("commandstats").get("cmdstat_mget", {}).get("calls", 0))

    before = scans()
    wait_for(lambda: scans() >= before + 5, what="five supervision scans after its death")
    assert peer.get_tasks("q") == [] and wid in peer.get_workers()  # never reclaimed
    info = {x.id: x for x in peer.overview().workers}[wid]
    assert info.permanent and info.alive
    assert peer.fail_worker(wid) == 1  # only an explicit fail returns its processes
    assert peer.get_tasks("q") == ["held"]


def test_a_permanent_worker_stays_alive_and_supervises(make: Any) -> None:
    w = make(**FAST)
    w.start_worker(permanent=True)
    assert w.trusted_until == float("inf")
    time.sleep(1.0)  # far past its heartbeat_ttl, with no refresh: nothing may expire
    assert w.alive and w.get_workers() == [w.worker_id]


def test_a_heartbeat_ttl_of_zero_is_an_error_not_the_default(server: Any) -> None:
    with pytest.raises(ValueError, match="heartbeat_ttl must be a positive"):
        Worqr(server.url, heartbeat_ttl=0)
    with pytest.raises(TypeError, match="permanent"):
        Worqr(server.url).start_worker(permanent="yes")  # type: ignore[call-overload]


def test_done_messages_are_json(make: Any, r: Any, prefix: str) -> None:
    w = worker(make, "q")
    ps = r.pubsub()
    if on_cluster(r):  # a shard channel there
        ps.ssubscribe(Keys(prefix).queue("q").done)
        ps.get_message = ps.get_sharded_message
    else:
        ps.subscribe(Keys(prefix).queue("q").done)
    r.set(
        Keys(prefix).queue("q").done_listeners, "1", px=10_000
    )  # what on_done does for its listener
    wait_for(lambda: ps.get_message(timeout=0.1), what="the subscription")
    w.enqueue("q", 'quote " and \\ backslash')
    w.finish_process(w.dequeue("q").id, result="ok")
    msg = wait_for(lambda: ps.get_message(timeout=0.1), what="the done message")
    assert json.loads(msg["data"])["task"] == 'quote " and \\ backslash'
    ps.close()
