"""Retries in the runtime: the ``Retry`` policy given to ``run(..., retry=...)`` and the
``RetryLater`` exception a handler raises to be tried again later. Pure: no I/O."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core import validate as v


class RetryLater(Exception):
    """Raise it in a handler to have the task tried again in ``seconds`` (> 0): the process
    goes into its queue's delayed set (keeping its delivery count), and to the FRONT of the
    queue when due. It counts as a failed try: with a ``Retry`` policy, a task past its
    ``max`` retries is dead-lettered (the message recorded) instead."""

    def __init__(self, seconds: float, message: str = "") -> None:
        self.seconds = v.seconds(seconds, "seconds")
        super().__init__(message or f"retry in {self.seconds:g} s")


@dataclass(frozen=True)
class Retry:
    """How the runtime retries a task whose handler raised: up to ``max`` retries (so
    ``max + 1`` tries in all), each ``delay(attempt)`` seconds after the failure; after the
    last, the task goes to the dead-letter list with the exception recorded beside it.

    ``backoff``: the waits in seconds, one per retry (``[1, 5, 30]``; the last one repeats
    if ``max`` is larger), or None for exponential backoff: ``base * 2 ** (attempt - 1)``
    seconds, at most ``cap``, with "equal jitter" (a random half of it added to the other
    half, so retries of many tasks that failed together spread out but never come at once).
    ``jitter=False`` makes it exact. Tries are counted by the task's deliveries, so a
    delivery to a worker that died counts too."""

    max: int = 3
    backoff: Sequence[float] | None = None
    base: float = 1.0
    cap: float = 300.0
    jitter: bool = True
    _waits: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.max, bool) or not isinstance(self.max, int) or self.max < 0:
            raise ValueError(f"max must be an int >= 0, got {self.max!r}")
        waits: tuple[float, ...] = ()
        if self.backoff is not None:
            if isinstance(self.backoff, (str, bytes)) or not isinstance(self.backoff, Sequence):
                raise TypeError("backoff must be a list of seconds or None")
            if not self.backoff:
                raise ValueError("backoff must not be empty (None: exponential)")
            waits = tuple(v.seconds(x, "backoff") for x in self.backoff)
            object.__setattr__(self, "backoff", waits)  # a tuple: the policy stays hashable
        object.__setattr__(self, "_waits", waits)
        v.seconds(self.base, "base")
        v.seconds(self.cap, "cap")
        v.flag(self.jitter, "jitter")

    def to_json(self) -> dict[str, Any]:
        """The policy as JSON data (a job's options carry it; ``from_json`` reads it)."""
        backoff = list(self.backoff) if self.backoff is not None else None
        return {
            "max": self.max,
            "backoff": backoff,
            "base": self.base,
            "cap": self.cap,
            "jitter": self.jitter,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Retry:
        return cls(
            data["max"],
            data.get("backoff"),
            data.get("base", 1.0),
            data.get("cap", 300.0),
            data.get("jitter", True),
        )

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry number ``attempt`` (1 = the first retry)."""
        if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
            raise ValueError(f"attempt must be an int >= 1, got {attempt!r}")
        if self._waits:
            return self._waits[min(attempt, len(self._waits)) - 1]
        full = min(self.cap, self.base * 2 ** min(attempt - 1, 64))
        return full / 2 + full / 2 * rand() if self.jitter else float(full)
