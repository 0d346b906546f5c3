"""The error hierarchy: every error worqr_py raises on purpose derives from :class:`WorqrError`.

Bad arguments raise the built-in ``TypeError``/``ValueError`` naming the argument (nothing is
written to Redis); Redis' own errors (``redis.ConnectionError`` ...) pass through unchanged.
"""

from __future__ import annotations

from typing import Any


class WorqrError(Exception):
    """Root of every worqr_py error."""


class WorkerNotStarted(WorqrError):
    """The operation needs a worker: call ``start_worker()`` first."""


class WorkerFailed(WorqrError):
    """This worker was failed (heartbeat lapsed, reclaimed by a peer, or ``fail_worker``).

    Its processes are no longer its own. Call ``start_worker()`` to register a new worker id.
    """


class NotWorking(WorqrError):
    """The worker does not work on the queue: call ``start_work(queue)`` first."""


class JobNotFound(WorqrError, LookupError):
    """No record of this job: never submitted, expired after its TTL, or its queue deleted."""


class JobWaitTimeout(WorqrError, TimeoutError):
    """``wait_for_result`` gave up: the job had not ended within the caller's timeout."""


class ClientClosed(WorqrError):
    """The client was closed (``close()``, from another thread or task) while this call
    waited for a job to end (``wait_for_result``, ``wait_for_job``, ``job.result()``)."""


class JobFailed(WorqrError):
    """The job ended without a result: ``failed`` (its function raised, or timed out, on
    its last try), ``dead`` (dead-lettered) or ``cancelled``. ``info`` is its record;
    ``error`` the recorded error (a ``JobError``: type, message, traceback), or None."""

    def __init__(self, info: Any) -> None:
        self.info = info
        self.status: str = info.status
        self.error = info.error
        why = f": {info.error.type or 'error'}: {info.error.message}" if info.error else ""
        super().__init__(f"job {info.id!r} {info.status}{why}")


class JobTimeout(WorqrError):
    """Raised in a job's worker when the job ran past its timeout: the job is failed (or
    retried) with this error, and the worker goes on."""


class UnknownFunction(WorqrError, LookupError):
    """A job names a function the worker does not have: the job fails with this error."""


class ScriptError(WorqrError):
    """A worqr_py Lua script could not be loaded or answered something unexpected."""
