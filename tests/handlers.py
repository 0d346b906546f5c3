"""Handlers for worker processes started by the tests (``worqr worker tests.handlers:...``).
They record into the Redis hash named by $TEST_LEDGER at $TEST_LEDGER_URL."""

from __future__ import annotations

import os
import time

import redis

from worqr_py import Process


def _r() -> redis.Redis:
    return redis.Redis.from_url(os.environ["TEST_LEDGER_URL"])


def record(p: Process) -> None:
    """Record the task as done."""
    _r().hincrby(os.environ["TEST_LEDGER"], p.task, 1)


def slow(p: Process) -> None:
    """Say it started, then take a long time (for shutdown tests)."""
    _r().hincrby(os.environ["TEST_LEDGER"], "started:" + p.task, 1)
    time.sleep(float(os.environ.get("TEST_SLOW", "30")))
    _r().hincrby(os.environ["TEST_LEDGER"], p.task, 1)


not_callable = 42


def fail_or_slow(p: Process) -> None:
    """Raise for a task starting with "bad" (returned to the front, or dead-lettered); else
    as ``slow``."""
    if p.task.startswith("bad"):
        raise RuntimeError(f"cannot do {p.task}")
    slow(p)
