"""The Lua scripts, one file per atomic operation in ``worqr_py/lua/``, read once at import.

Drivers run them with EVALSHA and, on NOSCRIPT (a restarted or flushed Redis), load them
with SCRIPT LOAD and retry once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib.resources import files


@dataclass(frozen=True, slots=True)
class Script:
    """One Lua script: its name, source and SHA1 (what EVALSHA needs)."""

    name: str
    source: str
    sha: str


def _load(name: str) -> Script:
    source = files("worqr_py").joinpath("lua").joinpath(f"{name}.lua").read_text(encoding="utf-8")
    return Script(name, source, hashlib.sha1(source.encode()).hexdigest())


ENQUEUE = _load("enqueue")
DEQUEUE = _load("dequeue")
FINISH = _load("finish")
STOP = _load("stop")
UNWORK = _load("unwork")
CANCEL = _load("cancel")
DELETE = _load("delete")
REGISTER = _load("register")
JOIN = _load("join")
DEREGISTER = _load("deregister")
FORGET = _load("forget")
REQUEUE_DEAD = _load("requeue_dead")
PURGE_DEAD = _load("purge_dead")

ALL: tuple[Script, ...] = (
    ENQUEUE,
    DEQUEUE,
    FINISH,
    STOP,
    UNWORK,
    CANCEL,
    DELETE,
    REGISTER,
    JOIN,
    DEREGISTER,
    FORGET,
    REQUEUE_DEAD,
    PURGE_DEAD,
)
