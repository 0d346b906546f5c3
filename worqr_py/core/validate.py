"""Argument checks. Each raises TypeError or ValueError naming the argument, before any I/O."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any


def name(value: Any, arg: str) -> str:
    """A non-empty str that encodes as UTF-8 (queue names, worker ids, process ids)."""
    if not isinstance(value, str):
        raise TypeError(f"{arg} must be a str, not {type(value).__name__}")
    if not value:
        raise ValueError(f"{arg} must not be empty")
    _utf8(value, arg)
    return value


def task(value: Any, arg: str = "task") -> str:
    """A task: any str (the empty string included) that encodes as UTF-8."""
    if not isinstance(value, str):
        raise TypeError(f"{arg} must be a str, not {type(value).__name__}")
    _utf8(value, arg)
    return value


def new_task(value: Any, arg: str = "task") -> str:
    """A task to enqueue: a task that does not start with "\\x1f" (that marks a job)."""
    if task(value, arg).startswith("\x1f"):
        raise ValueError(f"{arg} must not start with '\\x1f' (it marks a job: use submit)")
    return value  # type: ignore[no-any-return]


def unique_task(value: Any) -> str:
    """The one task of a ``unique=True`` enqueue (a list is not allowed)."""
    if not isinstance(value, str):
        raise TypeError(f"task must be a str with unique=True, not {type(value).__name__}")
    return new_task(value)


def tasks(value: Any, arg: str = "task") -> list[str]:
    """A task to enqueue, or a list/tuple of them, as a list. A list is checked in one pass
    (types and the job mark per task, UTF-8 once for all: a str that does not encode makes
    their concatenation fail too); only a bad one is looked for task by task, to name it."""
    if not isinstance(value, (list, tuple)):
        return [new_task(value, arg)]
    out = list(value)
    for t in out:
        if not isinstance(t, str) or t.startswith("\x1f"):
            break
    else:
        try:
            "".join(out).encode("utf-8")
            return out
        except UnicodeEncodeError:
            pass
    return [new_task(t, f"{arg}[{i}]") for i, t in enumerate(out)]


def job_key(value: Any, arg: str = "job_id") -> str:
    """A job key: 1 to 200 printable characters without "@" (it ends a job id) or "\\x1f"."""
    text = name(value, arg)
    if len(text) > 200 or "@" in text or not text.isprintable():
        raise ValueError(f"{arg} must be 1 to 200 printable characters without '@', got {text!r}")
    return text


# The longest a delay, a wait or a time to live may be: a century. Times in ms stay exact in
# Lua (below 2**53), waits below threading.TIMEOUT_MAX, and due times before the year 9999.
MAX_SECONDS = 3_155_760_000


def seconds(value: Any, arg: str) -> float:
    """A positive number of seconds, at most ``MAX_SECONDS``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{arg} must be a number of seconds, not {type(value).__name__}")
    if not 0 < value <= MAX_SECONDS:
        raise ValueError(
            f"{arg} must be a positive number of seconds, at most a century "
            f"({MAX_SECONDS}), got {value!r}"
        )
    return float(value)


def queue_names(value: Any, arg: str = "queues") -> list[str] | None:
    """None, or a list (any iterable but a str) of queue names; a str is refused (iterated,
    it would be its letters)."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"{arg} must be a list of queue names or None, not {type(value).__name__}")
    return [name(q, f"{arg}[{i}]") for i, q in enumerate(value)]


def flag(value: Any, arg: str) -> bool:
    """A bool (not a truthy str such as "no")."""
    if not isinstance(value, bool):
        raise TypeError(f"{arg} must be a bool, not {type(value).__name__}")
    return value


def prefix(value: Any) -> str:
    """A key prefix: a non-empty str without braces (they would change the hash tag)."""
    text = name(value, "prefix")
    if "{" in text or "}" in text:
        raise ValueError("prefix must not contain '{' or '}'")
    return text


def _utf8(value: str, arg: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{arg} is not valid UTF-8 text: {exc.reason}") from None


def when(delay: Any, at: Any) -> tuple[str, int] | None:
    """``delay`` (seconds, a number or a ``timedelta``, >= 0) or ``at`` (a ``datetime``; a
    naive one is local time) as ``("in", ms)`` or ``("at", ms since the epoch)``; None if
    neither is given. Both at once is an error."""
    if delay is not None and at is not None:
        raise ValueError("give delay or at, not both")
    if delay is not None:
        if isinstance(delay, timedelta):
            delay = delay.total_seconds()
        if isinstance(delay, bool) or not isinstance(delay, (int, float)):
            raise TypeError(f"delay must be seconds or a timedelta, not {type(delay).__name__}")
        if not 0 <= delay <= MAX_SECONDS:
            raise ValueError(
                f"delay must be a number of seconds >= 0, at most a century ({MAX_SECONDS}), "
                f"got {delay!r}"
            )
        return ("in", math.ceil(delay * 1000))
    if at is not None:
        if not isinstance(at, datetime):
            raise TypeError(f"at must be a datetime, not {type(at).__name__}")
        return ("at", math.ceil(at.timestamp() * 1000))
    return None


def limit(value: Any, arg: str = "limit") -> int:
    """How many entries a read returns, at most: None (all) as -1 (LRANGE/ZRANGE's "to the
    end" stop), else an int >= 1 as the stop index ``value - 1``."""
    if value is None:
        return -1
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{arg} must be None or an int >= 1, got {value!r}")
    return value - 1
