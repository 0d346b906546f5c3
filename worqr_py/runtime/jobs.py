"""The job runtime's policy, shared by both runners (``run_jobs``): which function a job calls
and with what, what becomes of a job that raised, timeouts, and the counters. No Redis here.

Timeouts: a coroutine function is cancelled (``asyncio.wait_for``); a plain function is
interrupted in its thread by an asynchronous ``JobTimeout`` (as dramatiq and rq do): it lands
when the thread next runs Python bytecode, so a call blocked in C (a long ``sleep``, a read)
is interrupted when it returns. ``isolation="process"`` runs each call in a child process
that is killed at the timeout.
"""

from __future__ import annotations

import asyncio
import collections
import ctypes
import inspect
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..core import validate as v
from ..core.jobs import JobCall
from ..core.model import Process
from ..core.returns import error_reason
from ..errors import JobTimeout, UnknownFunction
from .children import Children, JobChildError
from .retry import Retry, RetryLater

log = logging.getLogger("worqr_py.jobs")
ISOLATIONS = ("thread", "process")
COUNTS = ("done", "failed", "retried", "timed_out")
RUN_JOBS_DOC = """Run a job worker on the queue(s): as ``run`` (same options and shutdown), but
each task is a job made by ``submit``, dispatched by function name to ``functions`` (a mapping of
names to plain or coroutine functions), called with the job's args and kwargs, plus
``job=JobContext`` if the function has a parameter named ``job``. What it returns is the
job's result (serialized; acked with the next take: one round trip per job). What it raises
retries the job by its ``Retry`` (the job's own, else ``retry``) or fails it with the
exception recorded; an unknown function name or unreadable arguments fail it at once.
``timeout`` (seconds; the job's own wins) bounds each call: see ``runtime/jobs.py``. Each job
is logged with its wait in the queue and its run time; ``job_counts()`` has the counters."""


def run_jobs_handler(p: Process) -> None:
    """The handler ``run_jobs`` gives its runner: never called (jobs run by ``run_job``)."""
    raise AssertionError("run_jobs runs jobs, not a handler")


@dataclass(frozen=True, slots=True)
class JobContext:
    """What a job function gets as ``job=`` if it asks for it: the job's ``id``, its
    ``queue``, ``function``, ``attempt`` (1 on the first delivery) and its ``process``."""

    id: str
    queue: str
    function: str
    attempt: int
    process: Process


class Counters:
    """Jobs done, failed, retried and timed out, per queue and function. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: collections.Counter[tuple[str, str, str]] = collections.Counter()

    def add(self, queue: str, function: str, what: str) -> None:
        with self._lock:
            self._counts[(queue, function, what)] += 1

    def snapshot(self) -> dict[tuple[str, str], dict[str, int]]:
        """``{(queue, function): {"done": n, "failed": n, "retried": n, "timed_out": n}}``."""
        with self._lock:
            out: dict[tuple[str, str], dict[str, int]] = {}
            for (queue, function, what), n in self._counts.items():
                out.setdefault((queue, function), dict.fromkeys(COUNTS, 0))[what] = n
            return out


class JobPolicy:
    """The functions and defaults of one ``run_jobs``."""

    def __init__(
        self,
        functions: Mapping[str, Callable[..., Any]],
        timeout: float | None,
        isolation: str,
        retry: Retry | None,
    ) -> None:
        if not isinstance(functions, Mapping) or not functions:
            raise TypeError("functions must be a non-empty mapping of names to functions")
        for name, f in functions.items():
            if not isinstance(name, str) or not callable(f):
                raise TypeError(f"functions[{name!r}] must be a callable under a str name")
        if isolation not in ISOLATIONS:
            raise ValueError(f"isolation must be one of {ISOLATIONS}, got {isolation!r}")
        self.functions = dict(functions)
        self.asks = {n: "job" in _parameters(f) for n, f in self.functions.items()}
        self.timeout = None if timeout is None else v.seconds(timeout, "timeout")
        self.isolation = isolation
        self.retry = retry
        self.children = Children()  # isolation="process": the children running jobs now

    def prepare(self, call: JobCall, p: Process) -> tuple[Callable[..., Any], dict[str, Any]]:
        """The function to call and its kwargs (with ``job=`` if it asks). Raises
        ``UnknownFunction``."""
        f = self.functions.get(call.function)
        if f is None:
            known = ", ".join(sorted(self.functions))
            raise UnknownFunction(f"no function {call.function!r} in this worker ({known})")
        kwargs = dict(call.kwargs)
        if self.asks[call.function]:
            kwargs["job"] = JobContext(call.id, p.queue, call.function, p.deliveries, p)
        return f, kwargs

    def timeout_of(self, call: JobCall) -> float | None:
        """The job's timeout: its own, else the worker's. Raises TypeError or ValueError if
        its options are unreadable (the job then fails, as one whose arguments are)."""
        own = call.options.get("timeout")
        if own is None:
            return self.timeout
        return v.seconds(own, "the job's timeout option")

    def retry_of(self, call: JobCall | None) -> Retry | None:
        """The job's Retry: its own, else the worker's. Raises ValueError if unreadable."""
        own = call.options.get("retry") if call is not None else None
        if not own:
            return self.retry
        try:
            return Retry.from_json(own)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"the job's retry option is unreadable: {own!r} ({exc})") from None

    def failed(self, p: Process, call: JobCall | None, exc: BaseException) -> tuple[str, float]:
        """What becomes of a job whose call raised ``exc``, as ``(how, wait)``: ``("retry",
        seconds)`` while its ``Retry`` allows (a ``RetryLater``'s own wait), ``("later",
        seconds)`` for a ``RetryLater`` without one (dead-lettered after ``max_deliveries``),
        else ``("fail", 0)``: it ends failed with the exception recorded. An unknown function
        or an unreadable call fails at once. Logged."""
        try:
            retry = self.retry_of(call)
        except ValueError:  # checked before the call ran: it failed for this reason
            retry, call = None, None
        name = call.function if call is not None else "?"
        if call is None or isinstance(exc, UnknownFunction):
            how, wait = "fail", 0.0
        elif retry is not None and p.deliveries <= retry.max:
            wait = exc.seconds if isinstance(exc, RetryLater) else retry.delay(p.deliveries)
            how = "retry"
        elif isinstance(exc, RetryLater) and retry is None:
            how, wait = "later", exc.seconds
        else:
            how, wait = "fail", 0.0
        if how == "fail":
            log.error("job %s %s failed (try %d)", p.task[1:], name, p.deliveries, exc_info=exc)
        else:
            log.warning(
                "job %s %s raised %s (try %d); again in %.3g s",
                p.task[1:],
                name,
                type(exc).__name__,
                p.deliveries,
                wait,
            )
        return how, wait


def _parameters(f: Callable[..., Any]) -> Mapping[str, Any]:
    try:
        return inspect.signature(f).parameters
    except (TypeError, ValueError):
        return {}


def log_done(call: JobCall, p: Process, started: float) -> None:
    """Log a job that returned: its wait in the queue (server clock) and its run time."""
    log.info(
        "job %s %s done in %.3f s (waited %.3f s in %r, try %d)",
        call.id,
        call.function,
        time.monotonic() - started,
        max(0, call.began_ms - call.enqueued_ms) / 1000,
        p.queue,
        p.deliveries,
    )


class Interrupted(BaseException):
    """The asynchronous exception that interrupts a plain function at its timeout: not an
    ``Exception``, so the function's own ``except Exception`` does not swallow it;
    ``call_with_timeout`` turns it into ``JobTimeout``."""


def call_with_timeout(
    f: Callable[..., Any], args: list[Any], kwargs: dict[str, Any], timeout: float | None
) -> Any:
    """Call ``f`` in this thread; after ``timeout`` seconds raise ``JobTimeout`` in it (an
    asynchronous exception, set only while the call runs)."""
    if timeout is None:
        return f(*args, **kwargs)
    ident = threading.get_ident()
    lock = threading.Lock()
    running = [True]

    def interrupt() -> None:
        with lock:
            if running[0]:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(ident), ctypes.py_object(Interrupted)
                )

    timer = threading.Timer(timeout, interrupt)
    timer.daemon = True
    try:
        timer.start()  # in the try: a short timeout can fire while start() waits for it
        try:
            return f(*args, **kwargs)
        finally:
            with lock:
                running[0] = False
            timer.cancel()  # an interrupt set just before the lock lands by here: caught below
    except Interrupted:
        raise JobTimeout(f"the job ran longer than {timeout:g} s (interrupted)") from None


async def await_with_timeout(result: Any, timeout: float | None) -> Any:
    """Await a coroutine, cancelling it after ``timeout`` seconds (then ``JobTimeout``). A
    ``TimeoutError`` the coroutine raises itself stays its own."""
    if timeout is None:
        return await result
    task = asyncio.ensure_future(_exit_contained(result))
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout)
    except BaseException:  # our caller was cancelled (a forced shutdown): so is the job
        task.cancel()
        raise
    if not done:
        task.cancel()
        await asyncio.wait({task})
        raise JobTimeout(f"the job ran longer than {timeout:g} s")
    outcome = task.result()
    if isinstance(outcome, _Exited):
        raise outcome.exc  # in the caller's task, which fails the job with it
    return outcome


class _Exited:
    """A ``SystemExit`` a job's coroutine raised in the task ``await_with_timeout`` runs it
    in, carried out as a value: raised there, it would stop the event loop itself."""

    def __init__(self, exc: SystemExit) -> None:
        self.exc = exc


async def _exit_contained(result: Any) -> Any:
    try:
        return await result
    except SystemExit as exc:
        return _Exited(exc)


def job_error(exc: BaseException) -> str:
    """The error recorded for a job that raised ``exc`` (a child's own, if it was one)."""
    if isinstance(exc, JobChildError) and exc.reason:
        return exc.reason
    return error_reason(exc)
