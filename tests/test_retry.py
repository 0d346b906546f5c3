"""Retries in the runtime (``run(..., retry=Retry(...))``, ``RetryLater``) and dead letters
with their reasons (``get_dead``, ``dead_letter_process``, ``stop_process(error=)``): the pure
backoff arithmetic, then both drivers on a real Redis, then a worker SIGKILLed while it holds
a retried task. Waits are bounded waits on observable conditions; "not before" is checked
against the server's TIME (the clock of due times) with a few ms of slack, and no upper bound
is tighter than several seconds (a loaded 2-core VM)."""

from __future__ import annotations

import math
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from redis import exceptions as redis_exceptions

from worqr_py import DeadLetter, Process, Retry, RetryLater
from worqr_py.core.keys import Keys

from .conftest import FAST, worker
from .support import redis_major, running, wait_for
from .test_delayed import SLACK_MS, keys_of, now_ms

SOON = 20  # seconds: a bound for a failure only
ROOT = Path(__file__).resolve().parent.parent


class Boom(Exception):
    pass


# ---- the policy, pure --------------------------------------------------------------------------
def test_list_backoff_is_exact_and_its_last_wait_repeats() -> None:
    retry = Retry(max=6, backoff=[1, 5, 30])  # jitter (on by default) is for exponential only
    assert [retry.delay(a) for a in range(1, 7)] == [1, 5, 30, 30, 30, 30]
    assert Retry(backoff=(0.25,)).delay(9) == 0.25


def test_exponential_backoff_doubles_from_base_up_to_the_cap() -> None:
    exact = Retry(base=0.5, cap=10, jitter=False)
    assert [exact.delay(a) for a in range(1, 8)] == [0.5, 1, 2, 4, 8, 10, 10]
    assert exact.delay(100_000) == 10  # no overflow
    assert Retry(jitter=False).delay(1) == 1.0 and Retry(jitter=False).delay(20) == 300.0


def test_equal_jitter_adds_a_random_half_to_the_other_half() -> None:
    retry = Retry(base=2, cap=100)
    for attempt, full in [(1, 2), (3, 8), (7, 100), (50, 100)]:
        assert retry.delay(attempt, rand=lambda: 0.0) == full / 2
        assert retry.delay(attempt, rand=lambda: 0.5) == full * 0.75
        assert retry.delay(attempt, rand=lambda: 0.999) == pytest.approx(full * 0.9995)
        assert all(full / 2 <= retry.delay(attempt) <= full for _ in range(200))


@pytest.mark.parametrize(
    ("kw", "error", "arg"),
    [
        ({"max": -1}, ValueError, "max"),
        ({"max": 1.5}, ValueError, "max"),
        ({"backoff": []}, ValueError, "backoff"),
        ({"backoff": [0]}, ValueError, "backoff"),
        ({"backoff": [1, math.nan]}, ValueError, "backoff"),
        ({"backoff": "1"}, TypeError, "backoff"),
        ({"base": 0}, ValueError, "base"),
        ({"cap": math.inf}, ValueError, "cap"),
        ({"cap": 1e300}, ValueError, "cap"),
        ({"jitter": "no"}, TypeError, "jitter"),
    ],
)
def test_bad_retry_arguments_raise_naming_the_argument(
    kw: dict[str, Any], error: type[Exception], arg: str
) -> None:
    with pytest.raises(error, match=rf"^{arg} must"):
        Retry(**kw)


@pytest.mark.parametrize(
    ("seconds", "error"),
    [
        (0, ValueError),
        (-1, ValueError),
        (math.inf, ValueError),
        ("x", TypeError),
        (True, TypeError),
    ],
)
def test_retry_later_wants_a_finite_number_of_seconds_above_zero(
    seconds: Any, error: type[Exception]
) -> None:
    with pytest.raises(error, match=r"^seconds must"):
        RetryLater(seconds)
    later = RetryLater(0.2)
    assert (later.seconds, str(later)) == (0.2, "retry in 0.2 s")
    assert str(RetryLater(1, "rate limited")) == "rate limited"


def test_run_refuses_a_retry_that_is_not_a_retry_and_writes_nothing(
    make: Any, r: Any, prefix: str
) -> None:
    w = make(**FAST)
    w.enqueue("other", "x")  # the prefix's keys before
    before = {k: r.type(k) for k in keys_of(r, prefix)}
    with pytest.raises(TypeError, match=r"^retry must be a Retry"):
        w.run("q", lambda p: None, retry="x")
    assert {k: r.type(k) for k in keys_of(r, prefix)} == before
    assert not w.alive


# ---- the runtime, both drivers -----------------------------------------------------------------
class Tries:
    """A handler recording each try as (task, deliveries, server ms at its start); it raises
    what ``fail(process)`` returns, if anything, noting the server ms just before."""

    def __init__(self, r: Any, fail: Callable[[Process], BaseException | None]) -> None:
        self.r, self.fail = r, fail
        self.log: list[tuple[str, int, int]] = []
        self.failed_at: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, p: Process) -> None:
        with self.lock:
            self.log.append((p.task, p.deliveries, now_ms(self.r)))
        exc = self.fail(p)
        if exc is not None:
            with self.lock:
                self.failed_at.append(now_ms(self.r))
            raise exc

    def deliveries(self) -> list[int]:
        with self.lock:
            return [d for _, d, _ in self.log]


def gone(w: Any, queue: str = "q") -> None:
    """Nothing left of the queue's tasks: none queued, delayed or dead."""
    assert (w.count_queue(queue), w.count_delayed(queue), w.get_dead(queue)) == (0, 0, [])


def test_a_task_failing_twice_is_retried_and_finished_once(make: Any, r: Any, prefix: str) -> None:
    w = make(**FAST)
    h = Tries(r, lambda p: ValueError("flaky") if p.deliveries < 3 else None)
    w.enqueue("q", "t")
    with running(w, "q", h, retry=Retry(max=3, backoff=[0.05])):
        wait_for(lambda: len(h.log) >= 3, SOON, "three tries")
        wait_for(lambda: w.get_matching_processes("t", "q") == [], SOON, "t acked")
    assert h.deliveries() == [1, 2, 3]  # and no fourth: it was finished
    gone(w)
    assert w.get_dead_tasks("q") == []
    assert not r.exists(Keys(prefix).queue("q").dead_reasons)


def test_a_task_always_failing_is_tried_max_plus_one_times_then_dead_with_its_error(
    make: Any, r: Any
) -> None:
    w = make(**FAST)
    h = Tries(r, lambda p: ValueError("boom 7"))
    w.enqueue("q", ["t"])
    with running(w, "q", h, retry=Retry(max=2, backoff=[0.05])):
        (d,) = wait_for(lambda: w.get_dead("q"), SOON, "a dead letter")
        after = now_ms(r)
    assert h.deliveries() == [1, 2, 3]
    assert (d.task, d.error_type, d.error_message, d.deliveries) == ("t", "ValueError", "boom 7", 3)
    assert d.traceback is not None and "Traceback" in d.traceback
    assert "ValueError: boom 7" in d.traceback
    assert h.failed_at[-1] - SLACK_MS <= d.at * 1000 <= after + SLACK_MS  # the server's TIME
    assert w.get_dead_tasks("q") == ["t"]
    assert (w.count_queue("q"), w.count_delayed("q")) == (0, 0)


def test_each_retry_waits_its_backoff_or_its_retry_later_by_the_server_clock(
    make: Any, r: Any
) -> None:
    def fail(p: Process) -> BaseException | None:
        return {1: ValueError("first"), 2: RetryLater(0.5)}.get(p.deliveries)

    w = make(**FAST)
    h = Tries(r, fail)
    w.enqueue("q", "t")
    # the second wait would be 60 s by the backoff: a RetryLater's own seconds win
    with running(w, "q", h, retry=Retry(max=3, backoff=[0.3, 60])):
        wait_for(lambda: len(h.log) >= 3, SOON, "three tries")
    assert h.deliveries() == [1, 2, 3]
    starts = [ms for _, _, ms in h.log]
    for failed, retried, wait in zip(h.failed_at, starts[1:], [300, 500], strict=True):
        assert retried >= failed + wait - SLACK_MS, f"retried {failed + wait - retried} ms early"
        assert retried - failed < SOON * 1000
    gone(w)


def test_retry_later_without_a_policy_waits_then_is_dead_lettered_by_max_deliveries(
    make: Any, r: Any
) -> None:
    w = make(**FAST, max_deliveries=2)
    h = Tries(r, lambda p: RetryLater(0.2))
    w.enqueue("q", "t")
    with running(w, "q", h):
        (d,) = wait_for(lambda: w.get_dead("q"), SOON, "a dead letter")
    assert h.deliveries() == [1, 2]
    assert h.log[1][2] >= h.failed_at[0] + 200 - SLACK_MS, "retried before 0.2 s"
    assert (d.error_type, d.error_message, d.deliveries) == (
        "worqr_py.runtime.retry.RetryLater",
        "retry in 0.2 s",
        2,
    )
    assert d.traceback is not None and "RetryLater" in d.traceback


def test_without_a_policy_an_error_on_the_last_delivery_is_recorded(make: Any, r: Any) -> None:
    w = make(**FAST, max_deliveries=2)
    h = Tries(r, lambda p: Boom(f"bad {p.deliveries}"))
    w.enqueue("q", ["t", "u"])
    with running(w, "q", h):
        wait_for(lambda: len(w.get_dead("q")) == 2, SOON, "two dead letters")
    assert [(t, d) for t, d, _ in h.log] == [("t", 1), ("t", 2), ("u", 1), ("u", 2)]  # front
    assert [(d.task, d.error_type, d.error_message, d.deliveries) for d in w.get_dead("q")] == [
        ("t", f"{__name__}.Boom", "bad 2", 2),
        ("u", f"{__name__}.Boom", "bad 2", 2),
    ]


# ---- dead_letter_process, stop_process(error=), stale reasons ----------------------------------
def test_dead_letter_process_records_a_message_once_and_stop_below_max_records_none(
    make: Any, r: Any, prefix: str
) -> None:
    w = worker(make, "q", heartbeat_ttl=30)
    reasons = Keys(prefix).queue("q").dead_reasons
    w.enqueue("q", ["t", "u"])
    p = w.dequeue("q")
    assert w.dead_letter_process(p.id, error="bad input") is True
    (d,) = w.get_dead("q")
    assert (d.task, d.error_type, d.error_message, d.traceback, d.deliveries) == (
        "t", "", "bad input", None, 1,
    )  # fmt: skip
    assert d.at is not None and abs(d.at - w.server_time()) < SOON
    assert w.dead_letter_process(p.id, error="again") is False  # no longer ours
    assert w.get_dead("q") == [d]
    q = w.dequeue("q")
    assert w.stop_process(q.id, error=ValueError("not yet")) is True  # 1 of 5 deliveries
    assert w.get_tasks("q") == ["u"]
    assert w.get_dead_tasks("q") == ["t"]
    assert set(r.hkeys(reasons)) == {"t"}


def test_a_dead_letter_never_shows_a_stale_reason(make: Any, r: Any, prefix: str) -> None:
    w = worker(make, "q", heartbeat_ttl=30, max_deliveries=1)
    reasons = Keys(prefix).queue("q").dead_reasons

    def die(task: str, error: Any = None) -> None:
        w.enqueue("q", task)
        assert w.stop_process(w.dequeue("q").id, error=error) is True  # dead: 1 delivery

    die("t", ValueError("old"))
    assert [(d.error_type, d.error_message) for d in w.get_dead("q")] == [("ValueError", "old")]
    assert w.requeue_dead("q", "t") == 1
    assert not r.hexists(reasons, "t")
    assert w.stop_process(w.dequeue("q").id) is True  # dead again, with no reason
    assert w.get_dead("q") == [DeadLetter("t")]
    die("t", ValueError("new"))  # copies share the latest copy's record...
    assert [d.error_message for d in w.get_dead("q")] == ["new", "new"]
    die("t")  # ...and a copy dead-lettered with none drops it
    assert w.get_dead("q") == [DeadLetter("t")] * 3
    assert w.requeue_dead("q") == 3
    assert w.get_tasks("q") == ["t"] * 3

    w.enqueue("q", ["a", "b"])
    for task in ("t", "t", "t", "a", "b"):  # the three requeued copies first
        assert w.stop_process(w.dequeue("q").id, error=f"why {task}") is True
    assert [d.error_message for d in w.get_dead("q")] == ["why t"] * 3 + ["why a", "why b"]
    assert w.purge_dead("q", "a") == 1
    assert set(r.hkeys(reasons)) == {"t", "b"}
    assert [(d.task, d.error_message) for d in w.get_dead("q")][-1] == ("b", "why b")
    assert w.purge_dead("q") == 4
    assert not r.exists(reasons)
    assert w.get_dead("q") == []


# ---- a worker SIGKILLed while it holds a retried task ------------------------------------------
HOLDER = """
import sys, time
import redis
from worqr_py import Retry, Worqr

url, prefix, log = sys.argv[1:4]
r = redis.Redis.from_url(url, decode_responses=True)

def handler(p):
    r.rpush(log, f"{p.task} {p.deliveries}")
    if p.deliveries == 1:
        raise ValueError("the first try fails")
    r.rpush(log, "holding")
    time.sleep(600)

w = Worqr(url, prefix=prefix, heartbeat_interval=0.1, heartbeat_ttl=0.5)
w.run("q", handler, retry=Retry(max=3, backoff=[0.05]))
"""


def test_a_retried_task_held_by_a_killed_worker_goes_to_the_front_and_is_finished_once(
    make: Any, r: Any, server: Any, prefix: str, tmp_path: Path
) -> None:
    log = f"log-{prefix}"
    w = make(heartbeat_interval=0.1, heartbeat_ttl=0.4, poll_interval=0.5)
    w.enqueue("q", "t")
    seen: list[tuple[str, int]] = []
    with open(tmp_path / "holder.err", "w") as err:
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLDER, server.url, prefix, log],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        holding = ["t 1", "t 2", "holding"]
        what = f"the holder on delivery 2 (stderr: {tmp_path / 'holder.err'})"
        wait_for(lambda: r.lrange(log, 0, -1) == holding or holder.poll() is not None, SOON, what)
        assert r.lrange(log, 0, -1) == holding, (tmp_path / "holder.err").read_text()
        assert [p.deliveries for p in w.get_matching_processes("t", "q")] == [2]
        w.enqueue("q", "later")  # behind it; the holder takes nothing while it holds t
        holder.kill()
        holder.wait(10)
        w.start_worker()  # a live peer: its supervision turn reclaims t once the holder expires
        wait_for(lambda: w.get_tasks("q") == ["t", "later"], SOON, "t back at the FRONT")
        assert w.count_delayed("q") == 0  # not delayed: a crash is not a failed try
        with running(w, "q", lambda p: seen.append((p.task, p.deliveries)), retry=Retry(max=3)):
            wait_for(lambda: len(seen) >= 2, SOON, "both tasks handled")
            wait_for(lambda: w.get_matching_processes("t", "q") == [], SOON, "t acked")
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait(10)
    assert seen == [("t", 3), ("later", 1)]
    assert r.lrange(log, 0, -1) == holding  # the holder's tries: 1 failed, 2 killed
    gone(w)
    r.delete(log)


# ---- review fixes -------------------------------------------------------------------------------
class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no str for you")


def test_policy_arguments_of_the_wrong_type_raise_type_errors_and_a_policy_is_hashable() -> None:
    with pytest.raises(TypeError, match=r"^base must be a number of seconds"):
        Retry(base="1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^backoff must be a number of seconds"):
        Retry(backoff=["a"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match=r"^attempt"):
        Retry(backoff=[1]).delay(0)
    assert hash(Retry(backoff=[1, 2])) == hash(Retry(backoff=(1, 2)))


def test_an_exception_that_cannot_be_shown_is_still_retried_then_dead_lettered(
    make: Any, r: Any
) -> None:
    """A handler's exception whose ``__str__`` raises must not stop the runner's job: the
    task is retried and dead-lettered with a placeholder, and the next task still runs."""
    w = make(**FAST)
    h = Tries(r, lambda p: Unprintable() if p.task == "bad" else None)
    w.enqueue("q", ["bad"])
    with running(w, "q", h, retry=Retry(max=1, backoff=[0.05])):
        (d,) = wait_for(lambda: w.get_dead("q"), SOON, "the dead letter")
        w.enqueue("q", "next")
        wait_for(lambda: ("next", 1) in [(t, n) for t, n, _ in h.log], SOON, "the next task")
    assert d.error_type == "tests.test_retry.Unprintable" and d.deliveries == 2
    assert d.error_message == "<unprintable Unprintable: RuntimeError>"


def test_run_warns_when_max_deliveries_would_cut_the_retries_short(
    make: Any, caplog: pytest.LogCaptureFixture
) -> None:
    w = make(**FAST, max_deliveries=3)
    with (
        caplog.at_level("WARNING", logger="worqr_py.runtime"),
        running(w, "q", lambda p: None, retry=Retry(max=2)),
    ):
        pass
    assert any("max_deliveries=3 is not above Retry(max=2)" in m for m in caplog.messages)


BUSY_LOOP = (
    "local s = tonumber(redis.call('TIME')[1]) "
    "while tonumber(redis.call('TIME')[1]) < s + 2 do end return 1"
)


def test_a_return_refused_by_a_busy_redis_is_tried_again_not_held_forever(
    make: Any, servers: Any
) -> None:
    """Redis answers BUSY (another client's slow script) to the retry of a failed task: the
    runner keeps the return and makes it again, so the task is retried once Redis is free,
    instead of staying in the live worker's record until it dies."""
    sut = servers("--busy-reply-threshold", "100") if redis_major() >= 7 else servers()
    probe = sut.client()
    w = make(url=sut.url, heartbeat_interval=0.5, heartbeat_ttl=10, poll_interval=0.5)
    seen: list[int] = []

    def handler(p: Process) -> None:
        seen.append(p.deliveries)
        if p.deliveries == 1:
            threading.Thread(target=lambda: sut.client().eval(BUSY_LOOP, 0), daemon=True).start()
            wait_for(lambda: busy(probe), SOON, "Redis busy with the slow script")
            raise ValueError("fails while Redis is busy")

    w.enqueue("q", "t")
    with running(w, "q", handler, retry=Retry(max=3, backoff=[0.05])):
        wait_for(lambda: 2 in seen, SOON, "the retry after Redis was free again")
    assert seen[:2] == [1, 2]


def busy(r: Any) -> bool:
    try:
        r.ping()
    except redis_exceptions.BusyLoadingError:  # pragma: no cover - loading, not busy
        return False
    except redis_exceptions.ResponseError as exc:
        return str(exc).startswith("BUSY")
    return False
