"""worqr_py: a reliable, peer-supervised work queue on plain Redis (a Python port of Worqr).

``Worqr`` is the synchronous client, ``AsyncWorqr`` (also ``worqr_py.aio.Worqr``) the asyncio
one; both run the same operations from ``worqr_py.core``.
"""

from .aio import AsyncWorqr
from .core import Process
from .errors import NotWorking, ScriptError, WorkerFailed, WorkerNotStarted, WorqrError
from .sync import Worqr

__all__ = [
    "AsyncWorqr",
    "NotWorking",
    "Process",
    "ScriptError",
    "WorkerFailed",
    "WorkerNotStarted",
    "Worqr",
    "WorqrError",
]
__version__ = "0.2.0"
