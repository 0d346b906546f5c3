"""The ``worqr`` command's entry point: the CLI needs the optional ``cli`` extra (click, rich);
without it, say how to get it instead of a traceback."""

from __future__ import annotations

import sys
from typing import Any


def main(**kwargs: Any) -> None:
    """Run the ``worqr`` command (``worqr_py.tools.cli``), or explain what is missing."""
    try:
        from .cli import main as cli
    except ModuleNotFoundError as exc:
        if exc.name not in ("click", "rich"):
            raise
        print(
            f"worqr: the command needs the cli extra ({exc.name} is missing): "
            "pip install 'worqr_py[cli]'",
            file=sys.stderr,
        )
        sys.exit(1)
    cli(**kwargs)
