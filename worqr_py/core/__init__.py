"""The pure core of worqr_py: every public operation as an :data:`~worqr_py.calls.Op`.

No I/O happens here. Each method validates its arguments (raising before anything is sent),
then yields the calls to run and turns their replies into results. ``Worqr`` (threads) and
``AsyncWorqr`` (asyncio) execute the same operations, so the two cannot drift apart.
"""

from __future__ import annotations

from .inspection import StateOps
from .jobs import JobOps
from .model import Options, Process, WorkerState
from .periodic import PeriodicOps
from .processes import ProcessOps
from .workers import WorkerOps

__all__ = ["Core", "Options", "Process", "WorkerState"]


class Core(StateOps, WorkerOps, ProcessOps, PeriodicOps, JobOps):
    """All operations of one Worqr instance, over its options, keys and worker state."""
