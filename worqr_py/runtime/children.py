"""``isolation="process"``: each job call in a spawned child process. No Redis here.

A child leads a process group of its own, so that

* a Ctrl-C in a terminal (SIGINT to the terminal's foreground process group) reaches the
  worker, which stops gracefully and lets the job finish within ``grace``, and not the job,
  which it would fail with ``KeyboardInterrupt``. The child is started with SIGINT blocked
  and drops one that came before it left the group, so no moment of its start is exposed;
* a kill (the timeout, or a stop whose grace ran out) reaches the processes the job started
  in its group as well, not the child alone (one started in a session or group of its own,
  ``start_new_session=True``, is not reached);

and it watches the worker: when the worker's process is gone (killed outright: SIGKILL, a
closed terminal's SIGHUP, Ctrl-\\), a thread of the child kills the child's group, so no
process goes on with a job that a peer then runs again. It acts as soon as the child runs
Python (a call in C that holds the GIL delays it). As a group leader the child cannot call
``os.setsid()`` (EPERM); a job starts a process in a session of its own instead.

SIGTERM is left as it is: a ``kill`` of the child still ends it (the job then fails as a child
that died). A service manager that signals every process of the service at once (systemd's
default ``KillMode=control-group``) should signal the worker alone (``KillMode=mixed``).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing import resource_tracker
from typing import Any

from ..core.returns import error_reason
from ..errors import JobTimeout

_GROUPS = hasattr(os, "setpgid") and hasattr(signal, "pthread_sigmask")  # POSIX


class Children:
    """The child processes of one ``run_jobs``'s process-isolated jobs while they run, so
    that ``run_jobs`` kills those still running when it ends (a grace that ran out:
    ``fail_worker`` has returned their jobs, which another worker may take at once)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._procs: set[Any] = set()
        self._closed = False  # kill_all ran: a child started after it is killed at once

    def add(self, proc: Any) -> None:
        with self._lock:
            self._procs.add(proc)
            late = self._closed
        if late:
            kill_tree(proc)

    def discard(self, proc: Any) -> None:
        with self._lock:
            self._procs.discard(proc)

    def kill_all(self) -> None:
        """SIGKILL every child still running a job, with the processes it started. Under
        the lock: a child leaves the set before it is reaped (``call_in_process``), so its
        pid is never signalled once it may name another process."""
        with self._lock:
            self._closed = True
            for proc in self._procs:
                kill_tree(proc)


def kill_tree(proc: Any) -> None:
    """SIGKILL a child and its process group (what its job started). A child that has not
    made its group yet has started nothing: it is killed alone."""
    if _GROUPS:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(Exception):
        proc.kill()


def call_in_process(
    f: Callable[..., Any],
    args: list[Any],
    kwargs: dict[str, Any],
    timeout: float | None,
    children: Children | None = None,
) -> Any:
    """Call ``f`` (importable: module-level) in a child process (spawned: nothing of this
    process' threads or connections is inherited) leading its own process group; kill the
    group after ``timeout`` seconds (``JobTimeout``), or 5 s after the call ended if the
    child has not exited by then. Its exception comes back as a ``JobChildError`` with its
    record. ``children``: where the child is listed while it runs."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    watched, alive = ctx.Pipe(duplex=False)  # the child sees EOF on ``watched`` once
    # every copy of ``alive`` is closed: this one, after the child ended, or this process
    target_args = (child, f, args, kwargs, watched, os.getpid())
    proc = ctx.Process(target=_child, args=target_args)  # may have children
    if _GROUPS:  # the child inherits this thread's mask: SIGINT stays pending in it
        resource_tracker.ensure_running()  # first: starting it unblocks SIGINT in this thread
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        proc.start()
    finally:
        if _GROUPS:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    child.close()
    watched.close()
    if children is not None:
        children.add(proc)
    ok: bool | None = None
    try:
        if not parent.poll(timeout):
            kill_tree(proc)
            raise JobTimeout(f"the job ran longer than {timeout:g} s (child process killed)")
        with contextlib.suppress(EOFError):  # the child died: ok stays None
            ok, value = parent.recv()
    finally:
        if children is not None:
            children.discard(proc)  # before it is reaped: see Children.kill_all
        proc.join(5)
        if proc.exitcode is None:  # its job is over, yet it runs on (a thread it left)
            kill_tree(proc)  # not left unwatched, nor waited for at this process' exit
            proc.join(5)
        parent.close()
        alive.close()
    if ok is None:
        raise JobChildError(f"the child process died (exit code {proc.exitcode})")
    if not ok:
        raise JobChildError(json.loads(value).get("message", ""), value)
    return value


class JobChildError(Exception):
    """A job's exception in its child process (``reason``: its recorded type, message and
    traceback, as ``error_reason`` wrote them there), or the child's death."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


def _own_group() -> None:
    """In the child, before the job: lead a process group of its own, drop a SIGINT sent to
    the group it left (pending: it was born with SIGINT blocked), then take SIGINT as the
    process would have (a terminal's Ctrl-C no longer reaches it)."""
    if not _GROUPS:
        return
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    handler = signal.signal(signal.SIGINT, signal.SIG_IGN)  # ignoring discards a pending one
    signal.signal(signal.SIGINT, handler)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _watch(watched: Any, worker: int) -> None:
    """In the child: start a thread that waits for EOF on ``watched`` and then, if the
    ``worker`` process is gone (this child was given another parent), SIGKILLs this
    child's process group: the job and what it started there. A dying process closes its
    files before its children get their new parent, so the parent is watched for a second
    after the EOF (a live worker closes ``alive`` only once this child ended or would not)."""

    def wait() -> None:
        with contextlib.suppress(EOFError, OSError):
            watched.recv()
        for _ in range(100):
            if os.getppid() != worker:
                if _GROUPS and os.getpgrp() == os.getpid():  # never a group it does not lead
                    with contextlib.suppress(OSError):
                        os.killpg(0, signal.SIGKILL)
                os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(0.01)

    threading.Thread(target=wait, name="worqr-watch-worker", daemon=True).start()


def _child(
    conn: Any,
    f: Callable[..., Any],
    args: list[Any],
    kwargs: dict[str, Any],
    watched: Any,
    worker: int,
) -> None:
    _own_group()
    _watch(watched, worker)
    try:
        result = f(*args, **kwargs)
        if inspect.iscoroutine(result):
            result = asyncio.run(result)
        conn.send((True, result))
    except BaseException as exc:
        conn.send((False, error_reason(exc)))
    finally:
        conn.close()
