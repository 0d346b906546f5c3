"""worqr_py: a reliable, peer-supervised work queue on plain Redis (a Python port of Worqr).

``Worqr`` is the synchronous client, ``AsyncWorqr`` (also ``worqr_py.aio.Worqr``) the asyncio
one; both run the same operations from ``worqr_py.core``.

The tree says what is what: ``core/`` is pure (every operation as a generator of Redis calls,
the Lua scripts, the key schema); ``drivers/`` does the I/O (``_async/`` is the source,
``_sync/`` is generated from it by ``scripts/unasync.py``); ``runtime/`` is the worker runtime
(``run``, ``own``); ``tools/`` is optional (the CLI, the demo, drawing, a throwaway server).
"""

from .core import Process
from .core.model import DeadLetter, Delayed
from .core.periodic import Schedule
from .drivers import AsyncWorqr, Worqr
from .errors import NotWorking, ScriptError, WorkerFailed, WorkerNotStarted, WorqrError
from .runtime.retry import Retry, RetryLater

__all__ = [
    "AsyncWorqr",
    "DeadLetter",
    "Delayed",
    "NotWorking",
    "Process",
    "Retry",
    "RetryLater",
    "Schedule",
    "ScriptError",
    "WorkerFailed",
    "WorkerNotStarted",
    "Worqr",
    "WorqrError",
]
__version__ = "0.5.0"
