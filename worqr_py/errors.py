"""The error hierarchy: every error worqr_py raises on purpose derives from :class:`WorqrError`.

Bad arguments raise the built-in ``TypeError``/``ValueError`` naming the argument (nothing is
written to Redis); Redis' own errors (``redis.ConnectionError`` ...) pass through unchanged.
"""

from __future__ import annotations


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


class ScriptError(WorqrError):
    """A worqr_py Lua script could not be loaded or answered something unexpected."""
