"""The pure core alone: operations driven with scripted replies and a fake clock, no Redis.
These add to the real-Redis behaviour tests (the main suite); they pin the arithmetic the
drivers rely on: fencing margins, tokens, reply parsing, event order and backoff."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import pytest

from worqr_py.core import Core, Options, Process
from worqr_py.core.calls import Call, Op, Step
from worqr_py.core.keys import process_id, split_process_id
from worqr_py.core.model import Cleanup, CoreEvent, Failed, Lost, Reason
from worqr_py.drivers.base import RetryClock, jittered
from worqr_py.errors import NotWorking, WorkerFailed


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def drive(op: Op[Any], replies: Iterable[Any]) -> tuple[Any, list[Step]]:
    """Run an operation with these replies, one per step; returns its result and steps."""
    steps: list[Step] = []
    try:
        step = next(op)
        for reply in replies:
            steps.append(step)
            step = op.send(reply)
    except StopIteration as stop:
        return stop.value, steps
    raise AssertionError(f"the operation wants more replies; next step: {step}")


def core(**options: Any) -> tuple[Core, Clock, list[CoreEvent]]:
    clock, events = Clock(), []
    ids = (f"w{i}" for i in itertools.count(1))
    c = Core(Options(prefix="p", **options), events.append, clock=clock, new_id=lambda: next(ids))
    return c, clock, events


def started(c: Core, *queues: str) -> str:
    wid, _ = drive(c.start_worker(), [[1, "run_id:abc\r\n"]])
    for q in queues:
        drive(c.start_work(q), [[1, 1, 1]])
    return str(wid)


def test_a_worker_trusts_itself_until_its_ttl_minus_the_margin() -> None:
    c, clock, events = core(heartbeat_interval=1.0, heartbeat_ttl=3.0)
    started(c)
    assert c.worker.deadline == 1000.0 + 3.0 - 1.0  # margin (ttl - interval) / 2 = 1 s
    clock.now = 1001.99
    assert c._check()
    clock.now = 1002.0
    assert not c._check()
    assert events == [Cleanup(c.worker), Failed("w1", Reason.LAPSED)]


def test_a_beat_extends_the_deadline_from_when_it_was_sent() -> None:
    c, clock, _ = core(heartbeat_interval=1.0, heartbeat_ttl=3.0)
    started(c)
    clock.now = 1001.5
    turn, steps = drive(c.beat(), [[3000, None]])
    assert turn is False
    assert isinstance(steps[0], list) and steps[0][0].args[:4] == ("SET", "{p}:hb:w1", 3000, "XX")
    assert c.worker.deadline == 1001.5 + 2.0


def test_a_lost_heartbeat_fails_the_worker_and_reports_a_restart_once() -> None:
    c, _, events = core()
    started(c, "q")
    drive(c.dequeue("q"), [[[], -1, "t", 1]])
    drive(c.beat(), [[None, None], "run_id:xyz\r\n"])
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["RedisRestarted", "Cleanup", "Lost", "Failed"]
    assert events[-1] == Failed("w1", Reason.RESTARTED)
    assert events[0].new_run_id == "xyz"  # type: ignore[union-attr]


def test_dequeue_tokens_count_up_and_name_their_processes() -> None:
    c, _, _ = core()
    wid = started(c, "q")
    procs, steps = drive(c.dequeue("q", 2), [[[], -1, "a", 1, "b", 3]])
    assert procs == [
        Process(process_id("q", wid, 1), "q", "a", 1),
        Process(process_id("q", wid, 2), "q", "b", 3),
    ]
    more, steps = drive(c.dequeue("q", 1, finish=[procs[0].id]), [[[1], -1, "c", 1]])
    call = steps[0]
    assert isinstance(call, Call) and call.args[call.nkeys : call.nkeys + 3] == (wid, 3, 1)
    assert call.args[-1] == "1"  # the token finished with this take
    assert more[0].id == process_id("q", wid, 3)
    assert [p.task for p in c.worker.held.values()] == ["b", "c"]


def test_a_take_acks_what_it_finishes_and_tells_of_the_ones_no_longer_ours() -> None:
    c, _, events = core()
    wid = started(c, "q")
    procs, _ = drive(c.dequeue("q", 3), [[[], -1, "a", 1, "b", 1, "\x1fk\x1f{}\x1fcall", 2]])
    assert procs[2] == Process(process_id("q", wid, 3), "q", "\x1fk", 2, "{}\x1fcall")
    assert procs[2].job == "{}\x1fcall"
    # all ours and all still ours: the plain tokens go bare, the job's with "n:"
    _, steps = drive(c.dequeue("q", 1, finish=[p.id for p in procs]), [[[1, 1, 1], -1]])
    assert steps[0].args[-3:] == ("1", "2", "3:n:")  # type: ignore[union-attr]
    assert c.worker.held == {} and events == []
    # one of another worker's (not sent), and one that a flag says is no longer ours
    procs, _ = drive(c.dequeue("q", 2), [[[], -1, "c", 1, "d", 1]])
    other = process_id("q", "w9", 7)
    finish = [procs[0].id, other, procs[1].id]
    _, steps = drive(c.dequeue("q", 1, finish=finish), [[[1, 0], -1]])
    assert steps[0].args[-2:] == ("5", "6")  # type: ignore[union-attr]
    assert events == [Lost(procs[1])] and c.worker.held == {}


def test_a_dequeue_refused_by_the_queue_fails_the_worker() -> None:
    c, _, events = core()
    started(c, "q")
    with pytest.raises(WorkerFailed):
        drive(c.dequeue("q"), [-1])
    assert events[-1] == Failed("w1", Reason.REMOVED)


def test_a_finish_refused_by_the_queue_fails_the_worker_and_loses_the_process() -> None:
    c, _, events = core()
    started(c, "q")
    (p,), _ = drive(c.dequeue("q"), [[[], -1, "t", 1]])
    ok, _ = drive(c.finish_processes([p.id]), [[-1]])
    assert ok == [False]
    assert [type(e) for e in events] == [Lost, Cleanup, Failed]


def test_dequeue_checks_its_arguments_before_any_step() -> None:
    c, _, _ = core()
    started(c, "q")
    with pytest.raises(TypeError, match="count"):
        next(c.dequeue("q", True))
    with pytest.raises(NotWorking):
        next(c.dequeue("other"))


def test_process_ids_split_at_the_last_underscore() -> None:
    assert split_process_id(process_id("a_b_c", "ff00", 12)) == ("a_b_c", "ff00", "12")
    assert split_process_id("no-token_ff00") is None
    assert split_process_id("q_ff00.x") is None


def test_backoff_has_full_jitter_under_its_cap() -> None:
    random.seed(7)
    waits = [jittered(attempt, 0.05, 5.0) for attempt in range(12) for _ in range(50)]
    assert all(0 <= x <= 5.0 for x in waits)
    assert max(waits[-50:]) > 2.5 and min(waits[:50]) < 0.05  # grows, and never in step
    clock = RetryClock(0)
    assert clock.delay() is None  # no retries when the timeout is 0


def test_a_dequeue_whose_reply_comes_after_the_clock_ran_out_takes_nothing() -> None:
    """Checked and recorded at once: either the process is held (and a later failure tells
    ``lost``) or the dequeue raises; never a process held by a failed worker unseen."""
    c, clock, events = core(heartbeat_interval=1.0, heartbeat_ttl=3.0)
    started(c, "q")
    op = c.dequeue("q")
    next(op)
    clock.now = 1003.0  # past the deadline while the call was in flight
    with pytest.raises(WorkerFailed):
        op.send([[], -1, "t", 1])
    assert c.worker.held == {}
    assert [type(e) for e in events] == [Cleanup, Failed]


def test_a_dequeue_reply_teaches_when_the_next_delayed_task_is_due() -> None:
    c, clock, _ = core()
    started(c, "q", "r")
    drive(c.dequeue("q"), [[[], 1500]])  # nothing to take; the next delayed one in 1.5 s
    both = frozenset({"q", "r"})
    assert c.due_in(both) == 1.5 and c.due_in(frozenset({"r"})) == float("inf")
    clock.now += 1.0
    assert c.due_in(both) == 0.5 and c.pop_due(both) == []
    clock.now += 0.5
    assert c.pop_due(both) == ["q"] and c.pop_due(both) == []  # once: the next take says more
    drive(c.dequeue("q"), [[[], -1]])  # none left
    assert c.due_in(both) == float("inf")


def test_a_delay_is_checked_before_anything_is_sent() -> None:
    c, _, _ = core()
    for bad in ("1", -1, float("nan"), True):
        with pytest.raises((TypeError, ValueError), match="delay"):
            next(c.enqueue("q", "t", delay=bad))
    with pytest.raises(ValueError, match="delay or at"):
        next(c.enqueue("q", "t", delay=1, at=datetime.now()))
    schedule, _, hint = next(c.enqueue("q", "t", delay=timedelta(seconds=1.5)))  # type: ignore[misc]
    argv = schedule.args[schedule.nkeys :]
    assert schedule.script is not None and schedule.script.name == "schedule"
    # the registry hint rides in the same pipeline, as a lower bound of the due time
    assert hint.script is not None and hint.script.name == "hint"
    assert hint.args[hint.nkeys :] == ("q", "now")
    assert argv[3:6] == ("in", 1500, "") and argv[-1] == "t"  # ms from now, by Redis' clock
