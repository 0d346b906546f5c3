"""``python -m worqr_py``: the ``worqr`` command."""

from .tools.cli import main

main(prog_name="worqr")
