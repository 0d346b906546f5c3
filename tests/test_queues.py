"""Queue operations that need no worker: enqueue, reads, cancel, delete, names, isolation."""

from __future__ import annotations

from typing import Any

import pytest
from redis.crc import key_slot

from worqr_py import NotWorking, WorkerNotStarted
from worqr_py.core.keys import Keys

from .conftest import FAST
from .support import wait_for


def test_enqueue_returns_length_and_keeps_fifo_order(make: Any) -> None:
    w = make()
    assert w.enqueue("q", "a") == 1
    assert w.enqueue("q", ["b", "c"]) == 3
    assert w.get_tasks("q") == ["a", "b", "c"]
    assert w.peek_queue("q") == "a"
    assert w.count_queue("q") == 3


def test_list_enqueue_is_one_atomic_push_with_one_notification(
    make: Any, r: Any, prefix: str
) -> None:
    w = make()
    before = int(r.info("commandstats").get("cmdstat_rpush", {}).get("calls", 0))
    w.enqueue("q", [str(i) for i in range(2500)])
    after = int(r.info("commandstats")["cmdstat_rpush"]["calls"])
    assert w.get_tasks("q") == [str(i) for i in range(2500)]
    assert after - before == 3  # pushed in chunks of 1000 inside one script


def test_empty_queue_reads(make: Any) -> None:
    w = make()
    assert w.get_tasks("nothing") == []
    assert w.peek_queue("nothing") is None
    assert w.count_queue("nothing") == 0
    assert w.enqueue("nothing", []) == 0


def test_cancel_removes_every_queued_copy_and_notifies(make: Any) -> None:
    w = make()
    seen: list[tuple[str, str]] = []
    w.on("q", lambda kind, msg: seen.append((kind, msg)))
    w.enqueue("q", ["x", "y", "x", "z", "x"])
    assert w.cancel_tasks("q", "x") == 3
    assert w.get_tasks("q") == ["y", "z"]
    wait_for(lambda: ("cancel", "x") in seen, what="cancel event")
    assert w.cancel_tasks("q", "absent") == 0


def test_delete_queue_drops_tasks_unlists_it_and_notifies(make: Any) -> None:
    w = make()
    seen: list[tuple[str, str]] = []
    w.on("q", lambda kind, msg: seen.append((kind, msg)))
    w.enqueue("q", ["a", "b"])
    w.enqueue("other", "c")
    assert w.get_queues() == ["other", "q"]
    w.delete_queue("q")
    assert w.get_tasks("q") == []
    assert w.get_queues() == ["other"]
    wait_for(lambda: ("delete", "") in seen, what="delete event")


def test_get_queues_reads_a_set_never_keys(make: Any, r: Any) -> None:
    w = make()
    w.enqueue("a", "1")
    before = int(r.info("commandstats").get("cmdstat_keys", {}).get("calls", 0))
    scans = int(r.info("commandstats").get("cmdstat_scan", {}).get("calls", 0))
    assert w.get_queues() == ["a"]
    assert int(r.info("commandstats").get("cmdstat_keys", {}).get("calls", 0)) == before
    assert int(r.info("commandstats").get("cmdstat_scan", {}).get("calls", 0)) == scans


NAMES = ["a:b", "a}b", "{x}", "x", "über", "error", "with space", "%7D", "}", "{", "%", "a_b"]


def test_any_queue_name_works_and_no_two_collide(make: Any, r: Any, prefix: str) -> None:
    w = make()
    for i, name in enumerate(NAMES):
        w.enqueue(name, f"task{i}")
    for i, name in enumerate(NAMES):
        assert w.get_tasks(name) == [f"task{i}"]
    assert w.get_queues() == sorted(NAMES)


def test_every_key_of_a_queue_is_in_one_cluster_slot() -> None:
    keys = Keys("p")
    for name in NAMES:
        k = keys.queue(name)
        assert (
            len(
                {
                    key_slot(x.encode())
                    for x in (k.tasks, k.returned, k.workers, k.deliveries, k.processes("w1"))
                }
            )
            == 1
        )
    for wid in ("a1", "b2"):
        registry = (
            keys.workers,
            keys.queues,
            keys.supervisor,
            keys.heartbeat(wid),
            keys.working_queues(wid),
        )
        assert len({key_slot(x.encode()) for x in registry}) == 1
    assert len({keys.queue(n).tasks for n in NAMES}) == len(NAMES)


def test_two_prefixes_never_see_each_other(make: Any, prefix: str) -> None:
    a, b = make(prefix=prefix), make(prefix=prefix + ":b")
    a.enqueue("q", "from a")
    b.enqueue("q", "from b")
    assert a.get_tasks("q") == ["from a"]
    assert b.get_tasks("q") == ["from b"]
    a.start_worker()
    assert b.get_workers() == []


@pytest.mark.parametrize(
    ("call", "error", "arg"),
    [
        (lambda w: w.enqueue("", "t"), ValueError, "queue"),
        (lambda w: w.enqueue(None, "t"), TypeError, "queue"),
        (lambda w: w.enqueue(3, "t"), TypeError, "queue"),
        (lambda w: w.enqueue("q", None), TypeError, "task"),
        (lambda w: w.enqueue("q", 5), TypeError, "task"),
        (lambda w: w.enqueue("q", ["ok", None]), TypeError, "task[1]"),
        (lambda w: w.enqueue("q", ["ok", "ok", "\ud800"]), ValueError, "task[2]"),
        (lambda w: w.enqueue("q", ("ok", "\x1fjob")), ValueError, "task[1]"),
        (lambda w: w.enqueue("q", ["\ud83d", "\ude00"]), ValueError, "task[0]"),
        (lambda w: w.enqueue("q", "\ud800"), ValueError, "task"),
        (lambda w: w.cancel_tasks("q", None), TypeError, "task"),
        (lambda w: w.get_tasks(b"q"), TypeError, "queue"),
        (lambda w: w.delete_queue(""), ValueError, "queue"),
        (lambda w: w.on("q", "not callable"), TypeError, "handler"),
        (lambda w: w.get_working_queues(""), ValueError, "worker_id"),
        (lambda w: w.finish_process(None), TypeError, "process_id"),
        (lambda w: w.dequeue_many("q", 1, finish="q_x.1"), TypeError, "finish"),
        # a review of 0.7.3: a str was iterated as its letters; a century at most
        (lambda w: w.queue_stats("emails"), TypeError, "queues"),
        (lambda w: w.queue_stats(["ok", ""]), ValueError, "queues[1]"),
        (lambda w: w.snapshot("emails"), TypeError, "queues"),
        (lambda w: w.submit("q", "f", result_ttl=1e300), ValueError, "result_ttl"),
        (lambda w: w.submit("q", "f", timeout=4e9), ValueError, "timeout"),
    ],
)
def test_bad_input_names_the_argument_and_writes_nothing(
    make: Any, r: Any, call: Any, error: type, arg: str
) -> None:
    w = make()
    before = r.dbsize()
    with pytest.raises(error, match=arg.replace("[", r"\[").replace("]", r"\]")):
        call(w)
    assert r.dbsize() == before


@pytest.mark.parametrize(
    ("options", "error", "arg"),
    [
        ({"prefix": ""}, ValueError, "prefix"),
        ({"prefix": "a{b"}, ValueError, "prefix"),
        ({"prefix": 1}, TypeError, "prefix"),
        ({"heartbeat_ttl": 0}, ValueError, "heartbeat_ttl"),
        ({"heartbeat_interval": -1}, ValueError, "heartbeat_interval"),
        ({"heartbeat_interval": "1"}, TypeError, "heartbeat_interval"),
        ({"heartbeat_interval": 2.0, "heartbeat_ttl": 1.0}, ValueError, "heartbeat_ttl"),
        ({"poll_interval": 0}, ValueError, "poll_interval"),
        ({"bogus": 1}, TypeError, "bogus"),
        ({"heartbeat_ttl": 1e300}, ValueError, "heartbeat_ttl"),
        ({"poll_interval": 1e300}, ValueError, "poll_interval"),
        ({"retry_timeout": 1e300}, ValueError, "retry_timeout"),
    ],
)
def test_bad_options_are_rejected(
    make: Any, options: dict[str, Any], error: type, arg: str
) -> None:
    with pytest.raises(error, match=arg):
        make(**options)


def test_url_and_connections_are_exclusive(server: Any) -> None:
    from worqr_py import Worqr

    with pytest.raises(ValueError, match="url"):
        Worqr(server.url, redis=server.client())


def test_worker_operations_before_start_worker_say_what_to_call(make: Any) -> None:
    w = make(**FAST)
    for call in (
        lambda: w.start_work("q"),
        lambda: w.dequeue("q"),
        lambda: w.fail_worker(),
        lambda: w.get_working_queues(),
        lambda: w.finish_process("q_abc.1"),
    ):
        with pytest.raises(WorkerNotStarted, match=r"start_worker\(\)"):
            call()


def test_dequeue_needs_start_work(make: Any) -> None:
    w = make(**FAST)
    w.start_worker()
    w.enqueue("q", "t")
    with pytest.raises(NotWorking, match=r"start_work\(queue\)"):
        w.dequeue("q")
    assert w.get_tasks("q") == ["t"]


def test_malformed_process_id_is_a_value_error(make: Any) -> None:
    w = make(**FAST)
    w.start_worker()
    with pytest.raises(ValueError, match="process_id"):
        w.finish_process("no-separator")
