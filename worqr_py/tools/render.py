"""Drawing a snapshot as text, as diagrams/ and ``worqr inspect --diagram`` show it."""

from __future__ import annotations

from typing import Any

from ..core.inspection import Snapshot


def render(
    snapshot: Snapshot,
    alias: dict[str, str] | None = None,
    changed: set[str] | None = None,
    width: int = 96,
) -> str:
    """Draw each key as a row of cells under its name and type, in the spirit of Worqr's
    README: lists head first (left), sets sorted, hashes as ``field: value``. ``alias``
    renames ids (for stable diagrams); keys in ``changed`` are marked with ``*``."""
    if not snapshot:
        return "  (no keys)\n"
    out = []
    for key in sorted(snapshot, key=lambda k: _alias(k, alias)):
        kind, value = snapshot[key]
        mark = "*" if changed and key in changed else " "
        cells = [_cut(_alias(i, alias)) for i in _items(kind, value)] or ["(empty)"]
        if kind == "set":
            cells.sort()
        out.append(f"{mark} {_alias(key, alias)} : {kind}")
        rows: list[list[str]] = [[]]
        for c in cells:
            if rows[-1] and len(" | ".join([*rows[-1], c])) + 6 > width:
                rows.append([])
            rows[-1].append(c)
        line = "+" + "-" * (max(len(" | ".join(r)) for r in rows) + 2) + "+"
        out.append(f"  {line}")
        out += [f"  | {' | '.join(r).ljust(len(line) - 4)} |" for r in rows]
        out.append(f"  {line}")
        if kind == "list" and len(cells) > 1:
            out.append(f"   head{'tail'.rjust(len(line) - 6)}")
    return "\n".join(out) + "\n"


def _cut(text: str, most: int = 40) -> str:
    return text if len(text) <= most else text[: most - 3] + "..."


def _items(kind: str, value: Any) -> list[str]:
    if kind == "hash":
        return [f"{f}: {v}" for f, v in sorted(value.items(), key=lambda kv: (len(kv[0]), kv[0]))]
    if kind in ("list", "set", "zset"):
        return [str(x) for x in value]
    return [str(value)]


def _alias(text: str, alias: dict[str, str] | None) -> str:
    for long, short in (alias or {}).items():
        text = text.replace(long, short)
    return text
