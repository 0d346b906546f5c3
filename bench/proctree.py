"""A worker's process tree, read from /proc: its CPU time, and SIGKILL of all of it.

The tree of a worker started in a session of its own is every process whose process group
is the worker's pid, plus every descendant by parent pid (rq's work horse calls setsid(), so
it leaves the group but stays a child). CPU time is utime + stime + cutime + cstime of each
process in the tree: the children a process in the tree has reaped are in its cutime/cstime,
so a short-lived child (rq's fork per job) is counted once, when its parent reaps it.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _stats() -> dict[int, list[str]]:
    """pid -> the fields of /proc/pid/stat after the command name (field 3 onwards)."""
    out: dict[int, list[str]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(entry.path, "stat").read_bytes()
        except OSError:  # gone meanwhile
            continue
        out[int(entry.name)] = raw[raw.rindex(b")") + 2 :].decode().split()
    return out


def tree(root: int, stats: dict[int, list[str]] | None = None) -> list[int]:
    """``root`` and every process in its group or below it."""
    stats = _stats() if stats is None else stats
    members = {pid for pid, f in stats.items() if int(f[2]) == root} | {root}
    changed = True
    while changed:
        changed = False
        for pid, f in stats.items():
            if pid not in members and int(f[1]) in members:
                members.add(pid)
                changed = True
    return sorted(p for p in members if p in stats)


def cpu_seconds(root: int) -> float:
    """CPU time (user + system, reaped children included) of the tree of ``root``."""
    stats = _stats()
    ticks = 0
    for pid in tree(root, stats):
        f = stats[pid]
        # fields 14-17 of stat (utime, stime, cutime, cstime) are f[11:15] here.
        ticks += sum(int(x) for x in f[11:15])
    return ticks / TICK


def kill_tree(root: int) -> list[int]:
    """SIGKILL the whole tree of ``root`` (a machine dying, not a shutdown). The group is
    frozen first (SIGSTOP: nothing in it runs, forks or completes a task any more) so that
    the scan of the tree, which takes milliseconds, cannot race with it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(root, signal.SIGSTOP)
    pids = tree(root)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(root, signal.SIGKILL)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return pids
