"""Returning processes: to the FRONT now (stop), to the delayed set (a retry later), or to the
dead-letter list with the reason recorded beside it. Each fenced to the live owner. Pure."""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from . import scripts as S
from . import validate as v
from .base import CoreBase
from .calls import Call, Op, command, script
from .keys import QueueKeys, split_process_id
from .model import Dead, Lost, Process

MESSAGE_CHARS = 2000  # of an exception's message recorded beside its dead letter
TRACEBACK_CHARS = 8000  # of its traceback (the end is kept: where it was raised)


def error_reason(error: BaseException | str | None) -> str:
    """The JSON object recorded beside a dead letter for ``error``: an exception's type,
    message and traceback, or a plain message; "" for None (no reason)."""
    if error is None:
        return ""
    if isinstance(error, BaseException):
        kind = type(error).__qualname__
        if type(error).__module__ not in ("builtins", "__main__"):
            kind = f"{type(error).__module__}.{kind}"
        message, tb = _safely(str, error), ""
        if error.__traceback__ is not None:
            tb = _safely(lambda e: "".join(traceback.format_exception(e)), error)
    elif isinstance(error, str):
        kind, message, tb = "", error, ""
    else:
        raise TypeError(f"error must be an exception, a str or None, not {type(error).__name__}")
    reason = {
        "type": kind,
        "message": message[:MESSAGE_CHARS],
        "traceback": tb[-TRACEBACK_CHARS:],
    }
    return json.dumps(reason, separators=(",", ":"))


def _safely(show: Callable[[BaseException], str], error: BaseException) -> str:
    """``show(error)``, or a placeholder if the exception cannot be shown (a ``__str__`` that
    raises must not stop the return of its task)."""
    try:
        return show(error)
    except Exception as exc:
        return f"<unprintable {type(error).__name__}: {type(exc).__name__}>"


class ReturnOps(CoreBase):
    """stop_process (now, or later), dead_letter_process, give_back."""

    def stop_process(
        self, process_id: str, delay: Any = None, error: BaseException | str | None = None
    ) -> Op[bool]:
        """Return the process to the FRONT of its queue if still ours (stop.lua, fenced); a
        task already delivered ``max_deliveries`` times goes to the dead-letter list instead
        (a ``dead`` event), with ``error`` (an exception or a message) recorded beside it.
        True if it was ours. With ``delay`` (seconds or a timedelta, > 0): a retry later
        instead of next: it goes into the queue's delayed set, keeping its delivery count,
        and to the front when due (retry.lua, fenced, atomic; hint.lua in the same
        pipeline)."""
        parts = self._parse(process_id)
        when = v.when(delay, None)
        reason = error_reason(error)
        if when is not None and when[1] > 0:
            return (yield from self._return(process_id, parts, "later", when[1], reason))
        return (yield from self._return(process_id, parts, "front", 0, reason))

    def retry_process(
        self, process_id: str, delay: Any, error: BaseException | str | None = None
    ) -> Op[bool]:
        """The runtime's retry with a ``Retry`` policy: as ``stop_process(id, delay=...)``
        (retry.lua, fenced, atomic) but never dead-lettered by ``max_deliveries`` (the
        policy counts the tries). True if it was ours."""
        parts = self._parse(process_id)
        when = v.when(delay, None)
        if when is None or when[1] <= 0:
            raise ValueError(f"delay must be > 0, got {delay!r}")
        return (yield from self._return(process_id, parts, "retry", when[1], error_reason(error)))

    def dead_letter_process(
        self, process_id: str, error: BaseException | str | None = None
    ) -> Op[bool]:
        """Move the process to its queue's dead-letter list now if still ours (stop.lua with
        one delivery allowed: fenced, atomic; a ``dead`` event), releasing a unique task's
        lock, with ``error`` (an exception or a message) recorded beside it (``get_dead``).
        True if it was ours."""
        parts = self._parse(process_id)
        return (yield from self._return(process_id, parts, "dead", 0, error_reason(error)))

    def _return(
        self, pid: str, parts: tuple[str, str, str], how: str, delay_ms: int, reason: str
    ) -> Op[bool]:
        """Return W's process: "front", "later" (by ``delay_ms``), "retry" (later, never
        dead-lettered) or "dead"."""
        queue, owner, token = parts
        w = self.worker
        wid = self._started()
        if owner != wid:
            return False
        if not self._check():
            w.held.pop(pid, None)
            return False
        k = self.keys.queue(queue)
        relist = command("SADD", self.keys.queues, queue)  # a return may re-create the queue
        if how in ("later", "retry"):
            dead_after = self.options.dead_after if how == "later" else 0
            args: list[str | int] = [wid, k.events, dead_after, self._wakes(k)]
            args += [queue, delay_ms, reason, k.job_ends, token]
            reply, _, _ = yield [
                script(S.RETRY, [*k.retry_keys(wid), *self._tally(k)], args),
                relist,
                self._hint(queue, "now"),  # one round trip; a lower bound of the due time
            ]
        else:
            dead_after = 1 if how == "dead" else self.options.dead_after
            reply, _ = yield [self._stop(k, wid, dead_after, [token], reason), relist]
        proc = w.held.pop(pid, None)
        outcome = int(reply[0]) if reply else 0
        if outcome == 0 and proc is not None:
            self.notify(Lost(proc))
        if outcome == 2 and proc is not None:
            self.notify(Dead(queue, proc.task))
        return outcome > 0

    def give_back(self, procs: Sequence[Process]) -> Op[int]:
        """Return processes this worker took but will not run (a dequeue whose caller was
        cancelled) to the FRONT of their queue as a graceful leave (never dead-lettered):
        stop.lua, fenced, one call per queue. Returns how many went back."""
        w = self.worker
        by_queue: dict[str, list[str]] = {}
        for p in procs:
            queue, wid, token = self._parse(p.id)
            if wid == w.id and w.held.pop(p.id, None) is not None:
                by_queue.setdefault(queue, []).append(token)
        calls = []
        for queue, tokens in by_queue.items():
            k = self.keys.queue(queue)
            calls += [
                self._stop(k, w.id or "", 0, tokens),
                command("SADD", self.keys.queues, queue),
            ]
        replies: list[Any] = (yield calls)[0::2] if calls else []
        return sum(int(x) == 1 for reply in replies for x in reply)

    def _stop(
        self, k: QueueKeys, wid: str, dead_after: int, tokens: Sequence[str], reason: str = ""
    ) -> Call:
        """Return W's processes ``tokens`` to the front of the queue (stop.lua, fenced);
        ``dead_after`` deliveries dead-letter a task instead (0: never; 1: at once), with
        ``reason`` (error_reason) recorded."""
        args: list[str | int] = [wid, k.events, dead_after, self._wakes(k), k.queue, reason]
        keys = [*k.stop_keys(wid), *self._tally(k)]
        return script(S.STOP, keys, [*args, k.job_ends, *tokens])

    def _parse(self, pid: str) -> tuple[str, str, str]:
        parts = split_process_id(v.name(pid, "process_id"))
        if parts is None:
            raise ValueError(f"process_id {pid!r} is not a worqr process id")
        return parts
