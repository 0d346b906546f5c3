"""The I/O layer: the drivers that run the pure core's operations on redis-py.

``_async/`` holds the source of truth (``AsyncWorqr``); ``_sync/`` (``Worqr``) is generated
from it by ``scripts/unasync.py``, except each flavour's small hand-written ``primitives.py``.
``base.py`` is what both share that is not I/O; ``connect.py`` turns a URL or your clients
into connections.
"""

from ._async.client import AsyncWorqr
from ._sync.client import Worqr

__all__ = ["AsyncWorqr", "Worqr"]
