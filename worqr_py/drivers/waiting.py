"""A job waiter's deadline arithmetic (``wait_for_job``), shared by both drivers' job APIs
(the sync one is generated from the asyncio one: this keeps one copy). Pure: no I/O."""

from __future__ import annotations

import time
from typing import Any

from ..errors import JobWaitTimeout

CALL_FLOOR_S = 1.0  # a waiter's call to Redis gets at least this long, even past its deadline


def wait_limit(value: Any) -> float:
    """A waiter's ``timeout`` (not None): seconds >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"timeout must be None or seconds >= 0, got {value!r}")
    return float(value)


def call_window(deadline: float | None) -> float | None:
    """How long a waiter's call to Redis may take: the time to its deadline (None: no
    deadline), at least ``CALL_FLOOR_S`` (so a timeout of 0 still reads once)."""
    return None if deadline is None else max(CALL_FLOOR_S, deadline - time.monotonic())


def give_up(job_id: str, deadline: float | None, limit: float | None, exc: BaseException) -> None:
    """A waiter's call to Redis failed: ``JobWaitTimeout`` if its deadline has passed."""
    if deadline is not None and time.monotonic() >= deadline:
        raise JobWaitTimeout(
            f"job {job_id!r}: no answer from Redis within {limit:g} s ({type(exc).__name__})"
        ) from exc
