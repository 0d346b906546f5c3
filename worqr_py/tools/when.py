"""Time for the ``worqr`` command: ``--in`` durations, ``--at`` instants, and how due times
are shown (ISO 8601 in UTC, and a compact "1m30s" for how long until then).

Due times are the Redis server's clock (see ``worqr_py.core.delayed``), so "in how long" is
measured from the server's TIME, not this machine's clock.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import click

from ..core.validate import MAX_SECONDS

UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h|d)")
_FORMS = "e.g. 500ms, 30s, 5m, 2h, 1d, 1m30s, or a number of seconds"


def parse_duration(text: str) -> float:
    """``"500ms"``, ``"30s"``, ``"5m"``, ``"2h"``, ``"1d"``, combinations (``"1m30s"``,
    ``"1h 5m"``) or a plain number of seconds (``"2.5"``) -> seconds, a finite number >= 0.
    Raises ValueError saying what is accepted."""
    s = "".join(text.split()).lower()
    try:
        seconds = float(s)
    except ValueError:
        parts = _PART.findall(s)
        if not s or "".join(n + u for n, u in parts) != s:
            raise ValueError(f"not a duration: {text!r} ({_FORMS})") from None
        units = [u for _, u in parts]
        if len(set(units)) != len(units):
            raise ValueError(f"not a duration: {text!r} (a unit appears twice)") from None
        seconds = sum(float(n) * UNITS[u] for n, u in parts)
    if not 0 <= seconds <= MAX_SECONDS:
        raise ValueError(f"not a duration: {text!r} (must be >= 0 and at most a century)")
    return seconds


def parse_instant(text: str) -> datetime:
    """An ISO 8601 time (``2026-11-24T12:00:00+00:00``, a trailing ``Z`` for UTC, or a date)
    -> an aware datetime; one without an offset is local time."""
    s = text.strip()
    if s[-1:] in ("Z", "z"):  # fromisoformat takes "Z" only from Python 3.11
        s = s[:-1] + "+00:00"
    try:
        at = datetime.fromisoformat(s)
    except ValueError:
        raise ValueError(
            f"not an ISO 8601 time: {text!r} (e.g. 2026-11-24T12:00:00+00:00; "
            "without an offset it is local time)"
        ) from None
    return at if at.tzinfo is not None else at.astimezone()


def duration_option(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """Click callback for ``--in``: the duration in seconds (see ``parse_duration``)."""
    try:
        return None if value is None else parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def durations_option(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """Click callback for a comma-separated list of durations > 0 (``--backoff 1,5s,1m``):
    a list of seconds (see ``parse_duration``), or None if the option is not given."""
    if value is None:
        return None
    try:
        out = [parse_duration(x) for x in value.split(",")]
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None
    if not all(out):
        raise click.BadParameter(f"each duration must be > 0: {value!r}", ctx, param)
    return out


def instant_option(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """Click callback for ``--at``: an aware datetime (see ``parse_instant``)."""
    try:
        return None if value is None else parse_instant(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def instant_ms(ms: int) -> datetime:
    """Milliseconds since the epoch as an exact aware datetime (UTC), with no float error."""
    return datetime.fromtimestamp(ms // 1000, timezone.utc) + timedelta(milliseconds=ms % 1000)


def iso_utc(epoch: float) -> str:
    """Seconds since the epoch as ISO 8601 in UTC, to the millisecond; a time a datetime
    cannot hold (one written before 0.7.4 capped delays at a century) as "out of range"."""
    try:
        return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds")
    except (OverflowError, ValueError, OSError):
        return f"(out of range: {epoch:g} s since the epoch)"


def fmt_duration(seconds: float) -> str:
    """Seconds as ``"1d2h"``, ``"5m3s"``, ``"29.9s"`` or ``"250ms"`` (two units at most;
    the forms ``--in`` reads)."""
    seconds = abs(seconds)
    if seconds < 1:
        return f"{math.floor(seconds * 1000)}ms"
    if seconds < 60:
        return f"{math.floor(seconds * 10) / 10:g}s"
    whole = int(seconds)
    out: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if whole >= size or out:
            n, whole = divmod(whole, size)
            out.append(f"{n}{unit}" if n else "")
        if len(out) == 2:
            break
    return "".join(out)


def exact_duration(seconds: float) -> str:
    """Seconds as every unit they hold, to the ms: ``"1h2m5s"``, ``"1s500ms"``, ``"30s"``
    (the forms ``--in`` reads, so it reads back as the same number of ms)."""
    ms = round(abs(seconds) * 1000)
    out = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        n, ms = divmod(ms, size)
        out.append(f"{n}{unit}" if n else "")
    return "".join(out) + (f"{ms}ms" if ms or not any(out) else "")


def until(due: float, now: float) -> str:
    """How long from ``now`` until ``due``: ``"in 1m30s"``, or ``"overdue 2s"`` once it has
    passed (a due task waits for a worker's next turn to promote it)."""
    return f"in {fmt_duration(due - now)}" if due > now else f"overdue {fmt_duration(now - due)}"


def server_now(w: Any) -> float:
    """The Redis server's clock (TIME) in seconds since the epoch: due times are by it."""
    return float(w.server_time())
