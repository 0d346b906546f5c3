"""What a call looks like on the wire, for both drivers' executors: its words, and the
packer that turns them into bytes (hiredis's C packer where it gives the bytes redis-py's
own would). Pure: no I/O."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..core.calls import Arg, Call

Pack = Callable[[Any, tuple[Arg, ...]], bytes]
_hiredis_pack: Callable[[Any], bytes] | None
try:  # redis-py's packers wrap it with a Python loop that encodes each word first
    from hiredis import pack_command as _hiredis_pack
except ImportError:  # hiredis is optional
    _hiredis_pack = None


def words(c: Call) -> tuple[Arg, ...]:
    """The command a call sends: its words, or the EVALSHA of its script."""
    return ("EVALSHA", c.script.sha, c.nkeys, *c.args) if c.script else c.args


def python_pack(conn: Any, words: tuple[Arg, ...]) -> bytes:
    """The connection's own packer (redis-py's), as one bytes."""
    return b"".join(conn.pack_command(*words))


def c_pack(conn: Any, words: tuple[Arg, ...]) -> bytes:
    """hiredis's packer (``packer`` says when it may be used)."""
    assert _hiredis_pack is not None
    return _hiredis_pack(words)


def packer(conn: Any) -> Pack:
    """hiredis's packer when it is installed and encodes as the connection does (UTF-8,
    strict: the same bytes as redis-py's), else the connection's own ``pack_command``."""
    enc = conn.encoder
    utf8 = str(enc.encoding).lower().replace("_", "-") in ("utf-8", "utf8")
    if _hiredis_pack is not None and utf8 and enc.encoding_errors == "strict":
        return c_pack
    return python_pack
