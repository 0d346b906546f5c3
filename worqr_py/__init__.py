"""worqr_py: a reliable, peer-supervised work queue on plain Redis (a Python port of Worqr).

``Worqr`` is the synchronous client, ``AsyncWorqr`` (also ``worqr_py.aio.Worqr``) the asyncio
one; both run the same operations from ``worqr_py.core``.

The tree says what is what: ``core/`` is pure (every operation as a generator of Redis calls,
the Lua scripts, the key schema); ``drivers/`` does the I/O (``_async/`` is the source,
``_sync/`` is generated from it by ``scripts/unasync.py``); ``runtime/`` is the worker runtime
(``run``, ``own``); ``tools/`` is optional (the CLI, the demo, drawing, a throwaway server).
"""

from .core import Process
from .core.jobs import JobError, JobInfo, JsonSerializer
from .core.model import DeadLetter, Delayed
from .core.periodic import Schedule
from .drivers import AsyncWorqr, Worqr
from .drivers._async.jobs import AsyncJob
from .drivers._sync.jobs import Job
from .errors import (
    ClientClosed,
    JobFailed,
    JobNotFound,
    JobTimeout,
    JobWaitTimeout,
    NotWorking,
    ScriptError,
    UnknownFunction,
    WorkerFailed,
    WorkerNotStarted,
    WorqrError,
)
from .runtime.jobs import JobContext
from .runtime.retry import Retry, RetryLater

__all__ = [
    "AsyncJob",
    "AsyncWorqr",
    "ClientClosed",
    "DeadLetter",
    "Delayed",
    "Job",
    "JobContext",
    "JobError",
    "JobFailed",
    "JobInfo",
    "JobNotFound",
    "JobTimeout",
    "JobWaitTimeout",
    "JsonSerializer",
    "NotWorking",
    "Process",
    "Retry",
    "RetryLater",
    "Schedule",
    "ScriptError",
    "UnknownFunction",
    "WorkerFailed",
    "WorkerNotStarted",
    "Worqr",
    "WorqrError",
]
__version__ = "0.7.4"
