"""The worker runtime: ``run`` (take, handle, finish, shut down gracefully) and ``own``
(persistent tasks). Policy in ``policy.py``; ``_async/`` is the source of ``_sync/``."""
