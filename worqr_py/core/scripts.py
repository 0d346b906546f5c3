"""The Lua scripts, one file per atomic step in ``worqr_py/lua/`` (an operation that could
touch a whole queue runs one of them several times, each call bounded), read once at import.

Drivers run them with EVALSHA and, on NOSCRIPT (a restarted or flushed Redis), load them
with SCRIPT LOAD and retry once.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib.resources import files


@dataclass(frozen=True, slots=True)
class Script:
    """One Lua script: its name, source and SHA1 (what EVALSHA needs)."""

    name: str
    source: str
    sha: str


def _read(path: str) -> str:
    return files("worqr_py.core").joinpath("lua").joinpath(path).read_text(encoding="utf-8")


def _load(name: str) -> Script:
    """A script, with each ``-- @include NAME`` line replaced by ``lua/include/NAME.lua``
    (helpers several scripts share; Redis scripts cannot call each other)."""
    source = re.sub(
        r"^-- @include (\w+)$",
        lambda m: _read(f"include/{m.group(1)}.lua"),
        _read(f"{name}.lua"),
        flags=re.M,
    )
    return Script(name, source, hashlib.sha1(source.encode()).hexdigest())


ENQUEUE = _load("enqueue")
ENQUEUE_UNIQUE = _load("enqueue_unique")
PASS_WAKE = _load("pass_wake")
WAIT_FOR_WORK = _load("wait_for_work")
DEQUEUE = _load("dequeue")
FINISH = _load("finish")
STOP = _load("stop")
LEAVE_QUEUE = _load("leave_queue")
CANCEL = _load("cancel")
DELETE = _load("delete")
REGISTER = _load("register")
JOIN = _load("join")
FENCE_WORKER = _load("fence_worker")
REMOVE_WORKER = _load("remove_worker")
RENEW_TURN = _load("renew_turn")
REQUEUE_DEAD = _load("requeue_dead")
PURGE_DEAD = _load("purge_dead")
SCHEDULE = _load("schedule")
HINT = _load("hint")
RETRY = _load("retry")
PROMOTE = _load("promote")
DUE_QUEUES = _load("due_queues")
REHINT = _load("rehint")
CANCEL_DELAYED = _load("cancel_delayed")
PERIODIC_SET = _load("periodic_set")
PERIODIC_FIRE = _load("periodic_fire")
UNSCHEDULE = _load("unschedule")
SUBMIT = _load("submit")

ALL: tuple[Script, ...] = (
    ENQUEUE,
    DEQUEUE,
    FINISH,
    STOP,
    LEAVE_QUEUE,
    CANCEL,
    DELETE,
    REGISTER,
    JOIN,
    FENCE_WORKER,
    REMOVE_WORKER,
    RENEW_TURN,
    REQUEUE_DEAD,
    PURGE_DEAD,
    ENQUEUE_UNIQUE,
    PASS_WAKE,
    WAIT_FOR_WORK,
    SCHEDULE,
    HINT,
    RETRY,
    PROMOTE,
    DUE_QUEUES,
    REHINT,
    CANCEL_DELAYED,
    PERIODIC_SET,
    PERIODIC_FIRE,
    UNSCHEDULE,
    SUBMIT,
)


def _shard(script: Script) -> Script:
    """The script as a Redis Cluster runs it: ``SPUBLISH`` where it says ``PUBLISH``. Every
    channel a script publishes on is its queue's (``P:{E}:...``, in the slot of its keys), so
    a notification goes to that one shard, not to every node of the cluster."""
    source = script.source.replace("redis.call('PUBLISH',", "redis.call('SPUBLISH',")
    return Script(script.name, source, hashlib.sha1(source.encode()).hexdigest())


SHARDED: dict[str, Script] = {s.name: _shard(s) for s in ALL}  # name -> cluster variant
