"""Heartbeats, self-fencing and peer supervision, with real processes and real servers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from worqr_py import WorkerFailed
from worqr_py.core.keys import Keys

from .conftest import FAST
from .support import wait_for

ROOT = Path(__file__).resolve().parent.parent


def spawn_holder(
    url: str, prefix: str, queue: str, n: int, interval: float, ttl: float
) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """A worker process that takes ``n`` tasks and holds them; returns it and what it took."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.proc_worker",
            url,
            prefix,
            queue,
            str(n),
            str(interval),
            str(ttl),
        ],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, json.loads(proc.stdout.readline())


def record(w: Any, *events: str) -> list[tuple[Any, ...]]:
    seen: list[tuple[Any, ...]] = []
    for name in events:
        w.events.on(name, lambda *args, _n=name: seen.append((_n, *args)))
    return seen


def test_heartbeat_keeps_the_worker_key_alive_with_set_xx_px(
    make: Any, r: Any, prefix: str
) -> None:
    w = make(**FAST)
    wid = w.start_worker()
    hb = Keys(prefix).heartbeat(wid)
    assert 0 < r.pttl(hb) <= 400
    sets = int(r.info("commandstats")["cmdstat_set"]["calls"])
    wait_for(
        lambda: int(r.info("commandstats")["cmdstat_set"]["calls"]) >= sets + 10,
        what="ten more SETs",
    )
    assert 0 < r.pttl(hb) <= 400 and w.alive  # refreshed well past one TTL


def test_sigkilled_worker_task_is_back_at_the_front_within_ttl_plus_two_intervals(
    make: Any, server: Any, prefix: str
) -> None:
    interval, ttl = 0.2, 0.6
    peer = make(heartbeat_interval=interval, heartbeat_ttl=ttl)
    reclaimed = record(peer, "reclaimed")
    peer.start_worker()
    peer.start_work("q")
    peer.enqueue("q", ["t1", "t2", "t3", "t4"])
    holder, took = spawn_holder(server.url, prefix, "q", 1, interval, ttl)
    mine = peer.dequeue("q")  # the live peer holds t2 on the same queue
    assert took["tasks"] == ["t1"] and mine.task == "t2"
    holder.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    holder.wait()
    wait_for(
        lambda: peer.get_tasks("q") == ["t1", "t3", "t4"],
        timeout=ttl + 2 * interval,
        what="t1 back at the front",
    )
    assert time.monotonic() - killed <= ttl + 2 * interval
    wait_for(lambda: ("reclaimed", took["worker"], "q", 1) in reclaimed, what="reclaimed event")
    assert took["worker"] not in peer.get_workers()
    assert peer.processes == [mine] and peer.finish_process(mine.id) is True  # untouched


def test_twenty_racing_reclaimers_return_each_task_exactly_once(
    make: Any, server: Any, prefix: str
) -> None:
    producer = make()
    producer.enqueue("q1", [f"a{i}" for i in range(10)])
    producer.enqueue("q2", [f"b{i}" for i in range(10)])
    holder, took = spawn_holder(server.url, prefix, "q1", 6, 0.2, 30)
    holder2, took2 = spawn_holder(server.url, prefix, "q2", 4, 0.2, 30)
    for p in (holder, holder2):
        p.kill()
        p.wait()
    racers = [make() for _ in range(20)]
    barrier = threading.Barrier(20)
    returned: list[int] = []

    def race(w: Any, wid: str) -> None:
        barrier.wait()
        returned.append(w.fail_worker(wid))

    threads = [
        threading.Thread(target=race, args=(w, took["worker"] if i % 2 else took2["worker"]))
        for i, w in enumerate(racers)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sum(returned) == 10
    assert producer.get_tasks("q1") == [f"a{i}" for i in range(10)]
    assert producer.get_tasks("q2") == [f"b{i}" for i in range(10)]


def test_heartbeat_key_gone_self_fails_and_the_late_finish_is_fenced(
    make: Any, r: Any, prefix: str
) -> None:
    a, b = make(**FAST), make(**FAST)
    seen = record(a, "failed", "lost")
    a.start_worker(), b.start_worker()
    a.start_work("q"), b.start_work("q")
    a.enqueue("q", ["persistent", "next"])
    held = a.dequeue("q")
    r.delete(Keys(prefix).heartbeat(a.worker_id))  # what expiry does
    wait_for(
        lambda: not a.alive and b.get_tasks("q")[:1] == ["persistent"],
        what="a failed and its task back at the front",
    )
    assert b.get_tasks("q") == ["persistent", "next"]
    new_owner = b.dequeue("q")
    assert new_owner.task == "persistent" and new_owner.deliveries == 2
    wait_for(lambda: ("lost", held) in seen, what="lost event for the old owner")
    assert any(e[0] == "failed" and e[1] == held.id.split("_")[1].split(".")[0] for e in seen)
    assert a.finish_process(held.id) is False
    with pytest.raises(WorkerFailed):
        a.dequeue("q")
    assert b.finish_process(new_owner.id) is True  # the new owner is untouched
    assert a.start_worker() != held.id.split("_")[1].split(".")[0]


def test_heartbeat_lapse_is_detected_by_the_monotonic_clock_while_redis_hangs(
    make: Any, servers: Any
) -> None:
    s = servers()
    w = make(url=s.url, **FAST)
    seen = record(w, "failed", "lost")
    w.start_worker()
    w.start_work("q")
    w.enqueue("q", "t")
    p = w.dequeue("q")
    s.pause()
    try:
        wait_for(lambda: not w.alive, timeout=2, what="self-fail with Redis unresponsive")
        # (asked from this thread, the asyncio client leaves the failure to its loop)
        wait_for(lambda: seen and seen[-1][0] == "failed", what="the failed event")
        assert "lapsed" in seen[-1][2]
        assert seen[0] == ("lost", p)  # every lost comes before failed
    finally:
        s.resume()
    assert w.finish_process(p.id) is False
    producer = make(url=s.url)
    wait_for(lambda: producer.get_tasks("q") == ["t"], what="the failed worker's cleanup")


def test_persistent_task_moves_to_a_live_worker_when_its_owner_dies(
    make: Any, server: Any, prefix: str
) -> None:
    interval, ttl = 0.1, 0.4
    survivor = make(heartbeat_interval=interval, heartbeat_ttl=ttl)
    survivor.start_worker()
    survivor.start_work("conns")
    survivor.enqueue("conns", "connection-1")
    owner, took = spawn_holder(server.url, prefix, "conns", 1, interval, ttl)
    assert took["tasks"] == ["connection-1"] and survivor.dequeue("conns") is None
    owner.kill()
    owner.wait()
    taken = wait_for(lambda: survivor.dequeue("conns"), what="the survivor taking it over")
    assert taken.task == "connection-1" and taken.deliveries == 2
    assert [p.id for p in survivor.get_matching_processes("connection-1")] == [taken.id]


def test_a_stalled_worker_cannot_finish_what_a_peer_reclaimed(
    make: Any, server: Any, prefix: str
) -> None:
    interval, ttl = 0.1, 0.4
    peer = make(heartbeat_interval=interval, heartbeat_ttl=ttl)
    peer.start_worker()
    peer.start_work("q")
    peer.enqueue("q", "t")
    stalled, took = spawn_holder(server.url, prefix, "q", 1, interval, ttl)
    assert took["tasks"] == ["t"]
    os.kill(stalled.pid, signal.SIGSTOP)
    try:
        again = wait_for(lambda: peer.dequeue("q"), what="the peer taking t over")
    finally:
        os.kill(stalled.pid, signal.SIGCONT)
    out, _ = stalled.communicate("finish\n", timeout=10)
    assert json.loads(out) == {"finished": [False], "alive": False}
    assert peer.finish_process(again.id) is True


def test_total_supervision_load_grows_linearly_with_workers(make: Any, servers: Any) -> None:
    s = servers()
    r = s.client()
    workers = [make(url=s.url, **FAST) for _ in range(8)]
    for w in workers:
        w.start_worker()
    stats = lambda: r.info("commandstats")  # noqa: E731
    before, t0 = stats(), time.monotonic()
    time.sleep(1.0)  # a measuring window, not a wait for an outcome
    after, elapsed = stats(), time.monotonic() - t0
    calls = {
        c: int(after.get(f"cmdstat_{c}", {}).get("calls", 0))
        - int(before.get(f"cmdstat_{c}", {}).get("calls", 0))
        for c in ("mget", "set")
    }
    intervals = elapsed / FAST["heartbeat_interval"]
    assert (
        0 < calls["mget"] <= 1.5 * intervals + 2
    )  # one scan per interval in total, not per worker
    assert calls["set"] <= 2 * len(workers) * (intervals + 2)  # heartbeat + turn try per worker
