"""``python -m worqr_py``: the ``worqr`` command."""

from .cli import main

main(prog_name="worqr")
