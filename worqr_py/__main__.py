"""``python -m worqr_py``: the ``worqr`` command."""

from .tools.entry import main

main(prog_name="worqr")
