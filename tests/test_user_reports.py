"""What a new user met in the first hour (issue 11): each on a real redis-server, both
drivers where it applies."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest
import redis

from worqr_py import Process
from worqr_py.core.keys import Keys

from .conftest import FAST, worker
from .support import RedisServer, wait_for


def test_run_goes_on_when_its_worker_fails_before_the_first_join(
    make: Any, r: redis.Redis, prefix: str
) -> None:
    """#4: a failure between start_worker and the first start_work is re-registered, not
    raised out of run()."""
    w = make(**FAST)
    core = getattr(w, "inner", w)._core
    register = core.start_worker
    calls: list[str] = []

    def first_one_dies(*a: Any) -> Any:
        wid = yield from register(*a)
        if not calls:
            r.delete(Keys(prefix).heartbeat(wid))  # dies before it joins any queue
            core.worker.deadline = 0.0  # and its own clock says so at once
        calls.append(wid)
        return wid

    core.start_worker = first_one_dies
    done: list[str] = []
    w.enqueue("q", "t")
    t = threading.Thread(target=w.run, args=("q", lambda p: done.append(p.task)), daemon=True)
    t.start()
    try:
        wait_for(lambda: done == ["t"], what="the task, after re-registering")
        assert len(calls) == 2
    finally:
        w.shutdown()
        t.join(10)


def test_a_long_restart_that_lost_the_data_is_reported(make: Any, servers: Any) -> None:
    """#5: Redis down for longer than the TTL (the worker fences itself and registers again
    meanwhile) and back without its data: still reported as redis_restarted."""
    s = servers()
    w = make(url=s.url, heartbeat_interval=0.1, heartbeat_ttl=0.5, retry_timeout=30)
    restarted: list[tuple[str, str]] = []
    w.events.on("redis_restarted", lambda old, new: restarted.append((old, new)))
    w.events.on("error", lambda exc: None)
    t = threading.Thread(target=w.run, args=("q", lambda p: None), daemon=True)
    t.start()
    try:
        wait_for(lambda: w.alive, what="the runner")
        s.kill()
        wait_for(lambda: not w.alive, what="the worker to fence itself while Redis is down")
        s.start()
        wait_for(lambda: restarted, timeout=20, what="redis_restarted")
        wait_for(lambda: w.alive, timeout=20, what="the runner to register again")
        assert restarted[0][0] != restarted[0][1]
    finally:
        w.shutdown()
        t.join(10)


def test_bad_credentials_fail_at_once_with_the_servers_message(make: Any, servers: Any) -> None:
    """#6: an authentication error is not retried as if Redis were away."""
    s = servers("--requirepass", "s3cret")
    w = make(url=s.url.replace("redis://", "redis://:wrong@"))
    started = time.monotonic()
    with pytest.raises(redis.AuthenticationError):
        w.on("q", lambda kind, message: None)
    with pytest.raises(redis.AuthenticationError):
        w.enqueue("q", "t")
    assert time.monotonic() - started < 5  # not the 10 s retry window


def test_an_acl_that_forbids_subscribe_fails_at_once_with_the_servers_message(
    make: Any, servers: Any
) -> None:
    """A user whose ACL forbids SUBSCRIBE (NOPERM): on(), on_done(), wait_for_result() and
    run() raise the server's error at once, as for bad credentials (a review of 0.7.3: they
    waited 10 s, then raised a WorqrError saying the subscribe timed out)."""
    s = servers()
    acl = ["ACL", "SETUSER", "nosub", "on", ">pw", "~*", "&*", "+@all", "-subscribe"]
    redis.Redis(port=s.port).execute_command(*acl)
    url = s.url.replace("redis://", "redis://nosub:pw@")
    for call in (
        lambda w: w.on("q", lambda kind, message: None),
        lambda w: w.on_done("q", lambda info: None),
        lambda w: w.wait_for_result("q@x", timeout=30),
        lambda w: w.run("q", lambda p: None),
    ):
        w = make(url=url, retry_timeout=3)
        started = time.monotonic()
        with pytest.raises(redis.exceptions.NoPermissionError):
            call(w)
        assert time.monotonic() - started < 2.5  # not the 10 s subscribe wait
        w.close()


def test_background_errors_are_logged_with_type_and_message(
    make: Any, servers: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """#7: the log says what went wrong (type and message), the traceback only once."""
    s = servers()
    w = worker(make, "q", url=s.url)
    caplog.set_level(logging.ERROR, logger="worqr_py")
    s.kill()
    wait_for(
        lambda: sum("background error" in r.getMessage() for r in caplog.records) >= 2,
        what="two logged errors",
    )
    logged = [r for r in caplog.records if "background error" in r.getMessage()]
    assert all(": " in r.getMessage().split("background error: ", 1)[1] for r in logged)
    kinds = {r.getMessage() for r in logged if r.exc_info}
    assert len(kinds) == len({r.getMessage() for r in logged})  # one traceback per kind
    assert w is not None


def test_the_last_failed_try_is_logged_as_dead_lettered(
    make: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """#9: the log says where the task went."""
    w = make(max_deliveries=2, **FAST)
    caplog.set_level(logging.ERROR, logger="worqr_py.runtime")
    w.enqueue("q", "poison")

    def fail(p: Process) -> None:
        raise RuntimeError("boom")

    t = threading.Thread(target=w.run, args=("q", fail), daemon=True)
    t.start()
    try:
        wait_for(lambda: w.get_dead_tasks("q") == ["poison"], what="the dead letter")
    finally:
        w.shutdown()
        t.join(10)
    lines = [r.getMessage() for r in caplog.records if "handler failed" in r.getMessage()]
    assert "returned to the front" in lines[0]
    assert "dead-lettered after 2 deliveries" in lines[1]


def test_unique_must_be_a_bool(make: Any, r: redis.Redis) -> None:
    """#12: checked like every other argument, with nothing written."""
    w = make()
    before = r.dbsize()
    with pytest.raises(TypeError, match="unique"):
        w.enqueue("q", "t", unique="yes")
    assert r.dbsize() == before


def test_no_worker_thread_outlives_its_client(server: RedisServer, prefix: str) -> None:
    """#1: after close(), heartbeat, supervisor, listener and runner threads are gone."""
    from worqr_py import Worqr

    before = set(threading.enumerate())
    w = Worqr(server.url, prefix=prefix, **FAST)
    t = threading.Thread(target=w.run, args=("q", lambda p: None), daemon=True)
    t.start()
    wait_for(lambda: w.alive, what="the runner")
    w.shutdown()
    t.join(10)
    w.close()
    wait_for(
        lambda: not [x for x in set(threading.enumerate()) - before if x.is_alive()],
        what="every thread to end",
    )
