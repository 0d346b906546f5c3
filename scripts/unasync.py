"""Generate the synchronous driver and runtime from their asyncio source (as httpcore and
psycopg do): every ``_async/X.py`` under ``worqr_py`` becomes ``_sync/X.py`` by word-level
substitutions. Only ``primitives.py``, ``redis_io.py`` and ``cluster_io.py`` of each flavour
(the waits and the sockets, which differ in kind) are written by hand.

    python scripts/unasync.py           # write the sync files
    python scripts/unasync.py --check   # exit 1 if a committed sync file is stale (CI)
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "worqr_py"
HAND_WRITTEN = {"primitives.py", "redis_io.py", "cluster_io.py", "__init__.py"}

# Whole words (or exact phrases) replaced, in this order.
SUBSTITUTIONS: list[tuple[str, str]] = [
    (r"\basync def\b", "def"),
    (r"\basync with\b", "with"),
    (r"\basync for\b", "for"),
    (r"\bawait ", ""),
    (r"\b__aenter__\b", "__enter__"),
    (r"\b__aexit__\b", "__exit__"),
    (r"\baclose\b", "close"),
    (r"\bAsyncWorqr\b", "Worqr"),
    (r"\bAsyncRunner\b", "SyncRunner"),
    (r"\bAsyncOwner\b", "SyncOwner"),
    (r"\bAsyncJobsApi\b", "JobsApi"),
    (r"\bAsyncReadingApi\b", "ReadingApi"),
    (r"\bAsyncJob\b", "Job"),
    (r"\bAsyncIterator\b", "Iterator"),
    (r"\bAwaitable\b", "Callable"),
    (r"\b_async\b", "_sync"),
    (r"\bredis\.asyncio\b", "redis"),
    (r"\basyncio client\b", "sync client"),
    (r"\(asyncio\)", "(threads)"),
]


def header(source: Path) -> str:
    rel = source.relative_to(ROOT.parent)
    return (
        f"# GENERATED from {rel} by scripts/unasync.py: do not edit.\n"
        "# Edit that file, then run: python scripts/unasync.py\n"
    )


def convert(text: str) -> str:
    for pattern, replacement in SUBSTITUTIONS:
        text = re.sub(pattern, replacement, text)
    return text


def formatted(text: str, target: Path) -> str:
    """The text as ``ruff format`` leaves it (removing ``await`` can shorten lines)."""
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--stdin-filename", str(target), "-"],
        input=text,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def targets() -> list[tuple[Path, Path]]:
    pairs = []
    for source in sorted(ROOT.rglob("_async/*.py")):
        if source.name not in HAND_WRITTEN:
            pairs.append((source, source.parent.parent / "_sync" / source.name))
    return pairs


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for source, target in targets():
        wanted = formatted(header(source) + convert(source.read_text(encoding="utf-8")), target)
        if target.exists() and target.read_text(encoding="utf-8") == wanted:
            continue
        if check:
            stale.append(str(target.relative_to(ROOT.parent)))
        else:
            target.write_text(wanted, encoding="utf-8")
            print(f"wrote {target.relative_to(ROOT.parent)}")
    if stale:
        print("stale generated files (run python scripts/unasync.py):", *stale, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
