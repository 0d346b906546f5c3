"""What the core asks the drivers to run: plain commands and Lua script calls. Pure data.

An operation is a generator (:data:`Op`) that yields a :class:`Call` (its reply is sent
back) or a list of calls (run as one pipeline, no MULTI; the list of replies is sent back)
and finally returns its result. The drivers do nothing but execute these steps, so every
operation's logic exists once, here and in ``core``.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from .scripts import Script

T = TypeVar("T")
Arg = str | int | float | bytes


@dataclass(frozen=True, slots=True)
class Call:
    """One Redis round-trip unit: a command (``script`` is None) or an EVALSHA of ``script``.

    For a command, ``args`` are its words; for a script, the KEYS followed by the ARGV,
    of which the first ``nkeys`` are keys.
    """

    args: tuple[Arg, ...]
    script: Script | None = None
    nkeys: int = 0


class Commuting(list[Call]):
    """A pipeline whose calls commute: none reads what another writes, and their order is
    never observed (a queue's script and the registry's SADD of that queue, say). On one
    server it is a pipeline like any list; a Redis Cluster driver sends each node's share
    at once (one round trip however many slots it spans), where a plain list keeps its order
    across nodes call by call."""


Step = Call | list[Call]
Op = Generator[Step, Any, T]


def command(*args: Arg) -> Call:
    """A plain Redis command."""
    return Call(args)


def script(s: Script, keys: Sequence[str], argv: Sequence[Arg]) -> Call:
    """An EVALSHA of ``s`` with these KEYS and ARGV."""
    return Call((*keys, *argv), s, len(keys))


def text(value: Any) -> str:
    """A reply as str, whether the client decodes responses or not."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def texts(values: Any) -> list[str]:
    """A list reply as a list of str."""
    return [text(v) for v in values or ()]


def hash_reply(reply: Any) -> dict[str, str]:
    """An HGETALL reply (dict under RESP3/decoders, flat list otherwise) as a dict of str."""
    if isinstance(reply, dict):
        return {text(a): text(b) for a, b in reply.items()}
    items = texts(reply)
    return dict(zip(items[0::2], items[1::2], strict=True))


def scored(reply: Any) -> list[tuple[Any, float]]:
    """A WITHSCORES reply as (member, score) pairs: flat under RESP2, pairs under RESP3."""
    if reply and isinstance(reply[0], (list, tuple)):
        return [(m, float(sc)) for m, sc in reply]
    return [(m, float(sc)) for m, sc in zip(reply[::2], reply[1::2], strict=True)]


def time_ms(reply: Any) -> int:
    """A TIME reply (seconds, microseconds) as milliseconds since the epoch."""
    seconds, micros = reply
    return int(seconds) * 1000 + int(micros) // 1000
