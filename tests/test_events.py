"""Pub/sub: work/cancel/delete events, lost notifications, a killed subscriber, NOSCRIPT."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from worqr_py import AsyncWorqr, Worqr
from worqr_py.core import scripts
from worqr_py.core.keys import Keys

from .conftest import FAST
from .support import cached, wait_for


def handler_log(w: Any, queue: str) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    w.on(queue, lambda kind, msg: seen.append((kind, msg)))
    return seen


def test_enqueue_announces_how_many_tasks(make: Any) -> None:
    w = make()
    seen = handler_log(w, "q")
    w.enqueue("q", ["a", "b", "c"])
    w.enqueue("q", "d")
    wait_for(lambda: seen == [("work", "3"), ("work", "1")], what="two work events")


def test_start_work_announces_work_queued_before_it(make: Any) -> None:
    w = make(**FAST)
    w.enqueue("q", ["a", "b"])
    seen = handler_log(w, "q")
    w.start_worker()
    w.start_work("q")
    assert ("work", "2") in seen  # announced before start_work returned


def test_a_handler_added_after_start_work_hears_of_queued_work(make: Any) -> None:
    w = make(**FAST)
    w.enqueue("q", "a")
    w.start_worker()
    w.start_work("q")
    seen = handler_log(w, "q")
    assert seen == [("work", "1")]


def test_work_is_delivered_after_the_subscriber_connection_is_killed(make: Any, r: Any) -> None:
    w = make(heartbeat_interval=0.1, heartbeat_ttl=0.4, poll_interval=60)  # no fallback poll
    seen = handler_log(w, "q")
    w.start_worker()
    w.start_work("q")
    for _ in range(3):
        wait_for(lambda: r.client_list(_type="pubsub"), what="a subscriber to kill")
        assert r.client_kill_filter(_type="pubsub") >= 1
        w.enqueue("q", ["x", "y"])
    wait_for(lambda: any(kind == "work" for kind, _ in seen), what="work after reconnect")
    taken = [w.dequeue("q") for _ in range(6)]
    assert [p.task for p in taken] == ["x", "y"] * 3


def test_a_lost_notification_is_recovered_by_the_fallback_poll(
    make: Any, r: Any, prefix: str
) -> None:
    w = make(heartbeat_interval=0.1, heartbeat_ttl=0.4, poll_interval=0.3)
    seen = handler_log(w, "q")
    w.start_worker()
    w.start_work("q")
    r.rpush(Keys(prefix).queue("q").tasks, "silent")  # a task whose notification never came
    wait_for(lambda: ("work", "1") in seen, timeout=2, what="the fallback poll")
    assert w.dequeue("q").task == "silent"


def test_reclaim_re_announces_the_returned_work(make: Any) -> None:
    a, b = make(**FAST), make(**FAST)
    seen = handler_log(b, "q")
    for w in (a, b):
        w.start_worker()
        w.start_work("q")
    a.enqueue("q", "t")
    a.dequeue("q")
    seen.clear()
    b.fail_worker(a.worker_id)
    wait_for(lambda: ("work", "1") in seen, what="work event after the reclaim")


def test_a_raising_handler_goes_to_the_error_event_and_the_listener_lives(make: Any) -> None:
    w = make()
    errors: list[BaseException] = []
    w.events.on("error", errors.append)

    def bad(kind: str, msg: str) -> None:
        raise RuntimeError("handler bug")

    w.on("q", bad)
    seen = handler_log(w, "q")
    w.enqueue("q", "a")
    wait_for(lambda: errors and seen, what="error event and the other handler")
    assert isinstance(errors[0], RuntimeError)
    w.enqueue("q", "b")
    wait_for(lambda: len(seen) == 2, what="the listener still delivering")


def test_off_removes_one_handler_or_all(make: Any) -> None:
    w = make()
    removed: list[str] = []
    kept = handler_log(w, "q")

    def gone(kind: str, msg: str) -> None:
        removed.append(kind)

    w.on("q", gone)
    w.off("q", gone)
    w.enqueue("q", "a")
    wait_for(lambda: kept == [("work", "1")], what="the kept handler")
    w.off("q")
    w.on("other", lambda kind, msg: removed.append("other"))
    w.enqueue("q", "b")
    w.enqueue("other", "c")  # published after "b": once it is heard, "b" was too
    wait_for(lambda: removed == ["other"], what="the other queue's handler")
    assert kept == [("work", "1")]


def test_scripts_are_reloaded_after_script_flush(make: Any, r: Any) -> None:
    w = make(**FAST)
    w.start_worker()
    w.start_work("q")
    r.script_flush()
    assert w.enqueue("q", ["a", "b", "c"]) == 3  # a script inside a pipeline
    r.script_flush()
    p = w.dequeue("q")  # a single EVALSHA
    r.script_flush()
    assert w.finish_process(p.id) is True
    w.dequeue("q")
    r.script_flush()
    assert w.fail_worker() == 1
    assert cached(r, scripts.FENCE_WORKER) and cached(r, scripts.LEAVE_QUEUE)


def test_every_lua_file_documents_keys_argv_and_reply() -> None:
    files = sorted((Path(scripts.__file__).parent / "lua").glob("*.lua"))
    assert {f.stem for f in files} == {s.name for s in scripts.ALL}
    for f in files:
        head = f.read_text().split("]]")[0]
        assert "KEYS[1]" in head and "ARGV[1]" in head and "Returns:" in head, f.name
        assert "..':'" not in f.read_text()  # no key is built inside a script


def test_both_drivers_expose_the_same_api() -> None:
    def api(cls: type) -> dict[str, inspect.Signature]:
        return {
            n: inspect.signature(getattr(cls, n))
            for n in dir(cls)
            if not n.startswith("_") and callable(getattr(cls, n))
        }

    sync, aio = api(Worqr), api(AsyncWorqr)
    assert sync.keys() == aio.keys()
    for name, sig in sync.items():
        assert list(sig.parameters) == list(aio[name].parameters), name
        assert getattr(Worqr, name).__doc__, f"Worqr.{name} has no docstring"
