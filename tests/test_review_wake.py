"""Adversarial review of "wake one, not all" (0.3): scenarios where a task waits for the poll
although a runner is idle, or where the wake machinery leaks. Both drivers, real Redis, every
runner with ``poll_interval=60``: a task done within a test's bound was not rescued by the
poll. Each reproduced a defect the review found (all fixed), or checks what it found sound.
The order of waiters is set by writing ``P:{E}:i`` directly, as tests/test_wake_one.py does."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import pytest

from worqr_py import Process
from worqr_py.core import scripts as S
from worqr_py.core.keys import Keys

from .support import numsub, running, task_log, wait_for, wake_channel
from .test_wake_one import inner, named_first, waiting

SOON = 15  # seconds: far below poll_interval=60, far above any wake on a loaded 2-core VM


def recorder(name: str, by: dict[str, str], release: threading.Event) -> Any:
    """A handler recording who ran each task; "slow" blocks until ``release``."""

    def handler(p: Process) -> None:
        by.setdefault(p.task, name)
        if p.task == "slow":
            release.wait(30)

    return handler


# ---- 1. a leave (or reap) that returns tasks wakes only as many runners as it returned ----
def test_a_worker_named_then_leaving_with_held_tasks_strands_the_named_task(
    make: Any, r: Any, prefix: str
) -> None:
    a, b, w, producer = make(poll_interval=60), make(poll_interval=60), make(), make()
    w.start_worker()
    w.start_work("q")
    producer.enqueue("q", "slow")
    assert w.dequeue("q").task == "slow"  # w holds a task; it has no runner
    release = threading.Event()
    by: dict[str, str] = {}
    with running(a, "q", recorder("a", by, release)), running(b, "q", recorder("b", by, release)):
        try:
            wait_for(lambda: waiting(r, prefix, "q", a) and waiting(r, prefix, "q", b))
            named_first(r, prefix, "q", w.worker_id)
            producer.enqueue("q", "t")  # names w (most recent waiter): nobody acts on it
            w.stop_work("q")  # "slow" back to the front, one waiter woken for it; "t" left
            wait_for(lambda: "slow" in by, timeout=SOON, what="the returned task taken")
            wait_for(lambda: "t" in by, timeout=SOON, what="t taken by the other idle runner")
        finally:
            release.set()


def test_a_worker_named_then_crashing_with_held_tasks_strands_the_named_task(
    make: Any, r: Any, prefix: str
) -> None:
    fast = {"heartbeat_interval": 0.2, "heartbeat_ttl": 2, "poll_interval": 60}
    a, b, w, producer = make(**fast), make(**fast), make(**fast), make()
    w.start_worker()
    w.start_work("q")
    producer.enqueue("q", "slow")
    assert w.dequeue("q").task == "slow"
    release = threading.Event()
    by: dict[str, str] = {}
    with running(a, "q", recorder("a", by, release)), running(b, "q", recorder("b", by, release)):
        try:
            wait_for(lambda: waiting(r, prefix, "q", a) and waiting(r, prefix, "q", b))
            wid = w.worker_id
            named_first(r, prefix, "q", wid)
            producer.enqueue("q", "t")  # names w, which never answers
            r.delete(Keys(prefix).heartbeat(wid))  # w "crashes"; a peer reaps it
            wait_for(lambda: "slow" in by, timeout=SOON, what="the reaped task taken")
            wait_for(lambda: "t" in by, timeout=SOON, what="t taken by the other idle runner")
        finally:
            release.set()


# ---- 2. a queue the worker joined before run() is never waited on ---------------------------
def test_a_queue_joined_before_run_is_woken(make: Any, r: Any, prefix: str) -> None:
    w, producer = make(poll_interval=60), make()
    w.start_worker()
    w.start_work("q")
    done: list[str] = []
    with running(w, "q", lambda p: done.append(p.task)):
        wid = inner(w).worker_id
        wait_for(lambda: numsub(r, wake_channel(r, prefix, wid)) == 1, what="the runner listening")
        wait_for(lambda: waiting(r, prefix, "q", w), what="w waiting on q, joined before run")
        producer.enqueue("q", "t")
        wait_for(lambda: done == ["t"], timeout=SOON, what="t done without the poll")


# ---- 3. wake channel subscriptions outlive the worker id -------------------------------------
def test_a_re_registered_runner_unsubscribes_its_old_wake_channel(
    make: Any, r: Any, prefix: str
) -> None:
    w = make(heartbeat_interval=0.2, heartbeat_ttl=2, poll_interval=60)
    with running(w, "q", lambda p: None):
        wait_for(lambda: waiting(r, prefix, "q", w), what="w waiting")
        old = inner(w).worker_id
        r.delete(Keys(prefix).heartbeat(old))  # lost heartbeat: w fails, the runner rejoins
        wait_for(
            lambda: inner(w).worker_id not in (None, old) and waiting(r, prefix, "q", w),
            timeout=SOON,
            what="registered again and waiting",
        )
        assert numsub(r, wake_channel(r, prefix, inner(w).worker_id)) == 1
        assert numsub(r, wake_channel(r, prefix, old)) == 0, "old wake channel still subscribed"


def test_run_returning_unsubscribes_its_wake_channel(make: Any, r: Any, prefix: str) -> None:
    w = make(poll_interval=60)
    with running(w, "q", lambda p: None):
        wid = inner(w).worker_id
        wait_for(lambda: numsub(r, wake_channel(r, prefix, wid)) == 1, what="listening")
    assert numsub(r, wake_channel(r, prefix, wid)) == 0


# ---- 4. a wake missed across a pub/sub reconnect while busy is not passed on -----------------
def test_a_wake_lost_in_a_reconnect_while_busy_is_passed_on(make: Any, r: Any, prefix: str) -> None:
    w, b, producer = make(poll_interval=60), make(poll_interval=60), make()
    k = Keys(prefix)
    q = k.queue("q")
    release = threading.Event()
    by: dict[str, str] = {}
    with running(w, "q", recorder("w", by, release)):
        wid = inner(w).worker_id
        wait_for(lambda: numsub(r, k.wake(wid)) == 1, what="w listening")
        w_subs = {c["id"] for c in r.client_list(_type="pubsub")}
        with running(b, "q", recorder("b", by, release)):
            try:
                wait_for(lambda: waiting(r, prefix, "q", w) and waiting(r, prefix, "q", b))
                named_first(r, prefix, "q", wid)
                producer.enqueue("q", "slow")  # w takes it and blocks: all its jobs busy
                wait_for(lambda: by.get("slow") == "w", what="w busy")
                named_first(r, prefix, "q", wid)  # w is the most recent waiter again
                pipe = r.pipeline(transaction=True)  # atomically: w's subscriber dropped,
                for cid in w_subs:  # then a task that names w (its wake goes nowhere)
                    pipe.client_kill_filter(_id=cid)
                keys = (q.tasks, q.idle, q.workers)
                pipe.eval(S.ENQUEUE.source, 3, *keys, q.events, k.wakes, "q", "t")
                pipe.execute()
                with contextlib.suppress(AssertionError):
                    wait_for(lambda: "t" in by, timeout=SOON, what="t taken")
                stranded = "t" not in by
            finally:
                release.set()
            # the setup did what it says: w reconnected, resubscribed, and took t once free
            wait_for(lambda: "t" in by, timeout=SOON, what="t taken at last")
            assert numsub(r, k.wake(wid)) == 1
            assert not stranded and by["t"] == "b", f"t waited for w's handler: {by}"


# ---- 5. wait_for_work is not fenced: an entry for a gone worker ------------------------------
def test_wait_for_work_after_the_worker_was_failed_leaves_no_entry(
    make: Any, r: Any, prefix: str
) -> None:
    slow_beat = {"heartbeat_interval": 10, "heartbeat_ttl": 30}
    w, peer, b, producer = make(**slow_beat), make(), make(poll_interval=60), make()
    idle = Keys(prefix).queue("q").idle
    w.start_worker()
    w.start_work("q")  # the runner's join, step by step ...
    wid = w.worker_id
    peer.fail_worker(wid)  # ... a peer fails (or reaps) w in between ...
    w._run(w._core.wait_for_work(["q"]))  # ... then join's wait_for_work
    done: list[str] = []
    with running(b, "q", lambda p: done.append(p.task)):
        wait_for(lambda: waiting(r, prefix, "q", b), what="b waiting")
        # b joined an empty queue: score 0, like the stale entry; ties go by member order.
        # Put the gone worker first, as its id would be half the time:
        r.zadd(idle, {wid: 1})  # a stale entry (as a 0.2 peer's reap leaves one): skipped
        producer.enqueue("q", "t")
        wait_for(lambda: done == ["t"], timeout=SOON, what="t done by the idle runner b")


def test_a_reaped_idle_runner_leaves_no_entry(make: Any, r: Any, prefix: str) -> None:
    """Sound: a 0.3 reap removes the dead runner from P:{E}:i."""
    fast = {"heartbeat_interval": 0.2, "heartbeat_ttl": 2, "poll_interval": 60}
    a, w = make(**fast), make(**fast)
    idle = Keys(prefix).queue("q").idle
    w.start_worker()
    w.start_work("q")
    w._run(w._core.wait_for_work(["q"]))
    wid = w.worker_id
    with running(a, "q", lambda p: None):
        r.delete(Keys(prefix).heartbeat(wid))
        wait_for(lambda: r.zscore(idle, wid) is None, timeout=SOON, what="reaped")


# ---- 6. one free job absorbs several wakes (multi-queue runner) ------------------------------
def test_two_wakes_to_a_single_job_runner_are_not_both_kept(make: Any, r: Any, prefix: str) -> None:
    w, b = make(poll_interval=60), make(poll_interval=60)
    k = Keys(prefix)
    release = threading.Event()
    by: dict[str, str] = {}

    def w_handler(p: Process) -> None:
        by.setdefault(p.task, "w")
        release.wait(30)  # w's one job is busy with whichever it took first

    queues = ["q1", "q2"]
    with running(w, queues, w_handler), running(b, queues, lambda p: by.setdefault(p.task, "b")):
        try:
            both = [(x, q) for x in (w, b) for q in queues]
            wait_for(lambda: all(waiting(r, prefix, q, x) for x, q in both), what="all waiting")
            for q in queues:
                named_first(r, prefix, q, inner(w).worker_id)
            pipe = r.pipeline(transaction=True)  # two tasks at once, each naming w
            for q, task in (("q1", "x1"), ("q2", "x2")):
                qk = k.queue(q)
                keys = (qk.tasks, qk.idle, qk.workers)
                pipe.eval(S.ENQUEUE.source, 3, *keys, qk.events, k.wakes, q, task)
            pipe.execute()
            wait_for(lambda: len(by) == 2, timeout=SOON, what="x1 and x2 both taken")
            assert sorted(by.values()) == ["b", "w"]
        finally:
            release.set()


# ---- 7. mixing 0.2 and 0.3: a 0.2 peer's reap leaves the dead 0.3 waiter in P:{E}:i ---------
def worqr_02(tmp_path: Any) -> str:
    """The 0.2 package (06fb1e9, the last 0.2 commit), exported from git."""
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "worqr02"
    out.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(root), "archive", "06fb1e9", "worqr_py"], capture_output=True
    )
    if archive.returncode != 0:
        pytest.skip("no git history to export 0.2 from")
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive.stdout, check=True)
    return str(out)


def test_a_0_2_peer_reaping_a_0_3_waiter_leaves_no_entry(
    make: Any, r: Any, prefix: str, server: Any, tmp_path: Any
) -> None:
    import subprocess
    import sys

    pkg = worqr_02(tmp_path)
    w, b, producer = make(heartbeat_interval=10, heartbeat_ttl=30), make(poll_interval=60), make()
    idle = Keys(prefix).queue("q").idle
    w.start_worker()
    w.start_work("q")
    w._run(w._core.wait_for_work(["q"]))  # w: a 0.3 runner waiting on q (then it dies)
    wid = w.worker_id
    done: list[str] = []
    with running(b, "q", lambda p: done.append(p.task)):
        wait_for(lambda: waiting(r, prefix, "q", b), what="b waiting")
        named_first(r, prefix, "q", wid)  # w began to wait last
        code = (
            "import sys, worqr_py; assert worqr_py.__file__.startswith(sys.argv[3]);"
            "from worqr_py import Worqr;"
            "w = Worqr(sys.argv[1], prefix=sys.argv[2]); w.fail_worker(sys.argv[4]); w.close()"
        )
        subprocess.run(
            [sys.executable, "-c", code, server.url, prefix, pkg, wid],
            env={"PYTHONPATH": pkg, "PATH": "/usr/bin:/bin"},
            cwd=str(tmp_path),  # not the checkout: its worqr_py is 0.3
            check=True,
            timeout=60,
        )
        assert r.sismember(Keys(prefix).workers, wid) == 0  # the 0.2 peer removed w
        producer.enqueue("q", "t")
        wait_for(lambda: done == ["t"], timeout=SOON, what="t done by the idle 0.3 runner b")
    assert r.zscore(idle, wid) is None


# ---- checked and found sound -----------------------------------------------------------------
def test_after_redis_restarts_without_data_a_task_still_wakes_a_runner(
    make: Any, servers: Any, prefix: str
) -> None:
    s = servers()
    fast = {"heartbeat_interval": 0.2, "heartbeat_ttl": 2, "poll_interval": 60}
    a, b, producer = make(url=s.url, **fast), make(url=s.url, **fast), make(url=s.url)
    rs = s.client(decode_responses=True)
    done: list[str] = []
    with (
        running(a, "q", lambda p: done.append(p.task)),
        running(b, "q", lambda p: done.append(p.task)),
    ):
        wait_for(lambda: rs.zcard(Keys(prefix).queue("q").idle) == 2, what="both waiting")
        old = {inner(a).worker_id, inner(b).worker_id}
        s.restart()  # all data lost
        rs = s.client(decode_responses=True)
        wait_for(
            lambda: (
                {inner(a).worker_id, inner(b).worker_id}.isdisjoint(old)
                and rs.zcard(Keys(prefix).queue("q").idle) == 2
            ),
            timeout=SOON,
            what="both registered again and waiting",
        )
        producer.enqueue("q", "t")
        wait_for(lambda: done == ["t"], timeout=SOON, what="t done")


def test_a_killed_subscriber_while_idle_still_gets_the_next_task(
    make: Any, r: Any, prefix: str
) -> None:
    a, producer = make(poll_interval=60), make()
    done: list[str] = []
    with running(a, "q", lambda p: done.append(p.task)):
        wid = inner(a).worker_id
        wait_for(lambda: waiting(r, prefix, "q", a), what="a waiting")
        r.client_kill_filter(_type="pubsub")
        wait_for(lambda: numsub(r, wake_channel(r, prefix, wid)) == 1, timeout=SOON, what="back")
        producer.enqueue("q", "t")
        wait_for(lambda: done == ["t"], timeout=SOON, what="t done")


def test_concurrency_two_prefetch_two_burst_runs_each_task_once(
    make: Any, r: Any, prefix: str
) -> None:
    ws, producer = [make(poll_interval=60) for _ in range(3)], make()
    done, handler = task_log()

    with contextlib.ExitStack() as stack:
        for w in ws:
            stack.enter_context(running(w, ["q1", "q2"], handler, concurrency=2, prefetch=2))
        wait_for(lambda: all(waiting(r, prefix, "q2", w) for w in ws), what="all waiting")
        for i in range(60):
            producer.enqueue(f"q{1 + i % 2}", f"t{i}")
        wait_for(lambda: len(done) >= 60, timeout=30, what="60 tasks done")
    assert sorted(done) == sorted(f"t{i}" for i in range(60))
